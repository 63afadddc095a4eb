"""A large trading history written with bulk_create, for query-count tests and bench/pages.py: executions
(each with its signal and one order) alternating open and close per strategy and symbol, ledger lines
for them, and account snapshots. Deterministic (a seeded random), fast (a few bulk inserts)."""

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from analytics.models import AccountSnapshot, LedgerEntry
from trading.models import Execution, Order, Signal

STRATEGIES = ("ALSAPRO 1", "ALSAPRO 2", "TREND")
SYMBOLS = (("BTCUSDT", Decimal("45000"), Decimal("0.01")), ("ETHUSDT", Decimal("2500"), Decimal("0.2")),
           ("SOLUSDT", Decimal("150"), Decimal("3")))
PAIRS = [(strategy, symbol) for strategy in STRATEGIES for symbol in SYMBOLS]
LEDGER_KINDS = (LedgerEntry.Kind.COMMISSION, LedgerEntry.Kind.REALIZED_PNL, LedgerEntry.Kind.FUNDING_FEE)
BATCH = 2000


def bulk_history(*, executions: int, ledger: int, snapshots: int = 0, days: int = 60, account: str = "paper",
                 now: datetime | None = None) -> None:
    now = now or timezone.now()
    rng = random.Random(7)
    step = timedelta(days=days) / max(executions, 1)
    start = now - timedelta(days=days)
    orders = _orders(_executions(executions, start, step, rng), rng)
    _ledger(ledger, orders, account, rng)
    _snapshots(snapshots, start, now, account, rng)


def _executions(count: int, start: datetime, step: timedelta, rng: random.Random) -> list[Execution]:
    signals, rows = [], []
    for n in range(count):
        strategy, (symbol, _price, _qty) = PAIRS[n % len(PAIRS)]
        received = start + step * n
        signals.append(Signal(action="buy", symbol=symbol, strategy=strategy, status="done", idempotency_key=f"bulk-{n}",
                              received_at=received, http_status=202, source_ip="52.89.214.238"))
    Signal.objects.bulk_create(signals, batch_size=BATCH)
    for signal in signals:
        received = signal.received_at
        gaps = [timedelta(milliseconds=rng.uniform(1, 60)) for _ in range(5)]
        stamps = [received]
        for gap in gaps:
            stamps.append(stamps[-1] + gap)
        rows.append(Execution(
            signal=signal, strategy=signal.strategy, symbol=signal.symbol, exchange="paper", status="filled",
            reason="bulk", received_at=received, queued_at=stamps[1], started_at=stamps[2], sent_at=stamps[3],
            acknowledged_at=stamps[4], finished_at=stamps[5],
        ))
    Execution.objects.bulk_create(rows, batch_size=BATCH)
    return rows


def _orders(executions: list[Execution], rng: random.Random) -> list[Order]:
    orders = []
    for n, execution in enumerate(executions):
        _strategy, (symbol, price, quantity) = PAIRS[n % len(PAIRS)]
        round_trip, closing = divmod(n // len(PAIRS), 2)
        long = round_trip % 2 == 0
        buy = long != bool(closing)
        fill_price = (price * Decimal(1 + rng.uniform(-0.02, 0.02))).quantize(Decimal("0.01"))
        orders.append(Order(
            execution=execution, leg=1, purpose="close" if closing else "open", client_order_id=f"bulk-{n}",
            symbol=symbol, side="BUY" if buy else "SELL", quantity=quantity, executed_qty=quantity, avg_price=fill_price,
            status="FILLED", commission=(quantity * fill_price * Decimal("0.0005")).quantize(Decimal("0.0001")),
            realized_pnl=Decimal(rng.uniform(-30, 40)).quantize(Decimal("0.01")) if closing else Decimal(0),
            created_at=execution.received_at, acknowledged_at=execution.acknowledged_at,
        ))
    Order.objects.bulk_create(orders, batch_size=BATCH)
    return orders


def _ledger(count: int, orders: list[Order], account: str, rng: random.Random) -> None:
    rows = []
    for n in range(count):
        order = orders[n % len(orders)]
        kind = LEDGER_KINDS[(n // len(orders)) % len(LEDGER_KINDS)]
        amount = {
            LedgerEntry.Kind.COMMISSION: -order.commission,
            LedgerEntry.Kind.REALIZED_PNL: order.realized_pnl,
            LedgerEntry.Kind.FUNDING_FEE: Decimal(rng.uniform(-0.5, 0.3)).quantize(Decimal("0.0001")),
        }[kind]
        rows.append(LedgerEntry(
            account=account, tran_id=str(n), kind=kind, symbol=order.symbol, amount=amount,
            time=order.created_at + timedelta(seconds=n // len(orders)), order=order, strategy=order.execution.strategy,
        ))
    LedgerEntry.objects.bulk_create(rows, batch_size=BATCH)


def _snapshots(count: int, start: datetime, now: datetime, account: str, rng: random.Random) -> None:
    equity = Decimal(10_000)
    rows = []
    step = (now - start) / max(count, 1)
    for n in range(count):
        equity += Decimal(rng.uniform(-5, 5.2)).quantize(Decimal("0.01"))
        rows.append(AccountSnapshot(
            taken_at=start + step * (n + 1), exchange="paper", account=account, wallet_balance=equity,
            available_balance=equity * Decimal("0.9"), equity=equity, unrealized_pnl=Decimal(0),
        ))
    AccountSnapshot.objects.bulk_create(rows, batch_size=BATCH)
