"""Webhook acknowledgement latency and throughput, through gunicorn, as TradingView sees it.

For each broker (ORM, Redis) it starts a throw-away deployment (gunicorn, production settings,
SQLite in a temp dir unless --database-url is given) and measures:
1. latency at a fixed rate (default 200 requests/s, open loop: a late request counts from when it
   should have been sent, so a stall shows in the tail instead of slowing the load down);
2. saturated throughput with wrk (32 connections), every request a distinct signal.
Every request is a new, valid signal that is stored and queued: the real path, not a duplicate.

    .venv/bin/python bench/webhook.py [--rate 200] [--seconds 15] [--web-workers 3]
        [--database-url postgres://postgres@127.0.0.1:5432/bench] [--brokers orm,redis]
"""

import argparse
import http.client
import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PASSPHRASE, alert_body, environment, machine, prepare, serving, summary  # noqa: E402

WRK_SCRIPT = """
local counter = 0
local thread_id = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end
function init(args)
  tid = tid or 0
end
request = function()
  counter = counter + 1
  local body = string.format('{"action":"buy","symbol":"BTCUSDT","quantity":"0.001","price":"45000",'
    .. '"strategy":"BENCH","time":"%s","id":"wrk-%s-%d-%d","passphrase":"%s"}',
    os.date("!%Y-%m-%dT%H:%M:%SZ"), RUN, tid, counter, PASSPHRASE)
  return wrk.format("POST", "/webhook", {["Content-Type"] = "application/json"}, body)
end
"""


def fixed_rate(base: str, *, rate: int, seconds: int) -> tuple[list[float], dict[int, int]]:
    """Open-loop load at `rate` requests/s; latencies in ms from each request's scheduled time."""
    host, port = base.removeprefix("http://").split(":")
    total = rate * seconds
    start = time.perf_counter() + 0.5
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()
    next_index = iter(range(total))

    def client() -> None:
        for index in next_index:
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request("POST", "/webhook", alert_body(index), {"Content-Type": "application/json"})
            status = connection.getresponse().status
            elapsed = (time.perf_counter() - scheduled) * 1000
            connection.close()
            with lock:
                latencies.append(elapsed)
                codes[status] = codes.get(status, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, codes


def saturated(base: str, *, seconds: int) -> str:
    if not shutil.which("wrk"):
        return "wrk not installed (apt-get install wrk): skipped"
    script = Path(tempfile.mkdtemp()) / "webhook.lua"
    run = str(int(time.time()))
    script.write_text(f'RUN = "{run}"\nPASSPHRASE = "{PASSPHRASE}"\n' + WRK_SCRIPT)
    output = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), base + "/webhook"],
                            capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)
    return f"{float(rps):.0f} requests/s (p50 {p50}, p99 {p99}; non-2xx: {non2xx.group(1) if non2xx else 0})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"database: {args.database_url or 'SQLite (temp file)'}; gunicorn sync workers: {args.web_workers}")
    for broker in args.brokers.split(","):
        env = environment(database_url=args.database_url, redis_url=args.redis_url if broker == "redis" else None)
        prepare(env)
        with serving(env, web_workers=args.web_workers) as base:
            fixed_rate(base, rate=args.rate, seconds=2)  # warm-up: connections, imports, caches
            latencies, codes = fixed_rate(base, rate=args.rate, seconds=args.seconds)
            print(
                f"[{broker}] {args.rate} req/s for {args.seconds} s: ack latency ms {summary(latencies)}; "
                f"answers {json.dumps(codes)}"
            )
            print(f"[{broker}] saturated ({args.seconds} s, 32 connections): {saturated(base, seconds=args.seconds)}")


if __name__ == "__main__":
    main()
