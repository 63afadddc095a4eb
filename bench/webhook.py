"""Webhook acknowledgement latency and throughput, through gunicorn, as TradingView sees it, against
its floor.

For each broker (ORM, Redis) it starts a throw-away deployment (gunicorn, production settings,
SQLite in a temp dir unless --database-url is given) and, with --floor (the default), the floor app
(bench/floor/: a bare Django view doing one INSERT with a unique key and one Redis LPUSH) under the
same gunicorn, database and Redis. Then, in alternating order round by round (--rounds), for each:
1. latency at a fixed rate (default 200 requests/s, open loop: a late request counts from when it
   should have been sent, so a stall shows in the tail instead of slowing the load down);
2. saturated throughput with wrk (32 connections), every request a distinct signal.
Every request is a new, valid signal that is stored and queued: the real path, not a duplicate.
It ends with /webhook's saturated throughput as a fraction of the floor's, measured in the same run.

    .venv/bin/python bench/webhook.py [--rate 200] [--seconds 15] [--web-workers 3] [--rounds 2]
        [--database-url postgres://postgres@127.0.0.1:5432/bench] [--brokers orm,redis] [--no-floor]
"""

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from common import (  # noqa: E402
    PASSPHRASE,
    ROOT,
    _wait_until_up,
    alert_body,
    environment,
    free_port,
    machine,
    machine_cpu,
    percentile,
    prepare,
    quiet,
    serving,
    signals_empty,
    summary,
)

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


@dataclass
class Saturation:
    rps: float
    p50: str
    p99: str
    non2xx: int
    cpu: dict[str, float] = field(default_factory=dict)  # µs of CPU per request, by process group

    def __str__(self) -> str:
        split = ", ".join(f"{group} {us:.0f}" for group, us in self.cpu.items())
        return (f"{self.rps:.0f} requests/s (p50 {self.p50}, p99 {self.p99}; non-2xx: {self.non2xx})"
                + (f"\n             CPU µs per request: {split}" if split else ""))


TICK = os.sysconf("SC_CLK_TCK")


def cpu_by_group(port: str) -> dict[str, float]:
    """Seconds of CPU used so far by the processes serving one run, by group: this app's gunicorn
    (master and workers, found by the port on their command line), PostgreSQL, Redis, wrk; and the
    whole machine (all cores, from /proc/stat), so what else ran shows too."""
    groups = {"gunicorn": 0.0, "postgres": 0.0, "redis": 0.0, "wrk": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm, fields = stat[stat.index("(") + 1:stat.rindex(")")], stat[stat.rindex(")") + 2:].split()
        seconds = (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
        if "gunicorn" in cmdline and f"127.0.0.1:{port}" in cmdline:
            groups["gunicorn"] += seconds
        elif comm == "postgres":
            groups["postgres"] += seconds
        elif comm.startswith("redis-server"):
            groups["redis"] += seconds
        elif comm == "wrk":
            groups["wrk"] += seconds
    groups["machine"] = machine_cpu()[0] / TICK
    return groups


@dataclass
class Results:
    """One app's runs: saturated req/s and fixed-rate latencies (ms), one entry per round."""

    saturated: list[Saturation] = field(default_factory=list)
    latencies: list[list[float]] = field(default_factory=list)

    def rps(self) -> list[float]:
        return [run.rps for run in self.saturated]

    def pct(self, pct: float) -> list[float]:
        return [percentile(run, pct) for run in self.latencies]


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


def saturated(base: str, *, seconds: int) -> Saturation | None:
    """wrk, 2 threads, 32 connections; each run its own ids, so no request is a duplicate."""
    if not shutil.which("wrk"):
        return None
    script = Path(tempfile.mkdtemp()) / "webhook.lua"
    run = secrets.token_hex(6)
    script.write_text(f'RUN = "{run}"\nPASSPHRASE = "{PASSPHRASE}"\n' + WRK_SCRIPT)
    port = base.rsplit(":", 1)[1]
    before = cpu_by_group(port)
    wrk = subprocess.Popen(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), base + "/webhook"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(seconds - 0.2)
    during = cpu_by_group(port)  # wrk is still running: its own CPU is counted before it exits
    output, _ = wrk.communicate()
    if wrk.returncode:
        raise RuntimeError(f"wrk failed: {output}")
    shutil.rmtree(script.parent, ignore_errors=True)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)
    requests = float(rps) * (seconds - 0.2)
    cpu = {group: (during[group] - before.get(group, 0.0)) / requests * 1e6 for group in during}
    return Saturation(float(rps), p50, p99, int(non2xx.group(1)) if non2xx else 0, cpu)


def floor_environment(env: dict) -> dict:
    """The app's environment, pointed at the floor app (bench/floor/) and always at Redis."""
    floor = {**env, "PYTHONPATH": str(BENCH), "DJANGO_SETTINGS_MODULE": "floor.settings"}
    floor.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    return floor


@contextmanager
def serving_floor(env: dict, *, web_workers: int) -> Iterator[str]:
    """The floor under the same gunicorn command line as the app (common.serving), on a free port."""
    subprocess.run([sys.executable, "-m", "floor.prepare"], cwd=ROOT, env=env, check=True)
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "floor.wsgi", "--pythonpath", str(BENCH), "--bind", f"127.0.0.1:{port}",
         "--workers", str(web_workers), "--log-level", "warning", "--backlog", "2048"],
        cwd=ROOT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base)
        yield base
    finally:
        web.terminate()
        try:
            web.wait(timeout=20)
        except subprocess.TimeoutExpired:
            web.kill()


