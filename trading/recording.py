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
from trading.closed_first import Cause, ClosedFirst, closed_first
from trading.engine import Plan, plain
from trading.exchange import ExchangeError, NothingToReduce, OrderResult, get_exchange
from trading.models import Execution, Order, Position, Signal, SymbolSetting
from trading.pnl import position_after
from trading.protection import position_settle

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
        locked.save(update_fields=RECORDED)  # what a word from the exchange changes: a shorter UPDATE to build
    if Order.execution.is_cached(order):
        locked.execution = order.execution  # the caller's execution object, notes and all (services._order_for)
    return locked


RECORDED = ["realized_pnl", "applied_qty", "commission", "exchange_order_id", "status", "executed_qty", "avg_price",
            "raw_response", "acknowledged_at", "error_code", "error_message", "updated_at"]


def _price_of_new_part(order: Order, result: OrderResult) -> Decimal:
    """The average price of the part filled since the last record (all of it, usually)."""
    assert result.avg_price is not None
    if not order.applied_qty or order.avg_price is None:
        return result.avg_price
    new_qty = result.executed_qty - order.applied_qty
    return (result.executed_qty * result.avg_price - order.applied_qty * order.avg_price) / new_qty


FOLDED = ["amount", "entry_price", "realized_pnl", "mark_price", "unrealized_pnl", "leverage", "margin_type", "updated_at"]


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
    position.save(update_fields=FOLDED)
    return realized


def order_refused(order: Order, error: ExchangeError, *, reason: str = "") -> Order:
    """A permanent refusal: the order is not at the exchange and will not be sent again. A reduce-only
    order that found nothing to reduce lost a race (usually to our own take-profit or stop): what
    closed the position is found, and our position mirror brought in line, before any next leg goes."""
    order.status, order.error_code = Order.Status.REJECTED, error.code
    order.error_message = reason or error.reason
    order.acknowledged_at = timezone.now()
    order.save(update_fields=["status", "error_code", "error_message", "acknowledged_at", "updated_at"])
    if isinstance(error, NothingToReduce) and order.execution is not None:
        first = _closed_first(order, "the position")
        order.error_message = f"nothing to reduce: {first.words}"
        order.save(update_fields=["error_message", "updated_at"])
        _exchange_first_note(order.execution, order, first, refused=True)
    return order


def _closed_first(order: Order, what: str) -> ClosedFirst:
    assert order.execution is not None
    try:
        return closed_first(order, alert_at=order.execution.received_at, exchange=get_exchange(), what=what)
    except Exception as error:  # the order's outcome stands: a bug in telling why must not rewrite it
        logger.exception("%s: what closed the position before order %s could not be told", order.symbol,
                         order.client_order_id)
        return ClosedFirst(Cause.OUTSIDE, f"{what} was already closed at the exchange; what closed it could not be "
                                          f"told ({type(error).__name__})", told=False)


def _exchange_first_note(execution: Execution, order: Order, first: ClosedFirst, *, refused: bool) -> None:
    """Into the decision (`exchange_first`, by leg): read back by the conclusion, and by a resumed attempt."""
    kept = [entry for entry in execution.decision.get("exchange_first", []) if entry["leg"] != order.leg]
    entry = {"leg": order.leg, "refused": refused, **first.as_dict()}
    execution.decision = {**execution.decision, "exchange_first": [*kept, entry]}
    if execution.pk is not None:
        Execution.objects.filter(pk=execution.pk).update(decision=execution.decision)


def _exchange_firsts(execution: Execution) -> dict[int, tuple[bool, ClosedFirst]]:
    """By leg: (refused: it found nothing to reduce, what closed the position first)."""
    return {entry["leg"]: (bool(entry["refused"]), ClosedFirst.from_dict(entry))
            for entry in execution.decision.get("exchange_first", [])}


def leg_done(order: Order) -> bool:
    """Whether a leg did its part, so the next may go (a reversal's open after its close): it filled,
    or the position it was to close had been closed first, at the exchange."""
    if order.status == Order.Status.FILLED:
        return True
    if order.execution_id is None or not _reduces(order):
        return False
    assert order.execution is not None
    return _exchange_firsts(order.execution).get(order.leg, (False, None))[0]


def _capped(order: Order) -> bool:
    """A reduce-only order the exchange filled for less than asked: only that much was left."""
    return order.status == Order.Status.FILLED and _reduces(order) and order.executed_qty < order.quantity


def _reduces(order: Order) -> bool:
    """Reduce-only in effect: flagged so (one-way mode), or a close leg in hedge mode, where positionSide
    makes it one and the flag is refused."""
    return order.reduce_only or (order.purpose == "close" and order.position_side != "BOTH")


