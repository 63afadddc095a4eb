"""Where a webhook request's time goes: the WSGI application called in-process, no server, no network.

Calls the real app's WSGI handler (alsatrade.wsgi, production settings: DEBUG=0, the full middleware
stack) and the floor's (bench/floor/) with the same POST /webhook, every request a new valid signal,
and prints the mean µs per request of each and their ratio, then a profile of the real app's
requests (cProfile by default; pyinstrument if installed and asked for). What gunicorn and the
network add is the same for both apps, so this is the part the webhook's own code decides.

    .venv/bin/python bench/profile_webhook.py [--requests 2000] [--profiler cprofile|pyinstrument|none] [--parts]
        [--database-url postgres://postgres@127.0.0.1:5432/bench] [--redis-url redis://127.0.0.1:6379/14]
"""

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(1, str(BENCH.parent))  # the project, for alsatrade.wsgi
from common import ROOT, alert_body, environment, machine, prepare, signals_empty  # noqa: E402

WSGIApp = Callable[[dict, Callable], object]


def wsgi_post(application: WSGIApp, body: bytes) -> int:
    """One POST /webhook as gunicorn hands it over; returns the status code."""
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": "/webhook", "SCRIPT_NAME": "", "QUERY_STRING": "",
        "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
        "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "Go-http-client/1.1", "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.multithread": False, "wsgi.multiprocess": True,
        "wsgi.run_once": False, "wsgi.version": (1, 0),
    }
    status: list[str] = []
    result = application(environ, lambda code, headers, exc_info=None: status.append(code))
    b"".join(result)  # type: ignore[arg-type]
    close = getattr(result, "close", None)
    if close:
        close()  # request_finished: Django closes or keeps the database connection here
    return int(status[0].split()[0])


