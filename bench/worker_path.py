"""The worker's path in-process, statement by statement: task start → the order's request.

Runs the real task (trading.tasks.execute_signal) in this process on the paper exchange, against a
throw-away SQLite database or --database-url (its tables are created or migrated; signals are added
to whatever is there, under the strategy BENCH-PATH), production settings (DEBUG off). Signals
alternate buy and close on one symbol, so each costs one order. For each signal after the warm-up it
times the task's start to the paper exchange's `place_market_order` being called (the order's
compare-and-set included), and every statement before that: how long it took and how much Python
ran before it. It prints the p50 of the whole (buys and closes) and, per statement of an opening
signal in order, the p50 of both.
`--profile` adds a cProfile of that span (the profiler stops when the order is placed).

    .venv/bin/python bench/worker_path.py [--signals 400] [--database-url postgres://…] [--profile]
"""

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_in_process, machine  # noqa: E402

WARM_UP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=400)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", action="store_true", help="cProfile the span; print the heaviest functions")
    args = parser.parse_args()
    django_in_process(database_url=args.database_url, settings={
        "DEBUG": "0", "EXCHANGE": "paper", "SECRET_KEY": "bench-" + "x" * 50, "ALLOWED_HOSTS": "localhost"})
    from django.db import connection
    from django.utils import timezone

    from preferences.models import StrategyPreference
    from trading.exchange.paper import PaperExchange
    from trading.models import Signal
    from trading.tasks import execute_signal

    profiler = cProfile.Profile()
    placed: list[float] = []
    place = PaperExchange.place_market_order

    def place_timed(self, *call_args, **kwargs):
        placed.append(time.perf_counter())
        if args.profile:
            profiler.disable()
        return place(self, *call_args, **kwargs)

    PaperExchange.place_market_order = place_timed
    statements: list[tuple[str, float, float]] = []

    def timed(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((sql, started, time.perf_counter()))

    preference, _ = StrategyPreference.objects.update_or_create(
        name="BENCH-PATH", defaults={"products": ["BTCUSDT"], "leverage": 5, "allocation_pct": 10,
                                    "sizing": "allocation"})
    spans: list[float] = []
    steps: dict[int, list[tuple[str, float, float]]] = {}
    with connection.execute_wrapper(timed):
        for index in range(WARM_UP + args.signals):
            now = timezone.now()
            signal = Signal.objects.create(
                action="buy" if index % 2 == 0 else "close", symbol="BTCUSDT", price=45000, strategy="BENCH-PATH",
                preference=preference, sender_time=now, received_at=now, queued_at=now, status=Signal.Status.QUEUED,
                idempotency_key=f"bench-path:{time.time_ns()}:{index}")
            measured = index >= WARM_UP
            statements.clear()
            placed.clear()
            if measured and args.profile:
                profiler.enable()
            started = time.perf_counter()
            execute_signal(signal.pk, "BTCUSDT")
            if not measured or not placed:
                continue
            spans.append((placed[0] - started) * 1000)
            if signal.action != "buy":
                continue  # the table below is of opening signals: a close has fewer statements
            before, previous = [s for s in statements if s[1] < placed[0]], started
            for number, (sql, begun, ended) in enumerate(before):
                steps.setdefault(number, []).append((sql, (begun - previous) * 1000, (ended - begun) * 1000))
                previous = ended
            steps.setdefault(len(before), []).append(("(the order's request)", (placed[0] - previous) * 1000, 0.0))

    print(f"machine: {machine()}")
    print(f"database: {connection.vendor}; {len(spans)} signals after {WARM_UP} of warm-up")
    print(f"task start → place_market_order ms: p50 {statistics.median(spans):.2f} "
          f"p90 {statistics.quantiles(spans, n=10)[-1]:.2f}")
    print(" #  Python before  statement  (p50 over the opening signals, ms)")
    for number, seen in sorted(steps.items()):
        print(f"{number:2}  {statistics.median(s[1] for s in seen):13.3f}  {statistics.median(s[2] for s in seen):9.3f}"
              f"  {seen[0][0][:90]}")
    if args.profile:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
