"""Sending one message to one channel: Telegram's Bot API, a Discord webhook, or Django's mail.

Each sender raises DeliveryError with a message that is safe to store and show: the channel's
secrets are masked out of it, and of an HTTP answer only the status is kept, never the body the
remote wrote. HTTP requests go only where notifications/destinations.py allows, to the addresses it
checked, follow no redirect, and give up after NOTIFY_TIMEOUT seconds.
"""

import http.client
import json
import socket
import ssl
from collections.abc import Callable, Mapping
from functools import cache

from django.conf import settings
from django.core.mail import send_mail

from notifications.destinations import Destination, DestinationRefused, destination_check
from notifications.models import Channel
from notifications.redaction import redact

TELEGRAM_LIMIT = 4096  # characters per message (Bot API sendMessage)
DISCORD_LIMIT = 2000  # characters of `content`
# Discord sits behind Cloudflare, which refuses Python's default User-Agent (error 1010).
USER_AGENT = "AlsaTrade-notifications/1.0"


class DeliveryError(Exception):
    """A message did not go out; str() is redacted."""


def channel_send(channel: Channel, text: str) -> None:
    senders: dict[str, Callable[[Channel, str], None]] = {
        Channel.Kind.TELEGRAM: telegram_send, Channel.Kind.DISCORD: discord_send, Channel.Kind.EMAIL: email_send,
    }
    try:
        senders[channel.kind](channel, text)
    except DeliveryError:
        raise
    except Exception as error:  # the mail backend's, a malformed URL's…: recorded like any failure
        raise DeliveryError(redact(f"{type(error).__name__}: {error}", channel.secrets)) from None


def telegram_send(channel: Channel, text: str) -> None:
    # Reference: https://core.telegram.org/bots/api#sendmessage
    url = f"{settings.NOTIFY_TELEGRAM_API}/bot{channel.telegram_bot_token}/sendMessage"
    _post_json(url, {"chat_id": channel.telegram_chat_id, "text": text[:TELEGRAM_LIMIT]}, channel)


def discord_send(channel: Channel, text: str) -> None:
    # Reference: https://discord.com/developers/docs/resources/webhook#execute-webhook
    # No mentions: a strategy or symbol name must never ping @everyone.
    body = {"content": text[:DISCORD_LIMIT], "allowed_mentions": {"parse": []}}
    _post_json(channel.discord_webhook_url, body, channel)


def email_send(channel: Channel, text: str) -> None:
    subject = f"Alsa Trade: {text.splitlines()[0][:120]}" if text else "Alsa Trade"
    send_mail(subject, text, None, channel.recipients(), fail_silently=False)


def _post_json(url: str, body: Mapping[str, object], channel: Channel) -> None:
    try:
        destination = destination_check(url)
    except DestinationRefused as error:
        raise DeliveryError(redact(f"refused: {error}", channel.secrets)) from None
    connection = _connection(destination)
    try:
        connection.request("POST", destination.target, body=json.dumps(body).encode(),
                           headers={"Content-Type": "application/json", "User-Agent": USER_AGENT})
        status = connection.getresponse().status
    except OSError as error:  # refused, reset, timed out, a certificate that does not match
        raise DeliveryError(redact(_why(error), channel.secrets)) from None
    except http.client.HTTPException as error:  # its text may quote the remote's answer: the type alone
        raise DeliveryError(f"the answer was not valid HTTP ({type(error).__name__})") from None
    finally:
        connection.close()
    if not 200 <= status < 300:
        # The answer's body is never kept: the remote writes it, and it may quote our request.
        raise DeliveryError(f"HTTP {status}: {_refusal(status)}")


def _refusal(status: int) -> str:
    if 300 <= status < 400:
        return "a redirect, which is not followed (has the address moved?)"
    if status in (401, 403, 404):
        return "the service refused the bot token or webhook (revoked, deleted, or mistyped?)"
    if status == 429:
        return "the service asks us to slow down"
    if status >= 500:
        return "the service had an error"
    return "the service refused the message (is the chat id right?)" if status == 400 else "an unexpected answer"


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the addresses destination_check approved instead of looking the host up again."""

    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout)
        self.addresses = destination.addresses

    def connect(self) -> None:
        self.sock = _first_connected(self.addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """The same, over TLS: the certificate is still checked against the host's name."""

    def __init__(self, destination: Destination, timeout: float) -> None:
        super().__init__(destination.host, destination.port, timeout=timeout, context=_tls())
        self.addresses = destination.addresses

    def connect(self) -> None:
        sock = _first_connected(self.addresses, self.port, self.timeout)
        self.sock = _tls().wrap_socket(sock, server_hostname=self.host)


def _connection(destination: Destination) -> http.client.HTTPConnection:
    pinned = _PinnedHTTPSConnection if destination.scheme == "https" else _PinnedHTTPConnection
    return pinned(destination, settings.NOTIFY_TIMEOUT)


def _first_connected(addresses: tuple[str, ...], port: int, timeout: float | None) -> socket.socket:
    failure: OSError = OSError("no address to connect to")
    for address in addresses:  # in the resolver's order, as socket.create_connection tries them
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as error:
            failure = error
    raise failure


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


def _why(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {settings.NOTIFY_TIMEOUT:g} s"
    return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
