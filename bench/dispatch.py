"""Webhook to order, through a real deployment: gunicorn + qcluster + paper exchange, under steady load.

Signals are posted open-loop: signal i is due at start + i / rate and is sent then, whatever the
earlier ones are doing (each on its own connection, as TradingView does). They go round-robin over
the symbols, and each symbol alternates buy and close, so positions stay bounded. A warm-up (every
process's first requests and tasks, every symbol's first order) is sent and drained first and left
out of the figures.

Each Execution's timestamps give the stages: queue (receipt → `queued_at`, taken as the webhook
builds the Signal row: parsing, checks, the strategy's lookup), dispatch (→ `started_at`: the insert
and commit, the job's push, the broker, a worker picking it up, and the task's lane and claim),
prepare (→ `sent_at`: the decision and the order row, up to the request); their sum is the headline
figure, receipt → order on the wire. For the signals around the median and in the top 1 % of that
figure, the mean of each stage says where their time went.

`--memory N` sends N signals instead and samples the resident memory (VmRSS, summed over each
process tree: gunicorn's master and workers; the qcluster and every process under it) after the
warm-up of `--memory-warmup` signals, every `--memory-every` signals, and once every signal is
final; flat means the end within ±10 % of the post-warm-up figure.

`--trace` splits dispatch further. Every process of the deployment loads a `sitecustomize` (put on
its PYTHONPATH) that notes, per signal: when its job became visible to the workers (after the
commit with the ORM broker, after the push with Redis), when the cluster's pusher took it off the
broker, and when a worker process began the task; the rest, up to `started_at`, is the task's own
work before the Execution row exists (lane, claim; or waiting for the lane holder to get to it).
A worker's queries are timed too, and worker processes starting (django-q2 recycles each after 500
tasks) are noted, like the periodic jobs, as what took workers away.

`--q-override OPTION=INT` (what-if) sets a django-q2 option in the deployment that its settings do
not offer, through the same hook: `save_limit=0`, `recycle=5000`.

    .venv/bin/python bench/dispatch.py [--signals 1000] [--rate 20] [--symbols BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT]
        [--brokers orm,redis] [--database-url postgres://…] [--redis-url redis://…] [--poll 0.03]
    .venv/bin/python bench/dispatch.py --memory 10000 --rate 20 --brokers redis --database-url postgres://…
    .venv/bin/python bench/dispatch.py --trace …
"""

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PASSPHRASE,
    children,
    environment,
    machine,
    machine_cpu,
    manage,
    percentile,
    prepare,
    rss_kib,
    serving,
    summary,
    tree,
)

# Prices the alerts carry (the paper exchange fills at the alert's price); any symbol of
# trading/exchange/data/exchange_info.json works, at the price given here or `--price SYMBOL=PRICE`.
PRICES = {
    "BTCUSDT": "45000", "ETHUSDT": "3000", "BNBUSDT": "600", "SOLUSDT": "150", "XRPUSDT": "0.6", "DOGEUSDT": "0.15",
    "ADAUSDT": "0.5", "LINKUSDT": "15", "AVAXUSDT": "30", "LTCUSDT": "80", "SUIUSDT": "1.5", "1000PEPEUSDT": "0.01",
}
STAGES = ("queue", "dispatch", "prepare")
WARMUP_TIMEOUT = 120.0  # seconds for the warm-up signals to become final
DRAIN_TIMEOUT = 600.0  # seconds for the measured ones, after the last was sent
SETTLE_TIMEOUT = 120.0  # seconds for the first scheduler tick's jobs to be done

