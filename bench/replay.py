"""The replay (#21) at the size the issue names: 30 days × 10 symbols × 1,000 recorded alerts.

In this process, against a throw-away SQLite database or --database-url (migrated; the bench's rows
go under strategy BENCH-REPLAY and are removed first): 10 symbols of 1-minute klines for 30 days
(432,000 rows, written once: the import's gaps are then none, so no exchange is asked), 1,000
accepted signals alternating opens and closes at prices on each symbol's path, a strategy with a 2 %
stop-loss and a 3-level take-profit ladder, and one replay run changing the stop to 1.5 % and adding
a trailing stop, executed as the worker executes it (analytics.replay_runs.replay_execute).

It prints the run's wall time, split into its parts, and the reference measured in the same run:
reading the same klines and signals from the database (what any replay must do at least), as a
ratio. Target: the whole replay under 60 s.

    .venv/bin/python bench/replay.py [--runs 3] [--database-url postgres://…]
"""

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import django_in_process, machine  # noqa: E402

STRATEGY = "BENCH-REPLAY"
SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT", "LINKUSDT", "AVAXUSDT", "LTCUSDT")
START_PRICES = {"BTCUSDT": 45000, "ETHUSDT": 3000, "BNBUSDT": 600, "SOLUSDT": 150, "XRPUSDT": 0.6, "DOGEUSDT": 0.15,
                "ADAUSDT": 0.5, "LINKUSDT": 15, "AVAXUSDT": 30, "LTCUSDT": 80}
DAYS = 30
ALERTS = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    django_in_process(database_url=args.database_url, settings={
        "DEBUG": "0", "EXCHANGE": "paper", "SECRET_KEY": "bench-" + "x" * 50, "ALLOWED_HOSTS": "localhost"})
    from django.db import connection

    start = datetime(2026, 10, 1, tzinfo=UTC)
    end = start + timedelta(days=DAYS)
    print(f"machine: {machine()}; {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"database: {connection.vendor}; {DAYS} days × {len(SYMBOLS)} symbols × {ALERTS} alerts")
    seconds = seed(start, end)
    print(f"set-up (klines and signals written, not timed below): {seconds:.1f} s")
    totals, references = [], []
    for number in range(1, args.runs + 1):
        reference = read_everything(start, end)
        total, stages = replay_once(start, end)
        totals.append(total)
        references.append(reference)
        print(f"run {number}: replay {total:.2f} s ({stages}); reference (read the klines and signals) "
              f"{reference:.2f} s; replay ÷ reference {total / reference:.2f}")
    print(f"median: replay {statistics.median(totals):.2f} s, reference {statistics.median(references):.2f} s, "
          f"ratio {statistics.median(totals) / statistics.median(references):.2f}; target < 60 s: "
          f"{'met' if max(totals) < 60 else 'NOT met'}")


def seed(start: datetime, end: datetime) -> float:
    from analytics.models import Kline, ReplayRun
    from preferences.models import StrategyPreference
    from trading.models import Signal

    began = time.perf_counter()
    ReplayRun.objects.filter(strategy=STRATEGY).delete()
    Signal.objects.filter(strategy=STRATEGY).delete()
    StrategyPreference.objects.filter(name=STRATEGY).delete()
    StrategyPreference.objects.create(
        name=STRATEGY, products=list(SYMBOLS), sizing="signal", leverage=5, stop_loss=Decimal(2),
        take_profit_ladder=[{"pct": "1", "share": "40"}, {"pct": "2", "share": "30"}, {"pct": "3", "share": "30"}])
    rng = random.Random(21)
    paths: dict[str, list[Decimal]] = {}
    minutes = int((end - start).total_seconds() // 60)
    for symbol in SYMBOLS:
        Kline.objects.filter(symbol=symbol, open_time__gte=start, open_time__lt=end).delete()
        price = float(START_PRICES[symbol])
        rows, path = [], []
        for minute in range(minutes):
            move = price * rng.gauss(0, 0.0012)
            high, low = max(price, price + move) * (1 + abs(rng.gauss(0, 0.0004))), \
                min(price, price + move) * (1 - abs(rng.gauss(0, 0.0004)))
            close = price + move
            tick = _places(START_PRICES[symbol])
            rows.append(Kline(symbol=symbol, open_time=start + timedelta(minutes=minute), open=_d(price, tick),
                              high=_d(high, tick), low=_d(low, tick), close=_d(close, tick), volume=Decimal(1)))
            path.append(_d(close, tick))
            price = close
        Kline.objects.bulk_create(rows, batch_size=5000)
        paths[symbol] = path
    signals = []
    per_symbol = ALERTS // len(SYMBOLS)
    for symbol in SYMBOLS:
        for n in range(per_symbol):
            minute = int((n + 0.5) * minutes / per_symbol)
            opening = n % 2 == 0
            price = paths[symbol][minute]
            quantity = (Decimal(200) / price).quantize(Decimal("0.001")) or Decimal("0.001")
            signals.append(Signal(
                strategy=STRATEGY, action="buy" if opening else "sell", symbol=symbol, quantity=quantity, price=price,
                market_position="long" if opening else "flat", prev_market_position="flat" if opening else "long",
                status="done", received_at=start + timedelta(minutes=minute, seconds=7),
                idempotency_key=f"bench-replay-{symbol}-{n}"))
    Signal.objects.bulk_create(signals, batch_size=1000)
    return time.perf_counter() - began


def _places(start_price: float) -> Decimal:
    return Decimal("0.01") if start_price >= 1 else Decimal("0.00001")


def _d(value: float, tick: Decimal) -> Decimal:
    return Decimal(str(value)).quantize(tick)


def read_everything(start: datetime, end: datetime) -> float:
    """The floor: every bar and signal of the replay read from the database, nothing else."""
    from analytics.models import Kline
    from trading.models import Signal

    began = time.perf_counter()
    for symbol in SYMBOLS:
        list(Kline.objects.filter(symbol=symbol, open_time__gte=start, open_time__lt=end)
             .values_list("open_time", "open", "high", "low", "close"))
    list(Signal.objects.filter(strategy=STRATEGY, received_at__gte=start, received_at__lt=end).values_list("id", "price"))
    return time.perf_counter() - began


def replay_once(start: datetime, end: datetime) -> tuple[float, str]:
    from analytics.models import ReplayRun
    from analytics.replay_runs import replay_execute

    run = ReplayRun.objects.create(strategy=STRATEGY, start=start, end=end, slippage_bps=Decimal(2),
                                   overrides={"stop_loss": "1.5", "trailing_stop": {"callback": "1", "activation_pct": "1"}})
    began = time.perf_counter()
    said = replay_execute(run.pk)
    total = time.perf_counter() - began
    run.refresh_from_db()
    if run.status != "done":
        raise SystemExit(f"the replay ended {run.status}: {run.error or said}")
    outcome = run.outcome
    assert outcome is not None
    return total, (f"{outcome.alerts} alerts; recorded net {outcome.recorded.net_pnl:.2f}, "
                   f"changed net {outcome.changed.net_pnl:.2f} USDT, {outcome.differences_total} alerts differ")


if __name__ == "__main__":
    main()
