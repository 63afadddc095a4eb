"""A bar close: N alerts over M symbols within well under a second, to an exchange a set round trip away.

A real deployment — gunicorn (2 workers), one qcluster (Q_WORKERS=2, each with its order threads),
the database and broker asked for — and the fake Binance exchange served from this process, every
request to it taking `--rtt` there and back (half each way; tests/fakes/binance_server.py `latency`),
with Binance's order rate limits enforced (a 429 past 300 orders per 10 s or 1,200 per minute).
After the first scheduler tick's jobs are done and a warm-up alert per symbol (leverage set, mark
prices read, lanes made), each run posts N alerts (buys, round-robin over the M symbols) open-loop
over `--spread` seconds, each on its own connection, from 127.0.0.1 (one address: the default
webhook rate limit must admit it), waits until every one is final, and reports:
- send → order: from the moment the alert was posted to its order reaching the exchange (the fake's
  arrival time), and to the order leaving the worker (`Execution.sent_at`): p50 / p99 / max;
- the last order's arrival after the first alert was posted, and orders per second over that;
- CPU per alert of each kind of process over the run (from /proc: gunicorn's processes, the
  qcluster's, the PostgreSQL backends serving the database, redis-server; this process — the load
  and the fake — apart), and the resident memory of each process;
- the physical limit, round trip + (CPU per alert of web + workers + PostgreSQL + Redis) × N ÷ cores,
  and the ratio of the last order's time to it;
- whether every alert filled exactly once (one order each at the exchange, no client order id twice,
  no 429). Exit status 1 otherwise.

    .venv/bin/python bench/burst.py [--alerts 150] [--symbols 50] [--rtt 0.2] [--spread 0.5] [--runs 3]
        [--brokers orm,redis] [--database-url postgres://…] [--redis-url redis://…]

A PostgreSQL database given is emptied of signals, executions and orders (and migrated); the Redis
database given has its job queue and this account's order budget cleared. Without --database-url,
a SQLite file in a temporary folder.
"""

import argparse
import copy
import http.client
import json
import math
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import ROUND_UP, Decimal
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chaos_cluster import Peek  # noqa: E402
from dispatch import (  # noqa: E402
    SCHEDULED,
    cluster_aides,
    cpu_ticks,
    database_cpu,
    load_average,
    process_groups,
    tree_cpu,
    wait_settled,
)

from common import PASSPHRASE, children, environment, machine, manage, percentile, quiet, rss_kib, serving  # noqa: E402
from tests.fakes import binance_server  # noqa: E402
from tests.fakes.binance_server import API_KEY, API_SECRET, FakeBinance  # noqa: E402
from trading.exchange.base import SymbolRules  # noqa: E402
from trading.exchange.rules import bundled_rules  # noqa: E402

SETUP = """
from django_q.models import OrmQ
from preferences.models import StrategyPreference as S
from trading.models import (Execution, Order, OrderBudget, Position, ProtectiveOrder, Signal, SymbolLane,
                            SymbolSetting)
S.objects.update_or_create(name='BURST', defaults={'products': PRODUCTS, 'leverage': 5, 'enabled': True})
for model in (OrmQ, ProtectiveOrder, Order, Execution, Signal, SymbolLane, SymbolSetting, Position, OrderBudget):
    model.objects.all().delete()
from django.conf import settings
if settings.Q_CLUSTER.get('redis'):
    from trading.queue import broker
    from django.core.cache import cache
    broker().purge_queue()
    client = cache._cache.get_client(write=True)
    for key in client.scan_iter(cache.make_and_validate_key('order-budget:*')):
        client.delete(key)
"""
PENDING_SQL = "SELECT COUNT(*) FROM trading_signal WHERE status IN ('queued', 'executing')"
EXECUTIONS_SQL = "SELECT signal_id, status, sent_at, decision, received_at FROM trading_execution WHERE signal_id >= {first}"
WARMUP_TIMEOUT = 120.0
DRAIN_TIMEOUT = 120.0
KINDS = ("web", "workers", "postgres", "redis")  # the deployment's processes; "load + fake" is this one


