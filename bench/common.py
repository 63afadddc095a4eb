"""Shared by the benchmarks: a throw-away deployment (database, gunicorn, worker) and percentiles."""

import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PASSPHRASE = "bench-passphrase-" + secrets.token_hex(8)


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (f"n={len(values)} p50={percentile(values, 50):.2f} p90={percentile(values, 90):.2f} "
            f"p99={percentile(values, 99):.2f} max={max(values):.2f}")


def machine() -> str:
    cpu = "?"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.node()} · {os.cpu_count()} cores · {cpu} · Python {platform.python_version()}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(*, database_url: str | None, redis_url: str | None, extra: dict | None = None) -> dict:
    """Production-like settings for a throw-away deployment; SQLite in a temp dir by default."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    if database_url is None:
        database_url = f"sqlite:///{tempfile.mkdtemp(prefix='alsatrade-bench-')}/bench.sqlite3"
    env.update({
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": database_url,
        "WEBHOOK_PASSPHRASE": PASSPHRASE,
        # One load generator is one address: lift the per-address limit for the benchmark.
        "WEBHOOK_RATE_BURST": "1000000",
        "WEBHOOK_RATE_PER_SECOND": "1000000",
        "LOG_LEVEL": "error",
        "PYTHONWARNINGS": "ignore::UserWarning",
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def django_in_process(*, database_url: str | None, settings: dict[str, str]) -> None:
    """Set Django up in this process for an in-process benchmark: `settings` as environment variables,
    the given database or a throw-away SQLite one (migrated), no Redis."""
    os.environ.update({"DJANGO_SETTINGS_MODULE": "alsatrade.settings", "LOG_LEVEL": "error", **settings,
                       "DATABASE_URL": database_url or f"sqlite:///{tempfile.mkdtemp(prefix='alsatrade-bench-')}/bench.sqlite3"})
    os.environ.pop("REDIS_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def manage(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout


def prepare(env: dict) -> None:
    """Migrate, create the strategy the load posts to, and empty the queue."""
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "shell", "-c", (
        "from preferences.models import StrategyPreference as S; "
        "S.objects.update_or_create(name='BENCH', defaults={'products': ['BTCUSDT', 'ETHUSDT'], 'leverage': 5, "
        "'sizing': 'allocation'}); "
        "from django_q.models import OrmQ; OrmQ.objects.all().delete(); "
        "from trading.models import Signal; print(Signal.objects.count())"
    ))
    if env.get("REDIS_URL"):
        manage(env, "shell", "-c", "from trading.queue import broker; broker().purge_queue()")


def machine_cpu() -> tuple[int, int]:
    """(busy, all) clock ticks over every core since boot, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def quiet(*, below: float = 0.2, longest: float = 20.0) -> float:
    """Wait until the machine's cores are less than `below` busy over a second (the previous run's
    after-effects, PostgreSQL writing back, have passed), at most `longest` seconds; how busy it was."""
    deadline = time.monotonic() + longest
    while True:
        busy, total = machine_cpu()
        time.sleep(1)
        busy_after, total_after = machine_cpu()
        share = (busy_after - busy) / max(1, total_after - total)
        if share < below or time.monotonic() > deadline:
            return share


def signals_empty(env: dict) -> None:
    """Start from an empty Signal table, as the floor does from an empty one of its own: runs before
    would otherwise leave the webhook inserting into a table (and indexes) of 100,000s of rows, the
    floor into an empty one. TRUNCATE, not DELETE: no dead rows left behind either."""
    manage(env, "shell", "-c", (
        "from django.db import connection; from trading.models import Signal; "
        "connection.cursor().execute('TRUNCATE trading_signal CASCADE') if connection.vendor == 'postgresql' "
        "else Signal.objects.all().delete()"
    ))


@contextmanager
def serving(env: dict, *, web_workers: int, worker: bool = False):
    """gunicorn (and optionally a qcluster) on a free port; yields the base URL."""
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "alsatrade.wsgi", "--bind", f"127.0.0.1:{port}",
         "--workers", str(web_workers), "--log-level", "warning", "--backlog", "2048"],
        cwd=ROOT, env=env,
    )
    processes = [web]
    if worker:
        processes.append(subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base)
        yield base
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_until_up(base: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            urllib.request.urlopen(base + "/health", timeout=2)
            return
        except urllib.error.HTTPError:
            return  # 503 (no worker yet) still means the server answers
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not start")


def alert_body(n: int, *, symbol: str = "BTCUSDT", action: str = "buy") -> bytes:
    return json.dumps({
        "action": action, "symbol": symbol, "quantity": "0.001", "price": "45000", "strategy": "BENCH",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "id": f"bench-{n}-{secrets.token_hex(4)}",
        "passphrase": PASSPHRASE,
    }).encode()


def children(pid: int) -> list[int]:
    """The pids whose parent is pid (from /proc; processes that end meanwhile are skipped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command in /proc/<pid>/stat may hold spaces and parentheses: the ppid follows the last ")".
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            found.append(int(entry.name))
    return found


def tree(root: int) -> list[int]:
    """root and every process below it."""
    pids, index = [root], 0
    while index < len(pids):
        pids.extend(children(pids[index]))
        index += 1
    return pids


def rss_kib(pid: int) -> int | None:
    """The process's resident memory (VmRSS) in KiB; None once it has gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
