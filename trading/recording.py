"""Recording what the exchange did: fills into Order and Position, outcomes into Execution and Signal.

Recording is idempotent: an order's fill is folded into the Position mirror by the part not yet
folded in (`Order.applied_qty`), so the same answer recorded twice — by a retry, or by two workers —
changes nothing the second time. Recording never leaves an execution unfinished: should the full
record fail to save, a minimal one with the reason is written instead.
"""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.utils import timezone

from notifications.events import execution_finished
from trading.engine import Plan
from trading.exchange import ExchangeError, NothingToReduce, OrderResult, get_exchange
from trading.models import Execution, Order, Position, Signal, SymbolSetting
from trading.pnl import position_after

logger = logging.getLogger(__name__)

SLIPPAGE_LIMIT = Decimal("1e12")  # bps; past this the figure is meaningless and the column cannot hold it


FINAL_ORDER_STATES = (Order.Status.FILLED, Order.Status.CANCELED, Order.Status.EXPIRED, Order.Status.REJECTED)


def order_record(order: Order, result: OrderResult, *, commission_part: Decimal = Decimal(0),
                 realized_part: Decimal | None = None) -> Order:
    """The exchange's word on an order, and the part of its fill not yet in the Position mirror.
    A word older than what is recorded (less filled, or open where the record is final: a late REST
    answer, a replayed stream event) changes nothing. `commission_part` is the commission of the
    fill being reported (the stream tells it fill by fill), added only when that fill is new, and
    `realized_part` its realized P&L as the exchange computed it (else ours, from the mirror).
    A fill the exchange made (`result.updated_at`) before the position was last taken from the
    exchange (`Position.reconciled_at`) is already in it, and is recorded without moving it again."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if result.executed_qty < locked.executed_qty or (
            locked.status in FINAL_ORDER_STATES and not result.state.is_final and result.executed_qty == locked.executed_qty
        ):
            return locked
        new_qty = result.executed_qty - locked.applied_qty
        if new_qty > 0 and result.avg_price is not None:
            price = _price_of_new_part(locked, result)
            realized = _position_apply(locked, new_qty, price, result.updated_at)
            if realized_part is not None:
                realized = realized_part
            whole = locked.applied_qty == 0 and result.realized_pnl is not None
            locked.realized_pnl = result.realized_pnl if whole and result.realized_pnl is not None else (
                locked.realized_pnl + realized)
            locked.applied_qty = result.executed_qty
            locked.commission += commission_part
        locked.exchange_order_id = result.exchange_order_id
        locked.status = Order.Status(str(result.state))
        locked.executed_qty = result.executed_qty
        locked.avg_price = result.avg_price
        locked.commission = result.commission or locked.commission
        locked.raw_response = result.raw
        locked.acknowledged_at = locked.acknowledged_at or timezone.now()
        locked.error_code = locked.error_message = ""
        locked.save()
    return locked


def _price_of_new_part(order: Order, result: OrderResult) -> Decimal:
    """The average price of the part filled since the last record (all of it, usually)."""
    assert result.avg_price is not None
    if not order.applied_qty or order.avg_price is None:
        return result.avg_price
    new_qty = result.executed_qty - order.applied_qty
    return (result.executed_qty * result.avg_price - order.applied_qty * order.avg_price) / new_qty


def _position_apply(order: Order, quantity: Decimal, price: Decimal, filled_at: datetime | None) -> Decimal:
    """Fold a fill into our Position mirror (inside the caller's transaction); the realized P&L."""
    position, _ = Position.objects.select_for_update().get_or_create(symbol=order.symbol, position_side=order.position_side)
    if filled_at is not None and position.reconciled_at is not None and filled_at <= position.reconciled_at:
        logger.info("%s fill of order %s predates the last reconciliation: already in the position",
                    order.symbol, order.client_order_id)
        return Decimal(0)
    signed = quantity if order.side == Order.Side.BUY else -quantity
    position.amount, position.entry_price, realized = position_after(position.amount, position.entry_price, signed, price)
    position.realized_pnl += realized
    position.mark_price = price
    position.unrealized_pnl = (price - position.entry_price) * position.amount
    # The leverage and margin type in force: as last read from, or set at, this account's exchange.
    in_force = SymbolSetting.objects.filter(account=get_exchange().account_id, symbol=order.symbol).first()
    if in_force is not None:
        position.leverage, position.margin_type = in_force.leverage, in_force.margin_type or position.margin_type
    position.save()
    return realized


def order_refused(order: Order, error: ExchangeError, *, reason: str = "") -> Order:
    """A permanent refusal: the order is not at the exchange and will not be sent again."""
    order.status, order.error_code = Order.Status.REJECTED, error.code
    order.error_message = reason or error.reason
    order.acknowledged_at = timezone.now()
    order.save(update_fields=["status", "error_code", "error_message", "acknowledged_at", "updated_at"])
    if isinstance(error, NothingToReduce):
        # The exchange has no position to reduce: our mirror was out of date (a manual trade?).
        Position.objects.filter(symbol=order.symbol, position_side=order.position_side).update(amount=0)
    return order


def order_not_sent(order: Order, reason: str) -> Order:
    order.status, order.error_message = Order.Status.NOT_FOUND, reason
    order.save(update_fields=["status", "error_message", "updated_at"])
    return order


# --- the execution's outcome ----------------------------------------------------------------------
def execution_conclude(execution: Execution, plan: Plan, orders: list[Order], signal_price: Decimal | None) -> None:
    """The execution's status and reason from its orders; slippage against the price it was sized at."""
    filled = [o for o in orders if o.status == Order.Status.FILLED]
    problems = [o for o in orders if o.status != Order.Status.FILLED] or [
        o for o in execution.orders.order_by("leg") if o.status != Order.Status.FILLED]
    main = filled[-1] if filled else None
    reference = plan.price or signal_price
    if main is not None and main.avg_price and reference:
        execution.fill_price = main.avg_price
        direction = 1 if main.side == Order.Side.BUY else -1
        slippage = ((main.avg_price - reference) / reference * 10000 * direction).quantize(Decimal("0.0001"))
        execution.slippage_bps = slippage if abs(slippage) < SLIPPAGE_LIMIT else None
    if not problems:
        execution_finish(execution, Execution.Status.FILLED, plan.reason)
        return
    problem = problems[0]
    why = problem.error_message or f"order ended {problem.get_status_display().lower()}"
    if filled:
        status = Execution.Status.PARTIAL
    elif problem.status == Order.Status.REJECTED:
        status = Execution.Status.REJECTED
    else:
        status = Execution.Status.FAILED
    execution_finish(execution, status, f"{plan.reason}; leg {problem.leg} ({problem.purpose}) not filled: {why}",
                     error_code=problem.error_code, error_message=problem.error_message)


def execution_finish(execution: Execution, status: str, reason: str, *, signal_status: str | None = None,
                     error_code: str = "", error_message: str = "") -> None:
    """Write the execution's final state and its signal's. Never leaves them unfinished."""
    if signal_status is None:
        ok = status in (Execution.Status.FILLED, Execution.Status.PARTIAL, Execution.Status.NOTHING)
        signal_status = Signal.Status.DONE if ok else Signal.Status.FAILED
    execution.status, execution.reason, execution.finished_at = status, reason, timezone.now()
    execution.error_code, execution.error_message = error_code[:20], error_message
    if status == Execution.Status.FAILED and execution.pk is not None:  # a row not yet written has no orders
        _orders_settle(execution, reason)
        # Gave up, yet an order filled meanwhile (the user data stream recorded it): say so.
        for client_order_id in execution.orders.filter(status=Order.Status.FILLED).values_list("client_order_id", flat=True):
            execution.reason += late_fill_note(client_order_id, Order.Status.FILLED)
    try:
        with transaction.atomic():
            execution.save()
            Signal.objects.filter(pk=execution.signal_id).update(status=signal_status, reason=reason, updated_at=timezone.now())
    except Exception as error:
        # A value the database refused (an absurd price?) must not leave the signal pending for ever.
        logger.exception("recording execution %s failed; recording its outcome alone", execution.pk)
        reason = f"{reason} (recording the details failed: {type(error).__name__})"
        with transaction.atomic():
            # By its signal: a first attempt's row may not be written yet (nothing to update then).
            Execution.objects.filter(signal_id=execution.signal_id).update(status=status, reason=reason,
                                                                           finished_at=execution.finished_at)
            Signal.objects.filter(pk=execution.signal_id).update(status=signal_status, reason=reason, updated_at=timezone.now())
    logger.info("signal %s %s: %s (%s)", execution.signal_id, execution.symbol, status, reason)
    execution_finished(execution.pk, status)


def late_fill_note(client_order_id: str, status: str) -> str:
    """What an execution that had ended says of an order the exchange later showed filled."""
    return f"; order {client_order_id} later found {status}"


def execution_note_late(order: Order) -> None:
    """The order's outcome was learnt after its execution ended (a lookup, the stream): say so on the
    execution, once."""
    if order.execution_id is None:
        return
    note = late_fill_note(order.client_order_id, order.status)
    Execution.objects.filter(pk=order.execution_id, finished_at__isnull=False).exclude(reason__contains=note).update(
        reason=Concat(F("reason"), Value(note)))


def _orders_settle(execution: Execution, reason: str) -> None:
    """On giving up, say truthfully what each unresolved order is: never sent, or unknown."""
    now = timezone.now()
    execution.orders.filter(status=Order.Status.PENDING).update(
        status=Order.Status.NOT_FOUND, error_message=f"never sent: {reason}", updated_at=now
    )
    execution.orders.filter(status=Order.Status.SENT).update(status=Order.Status.UNKNOWN, updated_at=now)