# Allocation 1 % × 5: ~500 USDT a trade, so the paper account's fees (0.05 %) last for 10,000s of signals.
RESET = """
from analytics.models import AccountSnapshot
from django_q.models import OrmQ
from preferences.models import StrategyPreference as S
from trading.models import (Execution, Order, PaperAccount, PaperOrder, PaperPosition, PaperPrice, PaperProtective,
                            Position, ProtectiveOrder, Signal, SymbolLane, SymbolSetting)
S.objects.update_or_create(name='BENCH', defaults={'products': PRODUCTS, 'leverage': 5, 'allocation_pct': 1,
                                                   'sizing': 'allocation', 'enabled': True})
for model in (OrmQ, ProtectiveOrder, Order, Execution, Signal, SymbolLane, SymbolSetting, Position,
              PaperProtective, PaperOrder, PaperPosition, PaperPrice, PaperAccount, AccountSnapshot):
    model.objects.all().delete()
"""
PENDING = """
from trading.models import Signal
print(Signal.objects.filter(strategy='BENCH').exclude(status__in=Signal.FINAL_STATUSES).count())
"""
# Schedules overdue, or whose last job (queued by this deployment: not among OLD) has no result yet.
# At the cluster's first scheduler tick (30 s after its start) every schedule of a new database is due.
SCHEDULED = """
from django_q.models import Schedule
print(' '.join(task for task in Schedule.objects.values_list('task', flat=True) if task))
"""
UNSETTLED = """
from django.utils import timezone
from django_q.models import Schedule, Task
overdue = Schedule.objects.filter(next_run__lte=timezone.now()).count()
running = sum(1 for task in Schedule.objects.exclude(task__in=OLD).values_list('task', flat=True)
              if task and not Task.objects.filter(id=task).exists())
print(overdue + running)
"""
READ = """
import json
from django_q.models import Task
from trading.models import Execution
def t(value):
    return None if value is None else value.timestamp()
rows = [{'signal': e.signal_id, 'comment': e.signal.comment, 'symbol': e.symbol, 'status': e.status, 'reason': e.reason[:120],
         'received': t(e.received_at),
         'queued': t(e.queued_at), 'started': t(e.started_at), 'sent': t(e.sent_at)}
        for e in Execution.objects.filter(strategy='BENCH').select_related('signal').order_by('id')]
jobs = [{'func': job.func, 'started': t(job.started), 'stopped': t(job.stopped)}
        for job in Task.objects.exclude(func='trading.tasks.execute_signal')]
print(json.dumps({'executions': rows, 'jobs': jobs}))
"""

# Loaded by every Python process of the deployment with --trace or --q-override. Traced, it only listens and writes
# "<epoch seconds> <event> <signal id, or pid for 'spawned'>" lines to <DISPATCH_TRACE>/<pid>, and in a worker each
# execute_signal task's queries (statement, ms) as a JSON line to <DISPATCH_TRACE>/<pid>.sql.
HOOK = """
import json
import os
import time


def _note(event, signal_id):
    with open(os.path.join(os.environ["DISPATCH_TRACE"], str(os.getpid())), "a") as log:
        log.write(f"{time.time():.6f} {event} {signal_id}\\n")


def _install():
    from django.db import connection, transaction
    from django_q import pusher, signals
    from trading import queue

    send = queue._send

    def traced_send(signal_id, symbol=None):
        if transaction.get_connection().in_atomic_block:  # the ORM broker: the commit makes the job visible
            send(signal_id, symbol)
            transaction.on_commit(lambda: _note("visible", signal_id))
        else:  # Redis: the push does, the moment it lands
            _note("visible", signal_id)
            send(signal_id, symbol)

    queue._send = traced_send

    package = pusher.SignedPackage

    class TracedPackage(package):
        @staticmethod
        def loads(obj):
            task = package.loads(obj)
            if task.get("func") == queue.EXECUTE_TASK:
                _note("popped", task["args"][0])
            return task

    pusher.SignedPackage = TracedPackage

    # In a worker: every query of an execute_signal task, timed, written out when the task ends.
    running = {"signal": None, "queries": [], "began": 0.0}

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            if running["signal"] is not None:
                running["queries"].append((sql[:100], (time.perf_counter() - started) * 1000,
                                           (started - running["began"]) * 1000))

    def began(sender, func, task, **kwargs):
        if task.get("func") == queue.EXECUTE_TASK:
            _note("began", task["args"][0])
            if timed not in connection.execute_wrappers:
                connection.execute_wrappers.append(timed)
            running["signal"], running["queries"], running["began"] = task["args"][0], [], time.perf_counter()

    def ended(sender, func, task, **kwargs):
        if task.get("func") == queue.EXECUTE_TASK:
            _note("done", task["args"][0])
        if running["signal"] is not None:
            with open(os.path.join(os.environ["DISPATCH_TRACE"], f"{os.getpid()}.sql"), "a") as log:
                log.write(json.dumps({"signal": running["signal"], "queries": running["queries"]}) + "\\n")
            running["signal"] = None

    def spawned(sender, proc_name, **kwargs):
        _note("spawned", os.getpid())

    def saved(sender, task, **kwargs):  # in the monitor, once the result is saved and acknowledged
        if task.get("func") == queue.EXECUTE_TASK:
            _note("saved", task["args"][0])

    signals.pre_execute.connect(began, weak=False)
    signals.post_execute_in_worker.connect(ended, weak=False)
    signals.post_spawn.connect(spawned, weak=False)
    signals.post_execute.connect(saved, weak=False)


def _override():
    # What-if runs: django-q2 options this deployment's settings would not give (e.g. save_limit=0).
    from django_q.conf import Conf

    for option in os.environ["DISPATCH_Q"].split(","):
        key, value = option.split("=", 1)
        setattr(Conf, key.upper(), int(value))


if os.environ.get("DISPATCH_TRACE") or os.environ.get("DISPATCH_Q"):
    import django

    _setup = django.setup

    def _hooked_setup(*args, **kwargs):
        _setup(*args, **kwargs)
        if os.environ.get("DISPATCH_Q"):
            _override()
        if os.environ.get("DISPATCH_TRACE"):
            _install()

    django.setup = _hooked_setup
"""
# queued_at → started_at, split at the traced events (first of each per signal).
TRACED_STEPS = (("commit + push", "queued", "visible"), ("broker → pusher", "visible", "popped"),
                ("pusher → worker", "popped", "began"), ("task → started_at", "began", "started"))


