"""The worker's own cost per signal: task start → order leaving, and exchange requests per signal.

Runs the real task (trading.tasks.execute_signal) in this process against a throw-away SQLite
database (or --database-url), first on the Binance adapter talking to the local HTTP fake of the
futures API (tests/fakes/binance_server.py: real connector, real HTTP, signed requests), then on the
paper exchange. Signals alternate open/close so each costs one order. The first signals warm the
caches (clock offset, exchangeInfo, position mode, leverage, margin type, equity snapshot) and are
reported separately.

    .venv/bin/python bench/execution.py [--signals 300] [--database-url postgres://…]
"""

import argparse
import os
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_in_process, machine, summary  # noqa: E402

WARM_UP = 4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    from tests.fakes.binance_server import API_KEY, API_SECRET, FakeBinance

    fake = FakeBinance()
    django_in_process(database_url=args.database_url, settings={
        "DEBUG": "1", "EXCHANGE": "binance", "BINANCE_BASE_URL": fake.url, "BINANCE_API_KEY": API_KEY,
        "BINANCE_API_SECRET": API_SECRET,
    })
    from django.test.utils import override_settings

    from trading.exchange import reset_exchange

    print(f"machine: {machine()}")
    print(f"database: {os.environ['DATABASE_URL'].split('://')[0]}; signals per exchange: {args.signals}")
    run("binance (HTTP fake)", args.signals, fake, summary)
    with override_settings(EXCHANGE="paper"):
        reset_exchange()
        run("paper", args.signals, None, summary)
    fake.stop()


def run(label: str, count: int, fake, summary) -> None:
    from django.utils import timezone

    from preferences.models import StrategyPreference
    from trading.models import Execution, Signal
    from trading.tasks import execute_signal

    name = f"BENCH {label}"
    preference, _ = StrategyPreference.objects.update_or_create(
        name=name, defaults={"products": ["BTCUSDT"], "leverage": 5, "allocation_pct": 10,
                                    "sizing": "allocation"})
    prepare_ms, task_ms, requests_per_signal = [], [], Counter()
    warm = []
    for index in range(count):
        now = timezone.now()
        signal = Signal.objects.create(
            action="buy" if index % 2 == 0 else "close", symbol="BTCUSDT", price=45000, strategy=name,
            preference=preference, sender_time=now, received_at=now, queued_at=now, status=Signal.Status.QUEUED,
            idempotency_key=f"bench:{label}:{time.time_ns()}:{index}",
        )
        before = len(fake.requests) if fake else 0
        started = time.perf_counter()
        execute_signal(signal.pk)
        elapsed = (time.perf_counter() - started) * 1000
        execution = Execution.objects.get(signal=signal)
        assert execution.status == "filled", execution.reason
        prepare = (execution.sent_at - execution.started_at) / timedelta(milliseconds=1)
        paths = [r.path for r in fake.requests[before:]] if fake else []
        if index < WARM_UP:
            warm.append((round(prepare, 2), round(elapsed, 2), paths))
            continue
        prepare_ms.append(prepare)
        task_ms.append(elapsed)
        requests_per_signal[len(paths)] += 1
    print(f"[{label}] first {WARM_UP} signals (cold caches): " + "; ".join(
        f"prepare {p} ms, task {t} ms, requests {len(paths)} {sorted(set(paths)) if paths else ''}" for p, t, paths in warm))
    print(f"[{label}] task start → order leaving (ms): {summary(prepare_ms)}")
    print(f"[{label}] whole task incl. the order round trip and recording (ms): {summary(task_ms)}")
    if fake:
        print(f"[{label}] exchange requests per signal (steady state): {dict(requests_per_signal)}")


if __name__ == "__main__":
    main()
