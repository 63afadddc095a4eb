"""A local HTTP receiver standing in for Telegram's Bot API and a Discord webhook, on 127.0.0.1.

It records every request (path, headers, JSON body) and answers as the test says: a status, body
and headers, optionally after a delay (a service that hangs). Stopping it releases any request it holds.
"""

import json
import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: dict


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status, self.reply, self.delay = 200, b'{"ok": true}', 0.0
        self.headers: dict[str, str] = {}
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append(Received("POST", self.path, dict(self.headers), json.loads(raw or b"{}")))
                if receiver.delay:
                    receiver.released.wait(receiver.delay)
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(receiver.reply)))
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(receiver.reply)

            def do_GET(self) -> None:  # recorded: a redirect followed as a GET must show
                receiver.requests.append(Received("GET", self.path, dict(self.headers), {}))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def answer(self, status: int, reply: bytes = b'{"ok": true}', *, delay: float = 0.0,
               headers: dict[str, str] | None = None) -> None:
        self.status, self.reply, self.delay, self.headers = status, reply, delay, headers or {}

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port_url() -> str:
    """A local URL nothing listens on: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