@dataclass
class Sent:
    """What the load generator saw of one signal: how late it went out, how long the 202 took."""

    index: int
    late_ms: float
    answer_ms: float
    status: int


@dataclass
class Execution:
    """One signal's path, in milliseconds, from the Execution's timestamps."""

    index: int
    signal: int
    symbol: str
    status: str
    reason: str
    stages: dict[str, float]  # empty when no order was sent
    times: dict[str, float]  # epoch seconds: received, queued, started, sent (and traced events)

    @property
    def on_wire_ms(self) -> float:
        return sum(self.stages[stage] for stage in STAGES)


@dataclass
class Memory:
    """Resident memory samples: KiB per process group, labelled with how many signals were out by then."""

    groups: dict[str, int] = field(default_factory=dict)  # name → root pid
    aides: dict[str, int] = field(default_factory=dict)  # the cluster's monitor and pusher
    samples: list[tuple[str, dict[str, int]]] = field(default_factory=list)

    def take(self, label: str) -> None:
        """Each group's tree, and within the cluster its long-lived aides and its workers (which
        django-q2 replaces every 500 tasks) apart."""
        sample = {name: group_rss(root) for name, root in self.groups.items()}
        aides = {f"  {name}": rss_kib(pid) or 0 for name, pid in self.aides.items()}
        sentinels = children(self.groups["worker"])
        workers = [pid for pid in children(sentinels[0]) if pid not in self.aides.values()] if len(sentinels) == 1 else []
        if aides and workers:
            sample |= aides | {"  workers": sum(rss_kib(pid) or 0 for pid in workers)}
        self.samples.append((label, sample))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=1000, help="measured signals, after the warm-up")
    parser.add_argument("--rate", type=float, default=20, help="signals per second, open-loop")
    parser.add_argument("--symbols", default="BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT")
    parser.add_argument("--price", action="append", default=[], metavar="SYMBOL=PRICE",
                        help="the alert's price for a symbol not in the built-in list")
    parser.add_argument("--warmup", type=int, default=40, help="signals sent and drained first, not counted")
    parser.add_argument("--settle", action=argparse.BooleanOptionalAction, default=True,
                        help="after the warm-up, wait for the first scheduler tick's jobs (all schedules are due "
                             "then on a new deployment) to be done")
    parser.add_argument("--poll", default="0.03", help="Q_POLL (the setting's default)")
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--q-workers", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    # Not 14: bench/webhook.py queues there under the same cluster name, and a worker of ours
    # would take its jobs (and `prepare` would purge them).
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/10")
    parser.add_argument("--memory", type=int, default=0, metavar="N",
                        help="send N signals and sample resident memory instead of --signals")
    parser.add_argument("--memory-warmup", type=int, default=1000, help="signals before the first memory sample")
    parser.add_argument("--memory-every", type=int, default=1000, help="signals between memory samples")
    parser.add_argument("--trace", action="store_true", help="split dispatch at the job's visibility, pusher and worker")
    parser.add_argument("--q-override", action="append", default=[], metavar="OPTION=INT",
                        help="what-if: set a django-q2 option in the deployment, e.g. save_limit=0 or recycle=5000")
    parser.add_argument("--save", metavar="PREFIX", help="write every signal's figures to PREFIX-<broker>.json")
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    prices = PRICES | dict(item.split("=", 1) for item in args.price)
    unknown = [symbol for symbol in symbols if symbol not in prices]
    if unknown:
        parser.error(f"no price for {', '.join(unknown)}: give --price SYMBOL=PRICE")
    count = args.memory or args.signals

    print(f"machine: {machine()}")
    print(f"database: {args.database_url or 'SQLite (temp file)'}; Q_POLL={args.poll}; gunicorn ×{args.web_workers}, "
          f"qcluster ×{args.q_workers}; {args.warmup} warm-up + {count} signals at {args.rate}/s over {', '.join(symbols)}"
          + (f"; what-if: {', '.join(args.q_override)}" if args.q_override else ""))
    for broker in args.brokers.split(","):
        run(args, broker, symbols, prices, count)


