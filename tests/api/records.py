"""Trading records for the API tests, created directly in the database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from trading.models import Execution, Order, Signal

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def make_execution(n: int, *, received_at: datetime = T0, orders: int = 1, **fields) -> Execution:
    fields = {"strategy": "ALSAPRO 1", "symbol": "BTCUSDT", "status": "filled", **fields}
    signal = Signal.objects.create(
        action="buy", symbol=fields["symbol"], strategy=fields["strategy"], status="done", idempotency_key=f"k{n}",
        received_at=received_at,
    )
    execution = Execution.objects.create(
        signal=signal, exchange="paper", received_at=received_at, queued_at=received_at + timedelta(milliseconds=2),
        started_at=received_at + timedelta(milliseconds=10), sent_at=received_at + timedelta(milliseconds=12),
        acknowledged_at=received_at + timedelta(milliseconds=40), finished_at=received_at + timedelta(milliseconds=45),
        signal_price=Decimal("45000"), reason="Opened long 0.111 BTCUSDT.", decision={"legs": [{"purpose": "open"}]},
        **fields,
    )
    for leg in range(1, orders + 1):
        Order.objects.create(
            execution=execution, leg=leg, purpose="open", client_order_id=f"at-{n}-{leg}", symbol=fields["symbol"],
            side="BUY", quantity=Decimal("0.111"), executed_qty=Decimal("0.111"), avg_price=Decimal("45000.50"),
            status="FILLED",
        )
    return execution
