"""Trading records for the page tests, created directly in the database."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from analytics.models import AccountSnapshot
from trading.models import Execution, Order, Position, ProtectiveOrder, Signal, WorkerHeartbeat
from trading.recovery import heartbeat

PLAN = {
    "outcome": "trade",
    "reason": "open long 0.111",
    "legs": [{"purpose": "open", "side": "BUY", "quantity": "0.111", "reduce_only": False, "position_side": "BOTH"}],
    "sizing": {"mode": "allocation", "allocation_pct": "10", "equity": "10000", "leverage": 5, "price": "45000",
               "unrounded": "0.111111111111", "quantity": "0.111", "step": "0.001"},
    "price": "45000",
}


def make_execution(n: int, *, received_at: datetime | None = None, **fields) -> Execution:
    received_at = received_at or timezone.now() - timedelta(seconds=n)
    fields = {
        "strategy": "ALSAPRO 1", "symbol": "BTCUSDT", "status": "filled", "exchange": "paper",
        "queued_at": received_at + timedelta(milliseconds=2), "started_at": received_at + timedelta(milliseconds=10),
        "sent_at": received_at + timedelta(milliseconds=12), "acknowledged_at": received_at + timedelta(milliseconds=40),
        "finished_at": received_at + timedelta(milliseconds=45), "signal_price": Decimal("45000"),
        "fill_price": Decimal("45000.5"), "slippage_bps": Decimal("0.1111"), "reason": "open long 0.111",
        "decision": PLAN, **fields,
    }
    signal = Signal.objects.create(
        action="buy", symbol=fields["symbol"], strategy=fields["strategy"], status="done", idempotency_key=f"ui-{n}",
        received_at=received_at, http_status=202, source_ip="52.89.214.238",
        payload={"action": "buy", "symbol": "BTCUSDT.P", "price": "45000", "strategy": fields["strategy"]},
    )
    execution = Execution.objects.create(signal=signal, received_at=received_at, **fields)
    Order.objects.create(
        execution=execution, leg=1, purpose="open", client_order_id=f"ui-{n}-1", symbol=fields["symbol"], side="BUY",
        quantity=Decimal("0.111"), executed_qty=Decimal("0.111"), avg_price=Decimal("45000.50"), status="FILLED",
    )
    return execution


def make_account(*, age: timedelta = timedelta(seconds=30), heartbeat_age: timedelta | None = timedelta(seconds=20)) -> None:
    now = timezone.now()
    curve = ["10000", "10004.2", "9998.7", "10010.3", "10007.9", "10021.4", "10015.1", "10012.5"]
    for minutes, equity in zip(range(len(curve) - 1, -1, -1), curve, strict=True):
        AccountSnapshot.objects.create(
            taken_at=now - age - timedelta(minutes=minutes), exchange="paper", account="paper",
            wallet_balance=Decimal("10000"), available_balance=Decimal("9000.25"), equity=Decimal(equity),
            unrealized_pnl=Decimal(equity) - Decimal("10000"),
        )
    Position.objects.create(
        symbol="ETHUSDT", amount=Decimal("-1.5"), entry_price=Decimal("2500.1"), mark_price=Decimal("2490"),
        unrealized_pnl=Decimal("15.15"), leverage=10, margin_type="cross",
    )
    if heartbeat_age is not None:
        heartbeat()  # as a worker process of this host beats
        WorkerHeartbeat.objects.update(beat_at=now - heartbeat_age)


def make_protective(execution: Execution, kind: str, trigger: str, *, status: str = "active", level: int = 0,
                    quantity: str | None = None, callback: str | None = None, position_side: str = "BOTH",
                    side: str = "SELL", ago: timedelta = timedelta(minutes=5), **fields) -> ProtectiveOrder:
    """A protective order as trading/protection.py records one (a long's: SELL), made directly."""
    count = ProtectiveOrder.objects.count()
    return ProtectiveOrder.objects.create(
        execution=execution, symbol=fields.pop("symbol", execution.symbol), position_side=position_side, kind=kind,
        side=side, trigger_price=Decimal(trigger), quantity=None if quantity is None else Decimal(quantity), level=level,
        callback_rate=None if callback is None else Decimal(callback), status=status,
        client_id=f"pt-ui-{execution.pk}-{count}", created_at=timezone.now() - ago, **fields,
    )