def run(args: argparse.Namespace, broker: str, symbols: list[str], prices: dict[str, str], count: int) -> None:
    """One deployment with one broker: warm up, send `count` signals, drain, report."""
    env = environment(database_url=args.database_url, redis_url=args.redis_url if broker == "redis" else None,
                      extra={"Q_POLL": args.poll, "Q_WORKERS": str(args.q_workers)})
    trace_dir = hooked(env, trace=args.trace, overrides=args.q_override)
    prepare(env)
    manage(env, "shell", "-c", RESET.replace("PRODUCTS", repr(symbols)))
    scheduled = manage(env, "shell", "-c", SCHEDULED).split()
    loads = [f"before {load_average()}"]
    memory = Memory()
    with serving(env, web_workers=args.web_workers, worker=True) as base:
        memory.groups = process_groups()
        load = Load(base, symbols, prices)
        load.run(range(args.warmup), args.rate)
        wait_final(env, WARMUP_TIMEOUT)
        if args.settle:
            wait_settled(env, scheduled, SETTLE_TIMEOUT)

        def sample(sent: int) -> None:
            if args.memory and sent >= args.memory_warmup and (sent - args.memory_warmup) % args.memory_every == 0:
                memory.take(f"{sent} sent")

        memory.aides = cluster_aides(memory.groups["worker"], args.q_workers)  # all spawned by now
        cpu = CpuShare(memory.groups, args.database_url, args.q_workers)
        load.run(range(args.warmup, args.warmup + count), args.rate, sample)
        drained = wait_final(env, DRAIN_TIMEOUT)
        if args.memory:
            memory.take(f"{count} final")
        loads.append(f"after {load_average()}")
        loads.append(cpu.stop())
    executions, jobs = read_executions(env)
    trace = read_trace(executions, trace_dir) if trace_dir is not None else Trace()
    if args.save:
        save(Path(f"{args.save}-{broker}.json"), load.sent, executions)
    report(broker, args.warmup, load.sent, executions, drained)
    report_disturbances(broker, [e for e in executions if e.index >= args.warmup and e.stages], jobs, trace.spawns)
    if trace_dir is not None:
        report_trace(broker, [e for e in executions if e.index >= args.warmup and e.stages], trace.queries)
    print(f"[{broker}] load average (1 / 5 / 15 min): {'; '.join(loads)}")
    if args.memory:
        report_memory(broker, memory)