def _backend_cpu_reader() -> Callable[[], float]:
    """Seconds of CPU the PostgreSQL backend serving this process has used (0 on SQLite): with the
    process's own CPU time, what one request costs the machine, whatever else is running on it."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return lambda: 0.0
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime

    return read


def parts(requests: int) -> None:
    """Each step of a queued signal's path timed alone, as the webhook runs it (CPU of this process
    and of its PostgreSQL backend): where the time between the floor and the webhook goes."""
    import common

    common.PASSPHRASE = os.environ["WEBHOOK_PASSPHRASE"]
    __import__("alsatrade.wsgi")  # settings and apps, as in the server
    from django.db import connection
    from django.utils import timezone

    from preferences.intake import STRATEGIES, strategy_read
    from trading import webhook
    from trading.intake import idempotency_key, parse_body, parse_signal, redact
    from trading.models import Signal
    from trading.queue import _send, broker
    from trading.rate_limit import RATE_LIMITER

    backend = _backend_cpu_reader()
    body = alert_body(0)
    preference = strategy_read("BENCH")
    generation = RATE_LIMITER.admit("127.0.0.1").strategies
    data = parse_body(body)
    parsed, payload = parse_signal(data), redact(data)
    counter = iter(range(10**9))

    def insert() -> None:
        fields = webhook.signal_fields(parsed, payload, "127.0.0.1", timezone.now())
        Signal.objects.insert(**fields, preference_id=preference.pk if preference else None,
                              idempotency_key=f"parts-{time.time()}-{next(counter)}", status=Signal.Status.QUEUED,
                              reason="", http_status=202, queued_at=timezone.now(), intake_us=1)

    def select_1() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    steps: list[tuple[str, Callable[[], object]]] = [
        ("health check (SELECT 1, CONN_HEALTH_CHECKS)", select_1),
        ("rate limit + strategy generation (one EVALSHA)", lambda: RATE_LIMITER.admit("127.0.0.1")),
        ("parse, validate, redact, key", lambda: idempotency_key(parse_signal(parse_body(body))) and redact(data)),
        ("strategy SELECT (ORM), as without Redis", lambda: strategy_read("BENCH")),
        ("strategy kept for the generation", lambda: STRATEGIES.get("BENCH", generation)),
        ("Signal INSERT (26 columns, one statement)", insert),
        ("job: package, sign, RPUSH", lambda: _send(0)),
    ]
    for name, step in steps:
        for _ in range(50):
            step()
        wall, cpu, db_cpu = time.perf_counter(), time.process_time(), backend()
        for _ in range(requests):
            step()
        wall_us, cpu_us = (time.perf_counter() - wall) / requests * 1e6, (time.process_time() - cpu) / requests * 1e6
        db_us = (backend() - db_cpu) / requests * 1e6
        print(f"  {name:46} wall {wall_us:5.0f} µs   CPU: Python {cpu_us:4.0f} µs, PostgreSQL {db_us:4.0f} µs")
    broker().purge_queue()


def instructions_per_request(app: str, requests: int, env: dict) -> float:
    """Instructions the app's process executes per request: a child run under callgrind with `requests`
    requests, less one with none (start-up and warm-up are the same in both). Instruction counts do
    not depend on what else the machine is doing, unlike the CPU times above."""

    def counted(n: int) -> int:
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
                   "--child", app, "--requests", str(n), "--profiler", "none"]
        run = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                             check=True)
        return int(re.search(r"Collected : (\d+)", run.stderr).group(1))

    return (counted(requests) - counted(0)) / requests


def child(app: str, requests: int, profiler: str, top: int) -> None:
    """In the subprocess: import the app, warm up, time, then profile."""
    import common

    common.PASSPHRASE = os.environ["WEBHOOK_PASSPHRASE"]  # the parent's, which the server was given
    module = "floor.wsgi" if app == "floor" else "alsatrade.wsgi"
    application = __import__(module, fromlist=["application"]).application
    counter = iter(range(10**9))

    def loop(n: int) -> dict[int, int]:
        codes: dict[int, int] = {}
        for _ in range(n):
            code = wsgi_post(application, alert_body(next(counter)))
            codes[code] = codes.get(code, 0) + 1
        return codes

    loop(200)
    if not requests:  # start-up and warm-up only (instructions_per_request's baseline)
        return
    backend = _backend_cpu_reader()
    started, cpu, db_cpu = time.perf_counter(), time.process_time(), backend()
    codes = loop(requests)
    per_request = (time.perf_counter() - started) / requests * 1e6
    cpu_us = (time.process_time() - cpu) / requests * 1e6
    db_cpu_us = (backend() - db_cpu) / requests * 1e6
    print(json.dumps({"app": app, "us": per_request, "cpu_us": cpu_us, "db_cpu_us": db_cpu_us, "codes": codes}), flush=True)
    if profiler == "none":
        return
    if profiler == "pyinstrument":
        from pyinstrument import Profiler

        profile = Profiler(interval=0.0002)
        profile.start()
        loop(requests)
        profile.stop()
        print(profile.output_text(unicode=True, color=False, show_all=False), file=sys.stderr)
        return
    # CPU time, not wall time: waiting on PostgreSQL or Redis is not what limits throughput on a
    # saturated machine, the CPU each request burns is.
    profile_c = cProfile.Profile(time.process_time)
    profile_c.enable()
    loop(requests)
    profile_c.disable()
    stats = pstats.Stats(profile_c, stream=sys.stderr)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--profiler", choices=["cprofile", "pyinstrument", "none"], default="cprofile")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--parts", action="store_true", help="also time each step of the webhook's path alone")
    parser.add_argument("--instructions", type=int, default=0, metavar="N",
                        help="also count CPU instructions per request of each app's Python process under valgrind's "
                             "callgrind (N requests; repeatable where timings swing with the machine)")
    parser.add_argument("--child", choices=["webhook", "floor", "parts"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "parts":
        parts(args.requests)
        return
    if args.child:
        child(args.child, args.requests, args.profiler, args.top)
        return
    print(f"machine: {machine()}")
    env = environment(database_url=args.database_url, redis_url=args.redis_url)
    prepare(env)
    signals_empty(env)  # as the floor's table is emptied (floor/prepare.py)
    floor_env = {**env, "PYTHONPATH": str(BENCH), "DJANGO_SETTINGS_MODULE": "floor.settings"}
    subprocess.run([sys.executable, "-m", "floor.prepare"], cwd=ROOT, env=floor_env, check=True)
    times: dict[str, list[float]] = {"floor": [], "webhook": []}
    cpu: dict[str, list[float]] = {"floor": [], "webhook": []}
    for round_ in range(args.rounds):
        for app in (["floor", "webhook"] if round_ % 2 == 0 else ["webhook", "floor"]):
            last = round_ == args.rounds - 1 and app == "webhook"
            command = [sys.executable, __file__, "--child", app, "--requests", str(args.requests), "--top", str(args.top),
                       "--profiler", args.profiler if last else "none"]
            out = subprocess.run(command, cwd=ROOT, env=floor_env if app == "floor" else env, check=True,
                                 stdout=subprocess.PIPE, text=True).stdout
            result = json.loads(out.strip().splitlines()[-1])
            times[app].append(result["us"])
            cpu[app].append(result["cpu_us"] + result["db_cpu_us"])
            print(f"{app:8} {result['us']:.0f} µs/request in-process (CPU: Python {result['cpu_us']:.0f} µs, "
                  f"PostgreSQL backend {result['db_cpu_us']:.0f} µs); answers {result['codes']}", flush=True)
    floor_us, app_us = min(times["floor"]), min(times["webhook"])
    floor_cpu, app_cpu = min(cpu["floor"]), min(cpu["webhook"])
    print(f"best of {args.rounds}: floor {floor_us:.0f} µs, webhook {app_us:.0f} µs; floor ÷ webhook = {floor_us / app_us:.2f}")
    print(f"CPU (Python + PostgreSQL backend), best of {args.rounds}: floor {floor_cpu:.0f} µs, webhook {app_cpu:.0f} µs; "
          f"floor ÷ webhook = {floor_cpu / app_cpu:.2f}")
    if args.instructions:
        counted = {app: instructions_per_request(app, args.instructions, floor_env if app == "floor" else env)
                   for app in ("floor", "webhook")}
        print(f"instructions per request (Python process, callgrind, {args.instructions} requests): floor "
              f"{counted['floor'] / 1e6:.2f} M, webhook {counted['webhook'] / 1e6:.2f} M; "
              f"floor ÷ webhook = {counted['floor'] / counted['webhook']:.2f}", flush=True)
    if args.parts:
        print("the webhook's steps, each alone:", flush=True)
        subprocess.run([sys.executable, __file__, "--child", "parts", "--requests", str(args.requests)], cwd=ROOT, env=env,
                       check=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