def measure(name: str, base: str, results: Results, args: argparse.Namespace) -> None:
    """One round for one app: warm-up, fixed rate, then saturation."""
    # The previous saturated run's after-effects (PostgreSQL writing back, the other app's table) would
    # land in this one's tail: let the machine settle first.
    busy = quiet()
    fixed_rate(base, rate=args.rate, seconds=2)  # warm-up: connections, imports, caches
    latencies, codes = fixed_rate(base, rate=args.rate, seconds=args.seconds)
    results.latencies.append(latencies)
    print(f"  {name:8} {args.rate} req/s for {args.seconds} s (cores {busy:.0%} busy before): ack latency ms "
          f"{summary(latencies)}; answers {json.dumps(codes)}",
          flush=True)
    run = saturated(base, seconds=args.seconds)
    if run is None:
        print(f"  {name:8} saturated: wrk not installed (apt-get install wrk): skipped", flush=True)
        return
    results.saturated.append(run)
    print(f"  {name:8} saturated ({args.seconds} s, 32 connections): {run}", flush=True)


def report(broker: str, app: Results, floor: Results | None, rate: int) -> None:
    """The figures the issue asks for: req/s both ways, their ratio, p50/p99 at the fixed rate."""

    def listed(values: list[float], fmt: str = "{:.0f}") -> str:
        return " / ".join(fmt.format(value) for value in values)

    print(f"[{broker}] webhook: saturated {listed(app.rps())} req/s; at {rate} req/s p50 {listed(app.pct(50), '{:.2f}')} "
          f"p99 {listed(app.pct(99), '{:.2f}')} ms")
    if floor is None:
        return
    print(f"[{broker}] floor:   saturated {listed(floor.rps())} req/s; at {rate} req/s p50 {listed(floor.pct(50), '{:.2f}')} "
          f"p99 {listed(floor.pct(99), '{:.2f}')} ms")
    if app.saturated and floor.saturated:
        # Each round's pair ran back to back: its ratio is the least disturbed by whatever else the
        # machine is doing; the median of the rounds is the figure to quote.
        pairs = [a / f for a, f in zip(app.rps(), floor.rps(), strict=False)]
        print(f"[{broker}] ratio webhook ÷ floor (saturated): median {statistics.median(pairs):.2f} "
              f"(round by round: {listed(pairs, '{:.2f}')}; target >= 0.70); "
              f"webhook p99 at {rate} req/s: median {statistics.median(app.pct(99)):.2f} ms (target <= 10 ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="runs of each app, alternating which goes first")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the floor app (bench/floor/) and print the ratio")
    args = parser.parse_args()
    print(f"machine: {machine()}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"database: {args.database_url or 'SQLite (temp file)'}; gunicorn sync workers: {args.web_workers}")
    for broker in args.brokers.split(","):
        env = environment(database_url=args.database_url, redis_url=args.redis_url if broker == "redis" else None)
        prepare(env)
        if args.floor:
            signals_empty(env)  # the floor starts from an empty table too (floor/prepare.py)
        app, floor = Results(), Results() if args.floor else None
        floor_env = floor_environment({**env, "REDIS_URL": args.redis_url})
        with serving(env, web_workers=args.web_workers) as base, \
                (serving_floor(floor_env, web_workers=args.web_workers) if floor else _nothing()) as floor_base:
            for round_ in range(args.rounds):
                order = [("webhook", base, app)]
                if floor is not None:
                    order.insert(round_ % 2, ("floor", floor_base, floor))  # floor first in even rounds
                print(f"[{broker}] round {round_ + 1}", flush=True)
                for name, url, results in order:
                    measure(name, url, results, args)
        report(broker, app, floor, args.rate)


@contextmanager
def _nothing() -> Iterator[str]:
    yield ""


if __name__ == "__main__":
    main()