def order_not_sent(order: Order, reason: str) -> Order:
    order.status, order.error_message = Order.Status.NOT_FOUND, reason
    order.save(update_fields=["status", "error_message", "updated_at"])
    return order


# --- the execution's outcome ----------------------------------------------------------------------
def execution_conclude(execution: Execution, plan: Plan, orders: list[Order], signal_price: Decimal | None) -> None:
    """The execution's status and reason from its orders; slippage against the price it was sized at.
    A close the exchange had already made (what made it is in `decision["exchange_first"]`) is no
    failure: it ends `nothing` when it was the whole execution, a warning when made outside this system."""
    for order in orders:
        if _capped(order) and order.leg not in _exchange_firsts(execution):
            _exchange_first_note(execution, order, _closed_first(order, "part of the position"), refused=False)
    firsts = _exchange_firsts(execution)

    def done(order: Order) -> bool:
        return order.status == Order.Status.FILLED or firsts.get(order.leg, (False, None))[0]

    filled = [o for o in orders if o.status == Order.Status.FILLED]
    problems = [o for o in orders if not done(o)] or [o for o in execution.orders.order_by("leg") if not done(o)]
    if firsts:
        _settle_if_flat(execution)
    main = filled[-1] if filled else None
    reference = plan.price or signal_price
    if main is not None and main.avg_price and reference:
        execution.fill_price = main.avg_price
        direction = 1 if main.side == Order.Side.BUY else -1
        slippage = ((main.avg_price - reference) / reference * 10000 * direction).quantize(Decimal("0.0001"))
        execution.slippage_bps = slippage if abs(slippage) < SLIPPAGE_LIMIT else None
    said = _exchange_first_said(orders, firsts) + "".join(f"; {note}" for note in execution.decision.get("protection_notes", []))
    warning = any(first.warning for _, first in firsts.values())
    tell = any(first.warning and not first.told for _, first in firsts.values())
    if not problems and not filled and firsts:  # every leg found its position closed already
        reason = "nothing to close: " + "; ".join(first.words for _, (_, first) in sorted(firsts.items()))
        execution_finish(execution, Execution.Status.NOTHING, _warned(execution, reason, warning), tell_warning=tell)
        return
    if not problems:
        execution_finish(execution, Execution.Status.FILLED, _warned(execution, plan.reason + said, warning),
                         tell_warning=tell)
        return
    problem = problems[0]
    why = problem.error_message or f"order ended {problem.get_status_display().lower()}"
    if filled:
        status = Execution.Status.PARTIAL
    elif problem.status == Order.Status.REJECTED:
        status = Execution.Status.REJECTED
    else:
        status = Execution.Status.FAILED
    reason = f"{plan.reason}{said}; leg {problem.leg} ({problem.purpose}) not filled: {why}"
    execution_finish(execution, status, _warned(execution, reason, warning), error_code=problem.error_code,
                     error_message=problem.error_message, tell_warning=tell)


def _exchange_first_said(orders: list[Order], firsts: dict[int, tuple[bool, ClosedFirst]]) -> str:
    """What the exchange had done first, leg by leg, as the reason's continuation."""
    said = ""
    for order in orders:
        refused, first = firsts.get(order.leg, (False, None))
        if first is None:
            continue
        if refused:
            said += f"; leg {order.leg} ({order.purpose}) found nothing to reduce: {first.words}"
        else:
            said += (f"; the exchange closed {plain(order.executed_qty)} of the {plain(order.quantity)} asked, "
                     f"all that was left: {first.words}")
    return said


def _warned(execution: Execution, reason: str, warning: bool) -> str:
    """A warning is said as one: in the reason's first word, and in the log at warning level."""
    if not warning:
        return reason
    logger.warning("signal %s %s: %s", execution.signal_id, execution.symbol, reason)
    return Execution.WARNING + reason


def _settle_if_flat(execution: Execution) -> None:
    """The exchange closed (part of) the position first: once it is flat, the protective orders it no
    longer needs are cancelled now, under the lane (the execution's own placing read our mirror before
    the exchange's word corrected it)."""
    try:
        problems = position_settle(execution.symbol, get_exchange())
    except Exception:  # the outcome is known: a failure here must not keep it from being recorded
        logger.exception("%s: settling protection after a close the exchange made first failed", execution.symbol)
        return
    if problems:
        logger.error("%s: protection after a close the exchange made first: %s", execution.symbol, problems)


def execution_finish(execution: Execution, status: str, reason: str, *, signal_status: str | None = None,
                     error_code: str = "", error_message: str = "", tell_warning: bool = False) -> None:
    """Write the execution's final state and its signal's. Never leaves them unfinished. `tell_warning`:
    its reason is a warning nobody has been told of yet (the user data stream tells of the trades it sees)."""
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
    execution_finished(execution.pk, status, warning=tell_warning)


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