@dataclass
class Alert:
    symbol: str
    posted: float = 0.0  # epoch seconds, just before the request
    status: int = 0
    signal: int = 0


@dataclass
class Run:
    alerts: list[Alert]
    to_exchange: list[float] = field(default_factory=list)  # s, per alert: posted → order at the exchange
    to_sent: list[float] = field(default_factory=list)  # s: posted → order left the worker
    receipt_to_sent: list[float] = field(default_factory=list)  # s: the webhook's receipt → order left the worker
    last: float = math.nan  # s: first alert posted → last order at the exchange
    cpu_ms: dict[str, float] = field(default_factory=dict)  # per alert, per kind of process
    rss_mib: dict[str, list[float]] = field(default_factory=dict)
    waited: int = 0  # executions that waited for the order budget
    problems: list[str] = field(default_factory=list)

    def deployment_cpu_ms(self) -> float:
        return sum(self.cpu_ms.get(kind, 0.0) for kind in KINDS)


def orders_for(symbols: list[str]) -> dict[str, tuple[str, str]]:
    """A quantity and price per symbol that the exchange's rules accept: ten minimum quantities, worth
    twice the minimum order value (at least 20 USDT)."""
    found = {}
    for symbol in symbols:
        rules = all_rules()[symbol]
        quantity = rules.round_quantity(max(rules.min_qty, rules.step_size) * 10)
        target = max(2 * rules.min_notional, Decimal(20))
        price = ((target / quantity) / rules.tick_size).to_integral_value(rounding=ROUND_UP) * rules.tick_size
        found[symbol] = (format(quantity.normalize(), "f"), format(price.normalize(), "f"))
    return found


# The bundled snapshot lists twelve perpetuals; a bar close of 50 symbols needs more. These real names
# are listed at the fake with XRPUSDT's filters (the fake and the adapter only need the filters).
MORE_SYMBOLS = """DOTUSDT TRXUSDT POLUSDT ATOMUSDT NEARUSDT APTUSDT ARBUSDT OPUSDT FILUSDT ICPUSDT ETCUSDT BCHUSDT
XLMUSDT HBARUSDT INJUSDT TIAUSDT SEIUSDT RUNEUSDT AAVEUSDT UNIUSDT LDOUSDT STXUSDT IMXUSDT GRTUSDT ALGOUSDT
SANDUSDT MANAUSDT AXSUSDT EGLDUSDT THETAUSDT XTZUSDT EOSUSDT KAVAUSDT CRVUSDT DYDXUSDT WLDUSDT ENAUSDT ORDIUSDT
JUPUSDT PYTHUSDT""".split()
TEMPLATE = "XRPUSDT"


class BurstFake(FakeBinance):
    """The fake exchange, listing MORE_SYMBOLS besides the bundled ones (its exchangeInfo, and the rules
    it checks orders against: the fake module's `bundled_rules`, replaced in this process only)."""

    def _exchange_info(self) -> dict:
        info = super()._exchange_info()
        template = next(entry for entry in info["symbols"] if entry["symbol"] == TEMPLATE)
        info["symbols"] += [{**copy.deepcopy(template), "symbol": symbol} for symbol in MORE_SYMBOLS]
        return info


@cache
def all_rules() -> dict[str, SymbolRules]:
    rules = dict(bundled_rules())
    rules.update({symbol: replace(rules[TEMPLATE], symbol=symbol) for symbol in MORE_SYMBOLS})
    return rules


def pick_symbols(count: int) -> list[str]:
    usable = list(all_rules())
    if count > len(usable):
        raise SystemExit(f"only {len(usable)} symbols listed at the fake exchange")
    return usable[:count]