class Load:
    """Posts signals open-loop: each at its due time, on its own thread and connection."""

    def __init__(self, base: str, symbols: list[str], prices: dict[str, str]) -> None:
        self.host, port = base.removeprefix("http://").split(":")
        self.port = int(port)
        self.symbols, self.prices = symbols, prices
        self.sent: list[Sent] = []
        self._lock = threading.Lock()

    def body(self, index: int) -> bytes:
        symbol = self.symbols[index % len(self.symbols)]
        action = "buy" if (index // len(self.symbols)) % 2 == 0 else "close"
        return json.dumps({
            "action": action, "symbol": symbol, "quantity": "0.001", "price": self.prices[symbol], "strategy": "BENCH",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "id": f"dispatch-{index}-{secrets.token_hex(4)}",
            "comment": f"bench #{index}", "passphrase": PASSPHRASE,
        }).encode()

    def run(self, indices: range, rate: float, before: Callable[[int], None] | None = None) -> None:
        """Sends indices[k] at start + k / rate; before(k) runs first, when k signals are out."""
        with ThreadPoolExecutor(max_workers=64) as pool:
            start = time.perf_counter()
            for k, index in enumerate(indices):
                if before is not None:
                    before(k)
                due = start + k / rate
                time.sleep(max(0.0, due - time.perf_counter()))
                pool.submit(self._post, index, due)
        failed = [sent for sent in self.sent if sent.status != 202]
        if failed:
            raise RuntimeError(f"{len(failed)} webhooks not answered 202, e.g. #{failed[0].index}: {failed[0].status}")

    def _post(self, index: int, due: float) -> None:
        late = time.perf_counter() - due
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request("POST", "/webhook", self.body(index), {"Content-Type": "application/json"})
            status = connection.getresponse().status
        except OSError:
            status = 0
        finally:
            connection.close()
        with self._lock:
            self.sent.append(Sent(index, late * 1000, (time.perf_counter() - due) * 1000, status))


def wait_final(env: dict, timeout: float) -> bool:
    """Waits until every BENCH signal is final; False if some are not within the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pending = int(manage(env, "shell", "-c", PENDING).split()[-1])
        if pending == 0:
            return True
        if time.monotonic() > deadline:
            print(f"  {pending} signals still not final after {timeout:.0f} s")
            return False
        time.sleep(1)


@dataclass
class Job:
    """A job other than a signal's (the periodic ones): it holds a worker from queued to done."""

    func: str
    started: float
    stopped: float


def wait_settled(env: dict, old: list[str], timeout: float) -> None:
    """Waits until no schedule is overdue and every job the schedules queued since is done."""
    deadline = time.monotonic() + timeout
    while int(manage(env, "shell", "-c", UNSETTLED.replace("OLD", repr(old))).split()[-1]) > 0:
        if time.monotonic() > deadline:
            print(f"  schedules still due or running after {timeout:.0f} s")
            return
        time.sleep(1)


def read_executions(env: dict) -> tuple[list[Execution], list[Job]]:
    found = json.loads(manage(env, "shell", "-c", READ).strip().splitlines()[-1])
    executions = []
    for row in found["executions"]:
        times = [row[key] for key in ("received", "queued", "started", "sent")]
        stages = {} if None in times else {  # no order sent (nothing to do, refused …): nothing to time
            stage: (end - start) * 1000 for stage, start, end in zip(STAGES, times, times[1:], strict=False)}
        index = int(row["comment"].rsplit("#", 1)[1])
        known = {key: row[key] for key in ("received", "queued", "started", "sent") if row[key] is not None}
        executions.append(Execution(index, row["signal"], row["symbol"], row["status"], row["reason"], stages, known))
    return executions, [Job(**job) for job in found["jobs"]]


def report(broker: str, warmup: int, sent: list[Sent], executions: list[Execution], drained: bool) -> None:
    counted = [e for e in executions if e.index >= warmup]
    measured = [e for e in counted if e.stages]
    posted = [s for s in sent if s.index >= warmup]
    statuses = Counter(e.status for e in counted)
    print(f"[{broker}] {len(posted)} posted, {len(counted)} executed "
          f"({', '.join(f'{n} {s}' for s, n in sorted(statuses.items()))}), {len(measured)} sent an order"
          f"{'' if drained else '; NOT all final'}")
    for (status, reason), n in Counter((e.status, e.reason) for e in counted if not e.stages).most_common(3):
        print(f"[{broker}]   no order, {n}×: {status}: {reason}")
    print(f"[{broker}] load generator: late ms {summary([s.late_ms for s in posted])}")
    print(f"[{broker}] webhook answer (from due) ms {summary([s.answer_ms for s in posted])}")
    if not measured:
        return
    wire = [e.on_wire_ms for e in measured]
    print(f"[{broker}] receipt → order on the wire ms {summary(wire)}")
    for stage in STAGES:
        print(f"[{broker}]   {stage:8s} ms {summary([e.stages[stage] for e in measured])}")
    for label, low, high in (("p45–p55", 45, 55), ("≥ p99", 99, 100)):
        band = [e for e in measured if percentile(wire, low) <= e.on_wire_ms <= percentile(wire, high)]
        total = statistics.fmean(e.on_wire_ms for e in band)
        shares = ", ".join(f"{stage} {statistics.fmean(e.stages[stage] for e in band):.1f} ms "
                           f"({statistics.fmean(e.stages[stage] for e in band) / total:.0%})" for stage in STAGES)
        print(f"[{broker}] where the time goes, {label} ({len(band)} signals, mean {total:.1f} ms): {shares}")
    slowest = sorted(measured, key=lambda e: e.on_wire_ms)[-5:]
    print(f"[{broker}] slowest: " + "; ".join(
        f"#{e.index} {e.symbol} {e.on_wire_ms:.0f} ms (" + " ".join(f"{s} {e.stages[s]:.0f}" for s in STAGES) + ")"
        for e in reversed(slowest)))


def hooked(env: dict, *, trace: bool, overrides: list[str]) -> Path | None:
    """Puts the hook on the deployment's PYTHONPATH, to trace (returns the directory its notes go
    to) and/or to override django-q2 options."""
    if not trace and not overrides:
        return None
    hook = Path(tempfile.mkdtemp(prefix="dispatch-hook-"))
    (hook / "sitecustomize.py").write_text(HOOK)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
    if overrides:
        env["DISPATCH_Q"] = ",".join(overrides)
    if not trace:
        return None
    notes = Path(tempfile.mkdtemp(prefix="dispatch-trace-"))
    env["DISPATCH_TRACE"] = str(notes)
    return notes


def report_disturbances(broker: str, executions: list[Execution], jobs: list[Job], spawns: list[float]) -> None:
    """What took workers away during the measured signals: periodic jobs (from queued to done, and
    half a second after) and, when traced, worker processes starting (django-q recycles each after
    500 tasks: from a second before, when the old one stopped taking tasks, to 1.5 s after). The
    figures again without the signals that arrived during one."""
    if not executions:
        return
    first, last = min(e.times["received"] for e in executions), max(e.times["sent"] for e in executions)
    windows = [(f"{job.func.rsplit('.', 1)[-1]} at +{job.started - first:.1f} s for "
                f"{(job.stopped - job.started) * 1000:.0f} ms", job.started, job.stopped + 0.5)
               for job in jobs if job.stopped >= first and job.started <= last]
    windows += [(f"worker started at +{moment - first:.1f} s", moment - 1.0, moment + 1.5)
                for moment in spawns if first <= moment <= last]
    if not windows:
        print(f"[{broker}] no periodic job ran{' and no worker started' if spawns else ''} during the measured signals")
        return
    windows.sort(key=lambda window: window[1])
    print(f"[{broker}] during the measured signals: {'; '.join(label for label, _, _ in windows)}")
    hit = {e.signal for e in executions if any(start <= e.times["received"] <= end for _, start, end in windows)}
    wire = [e.on_wire_ms for e in executions]
    tail = [e for e in executions if e.on_wire_ms >= percentile(wire, 99)]
    print(f"[{broker}]   of the top 1 % ({len(tail)}), {sum(e.signal in hit for e in tail)} arrived during one of these; "
          f"without the {len(hit)} that did: receipt → on the wire ms "
          f"{summary([e.on_wire_ms for e in executions if e.signal not in hit])}")


@dataclass
class Trace:
    """What the trace hook noted besides each signal's events."""

    queries: dict[int, list[tuple[str, float, float]]] = field(default_factory=dict)  # signal → its task's queries
    spawns: list[float] = field(default_factory=list)  # when worker processes started (first and recycled)


def read_trace(executions: list[Execution], notes: Path) -> Trace:
    """Adds the traced events (the earliest of each per signal) to the executions' times."""
    events: dict[int, dict[str, float]] = {}
    trace = Trace()
    for log in notes.iterdir():
        for line in log.read_text().splitlines():
            if log.suffix == ".sql":
                task = json.loads(line)
                trace.queries[task["signal"]] = [(sql, ms, at) for sql, ms, at in task["queries"]]
                continue
            moment, event, key = line.split()
            if event == "spawned":
                trace.spawns.append(float(moment))
                continue
            noted = events.setdefault(int(key), {})
            noted[event] = min(float(moment), noted.get(event, float("inf")))
    for execution in executions:
        execution.times |= events.get(execution.signal, {})
    return trace


def report_trace(broker: str, executions: list[Execution], queries: dict[int, list[tuple[str, float, float]]]) -> None:
    """Dispatch split at the traced events, and the worker's queries before the order."""
    # A signal whose lane was busy is executed by the holder, which drains the symbol: often before
    # its own task reaches a worker. Only signals executed by their own task split cleanly.
    own = [e for e in executions if "began" in e.times and e.times["began"] <= e.times["started"]]
    print(f"[{broker}] dispatch, traced ({len(own)} signals executed by their own task, "
          f"{len(executions) - len(own)} by the lane holder draining their symbol):")
    for name, start, end in TRACED_STEPS:
        values = [(e.times[end] - e.times[start]) * 1000 for e in own if start in e.times and end in e.times]
        if values:
            print(f"[{broker}]   {name:18s} ms {summary(values)} mean={statistics.fmean(values):.2f}")
    # A worker that is recycled exits only once its results are through the pipe to the monitor.
    lag = [(e.times["saved"] - e.times["done"]) * 1000 for e in executions if "saved" in e.times and "done" in e.times]
    if lag:
        print(f"[{broker}] monitor: task done → its result saved ms {summary(lag)}")
    # The worker's queries, split where the signal is claimed: the lane and the claim, then the
    # decision, the rows and the compare-and-set (which comes after `sent_at` is stamped).
    phases: dict[str, list[list[tuple[str, float, float]]]] = {"task → claimed": [], "claimed → sent": []}
    for execution in own:
        statements = [sql for sql, *_ in queries.get(execution.signal, [])]
        claims = [i for i, sql in enumerate(statements) if sql.startswith('UPDATE "trading_signal" SET "status"')]
        inserts = [i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "trading_execution"')]
        sends = [i for i, sql in enumerate(statements) if sql.startswith('UPDATE "trading_order" SET "status"')]
        if len(inserts) != 1 or not sends or not claims or claims[0] > sends[0]:
            continue  # the task executed several signals (it drained its symbol): no clean split
        task = queries[execution.signal]
        phases["task → claimed"].append(task[:claims[0] + 1])
        phases["claimed → sent"].append(task[claims[0] + 1:sends[0] + 1])
    for phase, tasks in phases.items():
        if not tasks:
            continue
        print(f"[{broker}] {phase}: queries per signal p50 {percentile([len(t) for t in tasks], 50):.0f}; "
              f"their time ms {summary([sum(ms for _, ms, _ in t) for t in tasks])}")
        by_statement: dict[str, list[float]] = {}
        for task in tasks:
            for sql, ms, _ in task:
                by_statement.setdefault(sql[:70], []).append(ms)
        heaviest = sorted(by_statement.items(), key=lambda item: -sum(item[1]))[:6]
        for sql, times in heaviest:
            print(f"[{broker}]     {len(times) / len(tasks):.1f}× mean {statistics.fmean(times):.2f} "
                  f"p99 {percentile(times, 99):.2f} ms  {sql}")
        # The rest is Python (and, before the first query, the connection's health check, which runs
        # on the driver's cursor and is not seen here): the time from the task's start to each query's.
        before = [t[0][2] for t in tasks if t]
        between = [sum(later[2] - (earlier[2] + earlier[1]) for earlier, later in zip(t, t[1:], strict=False))
                   for t in tasks]
        if phase == "task → claimed" and before:
            print(f"[{broker}]     outside queries: task start → first query ms {summary(before)}; "
                  f"between queries ms {summary(between)}")
        elif between:
            print(f"[{broker}]     outside queries: between queries ms {summary(between)}")


def save(path: Path, sent: list[Sent], executions: list[Execution]) -> None:
    """Every signal's figures, for a closer look than the summary."""
    path.write_text(json.dumps({"sent": [vars(s) for s in sent], "executions": [vars(e) for e in executions]}))


def report_memory(broker: str, memory: Memory) -> None:
    if not memory.samples:
        return
    names = list(memory.samples[0][1])
    print(f"[{broker}] resident memory, MiB (web: gunicorn's master and workers; worker: the qcluster's whole tree):")
    for label, kib in memory.samples:
        print(f"[{broker}]   {label:>12s}: " + ", ".join(f"{name.strip()} {kib.get(name, 0) / 1024:.1f}" for name in names))
    first, last = memory.samples[0][1], memory.samples[-1][1]
    for name in names:
        ratio = last.get(name, 0) / first[name]
        verdict = "flat" if abs(ratio - 1) <= 0.10 else "NOT flat"
        print(f"[{broker}] {name}: {first[name] / 1024:.1f} → {last.get(name, 0) / 1024:.1f} MiB, ×{ratio:.3f} ({verdict})")


def process_groups() -> dict[str, int]:
    """The roots `serving` started, as children of this process: gunicorn's master and the qcluster."""
    roots: dict[str, int] = {}
    for pid in children(os.getpid()):
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "gunicorn" in command:
            roots["web"] = pid
        elif "qcluster" in command:
            roots["worker"] = pid
    if set(roots) != {"web", "worker"}:
        raise RuntimeError(f"could not find gunicorn and qcluster among this process's children: {roots}")
    return roots


def group_rss(root: int) -> int:
    """KiB resident over a process tree, now (workers recycled since the last sample count as they are now)."""
    return sum(rss_kib(pid) or 0 for pid in tree(root))


class CpuShare:
    """How busy the machine's cores were over a stretch, and how much of that was this deployment
    (its processes and, on PostgreSQL, the server processes serving its database: sampled every
    half second, as connections older than CONN_MAX_AGE are replaced meanwhile)."""

    def __init__(self, groups: dict[str, int], database_url: str | None, q_workers: int) -> None:
        self.roots = list(groups.values())
        self.groups = groups
        self.aides = cluster_aides(groups["worker"], q_workers)
        self.parts = self._parts()
        self.database = urlsplit(database_url).path.lstrip("/") if database_url else None
        self.started, (self.busy, self.total) = time.monotonic(), machine_cpu()
        self.ours = self._ours()
        self.backends_start = database_cpu(self.database) if self.database else {}
        self.backends_seen = dict(self.backends_start)
        self.stopping = threading.Event()
        self.sampler = threading.Thread(target=self._sample, daemon=True)
        if self.database:
            self.sampler.start()

    def _ours(self) -> int:
        return sum(tree_cpu(root) for root in self.roots)

    def _parts(self) -> dict[str, int]:
        """Ticks per part: gunicorn; the cluster's monitor (saves results) and pusher; the rest of the
        cluster (its workers, recycled ones included, and the sentinel)."""
        web, cluster = tree_cpu(self.groups["web"]), tree_cpu(self.groups["worker"])
        aides = {name: cpu_ticks(pid) for name, pid in self.aides.items()}
        return {"web": web, **aides, "workers": cluster - sum(aides.values())}

    def _sample(self) -> None:
        while not self.stopping.wait(0.5):
            self.backends_seen |= database_cpu(self.database or "")

    def stop(self) -> str:
        busy, total = machine_cpu()
        seconds = time.monotonic() - self.started
        per_core_second = os.sysconf("SC_CLK_TCK") * seconds * (os.cpu_count() or 1)
        ours = (self._ours() - self.ours) / per_core_second
        text = f"cores busy {(busy - self.busy) / (total - self.total):.0%} over {seconds:.0f} s, this deployment {ours:.0%}"
        parts = {name: (ticks - self.parts[name]) / per_core_second for name, ticks in self._parts().items()}
        text += " (" + ", ".join(f"{name} {share:.0%}" for name, share in parts.items()) + ")"
        if self.database:
            self.stopping.set()
            self.sampler.join()
            self.backends_seen |= database_cpu(self.database)
            backends = sum(ticks - self.backends_start.get(pid, 0) for pid, ticks in self.backends_seen.items())
            text += f" + its PostgreSQL backends {backends / per_core_second:.0%}"
        return text


def cluster_aides(root: int, q_workers: int) -> dict[str, int]:
    """The pids of the cluster's monitor and pusher: django-q2's sentinel (the qcluster's one child)
    starts the workers, then the monitor, then the pusher."""
    sentinels = children(root)
    spawned = sorted(children(sentinels[0])) if len(sentinels) == 1 else []
    if len(spawned) != q_workers + 2:
        return {}
    return {"monitor": spawned[q_workers], "pusher": spawned[q_workers + 1]}


def database_cpu(database: str) -> dict[int, int]:
    """CPU clock ticks of each PostgreSQL backend serving `database` (its title names it)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace").split()
            if len(title) >= 4 and title[0] == "postgres:" and database in title[3:5]:
                found[int(entry.name)] = cpu_ticks(int(entry.name))
        except OSError:
            continue
    return found


def cpu_ticks(pid: int) -> int:
    """Clock ticks of CPU used by a process and by its children that ended and were waited for."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime


def tree_cpu(root: int) -> int:
    """Clock ticks of CPU used by a process tree, including its children that ended and were
    waited for (django-q's recycled workers, gunicorn's restarted ones)."""
    return sum(cpu_ticks(pid) for pid in tree(root))


def load_average() -> str:
    return " / ".join(open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