class Load:
    def __init__(self, base: str, orders: dict[str, tuple[str, str]]) -> None:
        self.host, port = base.removeprefix("http://").split(":")
        self.port, self.orders = int(port), orders
        self.number = 0

    def send(self, symbols: list[str], spread: float) -> list[Alert]:
        """Post one alert per entry of `symbols`, evenly over `spread` seconds, each on its own connection."""
        alerts = [Alert(symbol) for symbol in symbols]
        with ThreadPoolExecutor(max_workers=len(alerts)) as pool:
            start = time.perf_counter()
            for index, alert in enumerate(alerts):
                time.sleep(max(0.0, start + index * spread / max(1, len(alerts)) - time.perf_counter()))
                self.number += 1
                pool.submit(self._post, alert, self.number)
        return alerts

    def _post(self, alert: Alert, number: int) -> None:
        quantity, price = self.orders[alert.symbol]
        body = json.dumps({"action": "buy", "symbol": alert.symbol, "quantity": quantity, "price": price,
                           "strategy": "BURST", "id": f"burst-{os.getpid()}-{number}", "passphrase": PASSPHRASE,
                           "time": datetime.now(UTC).isoformat(timespec="milliseconds")}).encode()
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            alert.posted = time.time()
            connection.request("POST", "/webhook", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            alert.status, answer = response.status, response.read()
            alert.signal = json.loads(answer).get("signal_id", 0) if alert.status == 202 else 0
        except OSError:
            alert.status = 0
        finally:
            connection.close()


def wait_final(peek: Peek, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while peek.scalar(PENDING_SQL):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Cpu:
    """Clock ticks of each kind of process, from /proc; PostgreSQL backends sampled every half second
    (order threads open connections during the burst)."""

    def __init__(self, groups: dict[str, int], database: str | None, redis: bool) -> None:
        self.groups, self.database = groups, database
        self.redis = next((pid for pid in _pids() if _command(pid).startswith("redis-server")), None) if redis else None
        self.backends_start = database_cpu(database) if database else {}
        self.backends = dict(self.backends_start)
        self.start = self._ticks()
        self.stopping = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        self.sampler.start()

    def _ticks(self) -> dict[str, int]:
        ticks = {"web": tree_cpu(self.groups["web"]), "workers": tree_cpu(self.groups["worker"]),
                 "load + fake": cpu_ticks(os.getpid())}
        if self.redis:
            ticks["redis"] = cpu_ticks(self.redis)
        return ticks

    def _sample(self) -> None:
        while self.database and not self.stopping.wait(0.5):
            self.backends |= database_cpu(self.database)

    def stop(self, alerts: int) -> dict[str, float]:
        """Milliseconds of CPU per alert, per kind."""
        self.stopping.set()
        self.sampler.join()
        end = self._ticks()
        per_ms = 1000 / os.sysconf("SC_CLK_TCK") / alerts
        used = {kind: (end[kind] - self.start[kind]) * per_ms for kind in end}
        if self.database:
            self.backends |= database_cpu(self.database)
            used["postgres"] = sum(t - self.backends_start.get(pid, 0) for pid, t in self.backends.items()) * per_ms
        return used


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_by_process(groups: dict[str, int], database: str | None, q_workers: int) -> dict[str, list[float]]:
    """MiB resident of each process: gunicorn's, the qcluster's (by role), PostgreSQL's backends."""
    found: dict[str, list[float]] = {}

    def note(kind: str, pid: int) -> None:
        kib = rss_kib(pid)
        if kib:
            found.setdefault(kind, []).append(kib / 1024)

    note("web master", groups["web"])
    for pid in children(groups["web"]):
        note("web worker", pid)
    aides = {pid: role for role, pid in cluster_aides(groups["worker"], q_workers).items()}
    note("qcluster", groups["worker"])
    for sentinel in children(groups["worker"]):
        note("qcluster sentinel", sentinel)
        for pid in children(sentinel):
            note(f"qcluster {aides.get(pid, 'worker')}", pid)
    for pid in database_cpu(database) if database else {}:
        note("postgres backend", pid)
    return found


def measure(fake: FakeBinance, peek: Peek, run: Run, first_signal: int) -> None:
    """Each alert's figures, from the fake's arrivals and the executions."""
    arrivals: dict[int, float] = {}
    for request in fake.requests_to("/fapi/v1/order", "POST"):
        client_id = request.params.get("newClientOrderId", "")
        if client_id.startswith("at-"):
            arrivals[int(client_id.split("-")[1], 36)] = request.at  # the last attempt: the one that filled
    rows = {row[0]: row for row in peek.rows(EXECUTIONS_SQL.format(first=first_signal))}
    for alert in run.alerts:
        row = rows.get(alert.signal)
        if alert.status != 202 or row is None or row[1] != "filled" or alert.signal not in arrivals:
            run.problems.append(f"alert {alert.signal or '?'} ({alert.symbol}): answered {alert.status}, "
                                f"execution {row[1] if row else 'none'}")
            continue
        run.to_exchange.append(arrivals[alert.signal] - alert.posted)
        run.to_sent.append(_epoch(row[2]) - alert.posted)
        run.receipt_to_sent.append(_epoch(row[2]) - _epoch(row[4]))
        decision = row[3] if isinstance(row[3], dict) else json.loads(row[3] or "{}")
        run.waited += "order_budget" in decision
    if run.to_exchange:
        run.last = max(arrivals[a.signal] for a in run.alerts if a.signal in arrivals) - min(a.posted for a in run.alerts)


def _epoch(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC).timestamp()


def check_exchange(fake: FakeBinance, expected: int) -> list[str]:
    ids = [order["clientOrderId"] for order in fake.orders]
    problems = []
    if len(ids) != expected or len(set(ids)) != len(ids):
        problems.append(f"{len(ids)} orders at the exchange for {expected} alerts, {len(ids) - len(set(ids))} doubled")
    if fake.rate_limited:
        problems.append(f"{fake.rate_limited} orders answered 429 by the exchange")
    return problems


def deployment(args: argparse.Namespace, broker: str, fake: BurstFake) -> list[Run]:
    redis_url = args.redis_url if broker == "redis" else None
    env = environment(database_url=args.database_url, redis_url=redis_url, extra={
        "EXCHANGE": "binance", "BINANCE_BASE_URL": fake.url, "BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET,
        "BINANCE_TIMEOUT": "5", "Q_WORKERS": str(args.q_workers), "LANE_KEEPER": "1", "LOG_LEVEL": "warning",
        # The defaults: a bar close from one address must get through them.
        "WEBHOOK_RATE_BURST": "300", "WEBHOOK_RATE_PER_SECOND": "50"})
    symbols = pick_symbols(args.symbols)
    orders = orders_for(symbols)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "shell", "-c", SETUP.replace("PRODUCTS", repr(symbols)))
    scheduled = manage(env, "shell", "-c", SCHEDULED).split()
    fake.reset()
    fake.wallet = Decimal(10) ** 9
    for symbol in symbols:
        fake.set_price(symbol, orders[symbol][1])
    fake.latency = args.rtt
    peek = Peek(env["DATABASE_URL"])
    database = urlsplit(args.database_url).path.lstrip("/") if args.database_url else None
    runs = []
    with serving(env, web_workers=args.web_workers, worker=True) as base:
        groups = process_groups()
        load = Load(base, orders)
        load.send(symbols, args.spread)  # warm-up: each symbol's leverage set, mark price read, lane made
        if not wait_final(peek, WARMUP_TIMEOUT):
            raise SystemExit("the warm-up alerts did not all end")
        wait_settled(env, scheduled, 90)  # the first scheduler tick: every schedule is due on a new database
        load.send(symbols, args.spread)  # again, as the marks read before the tick may have aged
        wait_final(peek, WARMUP_TIMEOUT)
        for number in range(args.runs):
            # Binance's 10-second window (kept 11 s) of the run before has passed: each run is one bar close,
            # not the second of two within ten seconds, which the order budget would spread out.
            time.sleep(12 if number else 2)
            busy = quiet()
            fake.orders.clear()
            fake.requests.clear()
            fake.rate_limited = 0
            first = peek.scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM trading_signal")
            cpu = Cpu(groups, database, redis=redis_url is not None)
            run = Run(load.send([symbols[i % len(symbols)] for i in range(args.alerts)], args.spread))
            drained = wait_final(peek, DRAIN_TIMEOUT)
            run.cpu_ms = cpu.stop(args.alerts)
            run.rss_mib = rss_by_process(groups, database, args.q_workers)
            measure(fake, peek, run, first)
            run.problems += check_exchange(fake, args.alerts) + ([] if drained else ["signals still pending"])
            report_run(broker, number + 1, args, run, busy)
            runs.append(run)
    return runs


def report_run(broker: str, number: int, args: argparse.Namespace, run: Run, busy: float) -> None:
    ex, sent = run.to_exchange or [math.nan], run.to_sent or [math.nan]
    cores = os.cpu_count() or 1
    limit = args.rtt + run.deployment_cpu_ms() / 1000 * args.alerts / cores
    print(f"[{broker} #{number}] send → order at the exchange p50 {percentile(ex, 50):.2f} / p99 {percentile(ex, 99):.2f} "
          f"/ max {max(ex):.2f} s; → order sent p50 {percentile(sent, 50):.2f} / p99 {percentile(sent, 99):.2f} s; "
          f"last order {run.last:.2f} s after the first alert; {args.alerts / run.last:.0f} orders/s; receipt → order "
          f"sent p50 {percentile(run.receipt_to_sent, 50) * 1000:.1f} / p99 {percentile(run.receipt_to_sent, 99) * 1000:.1f} ms")
    print(f"[{broker} #{number}]   CPU per alert: " + ", ".join(f"{kind} {ms:.1f} ms" for kind, ms in run.cpu_ms.items())
          + f"; deployment {run.deployment_cpu_ms():.1f} ms")
    print(f"[{broker} #{number}]   physical limit {args.rtt:.2f} + {run.deployment_cpu_ms():.1f} ms × {args.alerts} ÷ {cores} "
          f"= {limit:.2f} s; last order ÷ limit = {run.last / limit:.2f}; waited for the order budget: {run.waited}; "
          f"cores {busy:.0%} busy before; load average {load_average()}")
    print(f"[{broker} #{number}]   RSS MiB: " + "; ".join(
        f"{kind} " + ", ".join(f"{mib:.0f}" for mib in sorted(values)) for kind, values in run.rss_mib.items()))
    if run.problems:
        print(f"[{broker} #{number}]   PROBLEMS: " + "; ".join(run.problems[:10]))
    else:
        print(f"[{broker} #{number}]   every alert filled once, no client order id twice, no 429")


def summarize(broker: str, runs: list[Run], args: argparse.Namespace) -> None:
    def median(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"

    cores = os.cpu_count() or 1
    ratios = [run.last / (args.rtt + run.deployment_cpu_ms() / 1000 * args.alerts / cores) for run in runs]
    p99 = median([percentile(r.to_exchange, 99) for r in runs])
    print(f"[{broker}] median of {len(runs)} runs (range): p99 send → order {p99} s; "
          f"last order {median([r.last for r in runs])} s; deployment CPU per alert "
          f"{median([r.deployment_cpu_ms() for r in runs])} ms; ratio to the limit {median(ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=150)
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--rtt", type=float, default=0.2, help="the exchange's round trip, seconds")
    parser.add_argument("--spread", type=float, default=0.5, help="seconds over which a burst's alerts are posted")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis-url", default=None)
    args = parser.parse_args()
    if "redis" in args.brokers.split(",") and not args.redis_url:
        parser.error("the Redis broker needs --redis-url")
    print(f"machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"database: {args.database_url or 'SQLite (temp file)'}; {args.alerts} alerts over {args.symbols} symbols "
          f"within {args.spread} s; exchange round trip {args.rtt * 1000:.0f} ms; gunicorn ×{args.web_workers}, "
          f"qcluster ×{args.q_workers}")
    binance_server.bundled_rules = all_rules  # the fake checks orders for the symbols it lists
    fake = BurstFake()
    failed = False
    try:
        for broker in args.brokers.split(","):
            runs = deployment(args, broker, fake)
            summarize(broker, runs, args)
            failed = failed or any(run.problems for run in runs)
    finally:
        fake.stop()
    print("RESULT: " + ("FAIL" if failed else "PASS: every alert filled once"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
