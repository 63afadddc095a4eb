"""A limit entry while it rests on the book, and how it ends: filled, or at its timeout cancelled or
finished at market (`on_timeout`), or cut short by the symbol's next alert.

The entry's order is sent once like any other (trading/sending.py); from then on this module owns it:
- It holds the symbol's lane while the order rests, so the symbol's signals stay in receipt order: a
  later alert waits for the entry to end, and ends it early (what is left is cancelled, not bought at
  market: the later alert decides what happens next).
- Every step is recorded before the next: why the wait ended goes into the execution's decision
  before the cancel is sent, so an attempt that resumes after a crash (recovery) finishes the same way
  — the deadline is the order's `sent_at` + timeout, in the database, not in this process's memory.
- What is left after a timeout with `on_timeout: market` goes out as its own market order (leg
  `REMAINDER_LEG` + the entry's), sent at most once like every order; a remainder below the symbol's
  minimum is not sent, and the execution says so.
- The protective orders that follow cover what filled (trading/protection.py reads the position).
"""

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Q
from django.utils import timezone

from trading import recording, sending
from trading.engine import Leg, LimitEntry, Plan, plain
from trading.exchange import Exchange, ExchangeError, OrderRequest, OrderResult, OutcomeUnknown, RetryableError
from trading.mandate import Mandate
from trading.models import Execution, Order, Signal
from trading.upkeep import PENDING_SIGNALS

logger = logging.getLogger(__name__)

POLL = 0.5  # seconds between lookups of a resting entry
REMAINDER_LEG = 10  # the remainder's leg number: the entry's + this (a plan has at most two legs)
CANCEL_TRIES = 5


class EndedBy:
    """Why a resting entry stopped waiting, as kept in the decision (`entry_end`)."""

    TIMEOUT = "timeout"
    NEXT_ALERT = "next alert"


@dataclass(frozen=True)
class Ended:
    """How a limit entry ended: its order (final), the remainder's market order if one went, and
    what the execution says of it."""

    order: Order
    remainder: Order | None
    words: str


def entry_settle(order: Order, leg: Leg, *, execution: Execution, signal: Signal, exchange: Exchange,
                 mandate: Mandate) -> Ended:
    """Wait for the resting entry `order` to fill, time out or be cut short; cancel what is left and,
    when the strategy says so, finish it at market. Raises LaneLost if the lane goes meanwhile (the
    next holder resumes it)."""
    assert leg.entry is not None
    entry = leg.entry
    deadline = (order.sent_at or timezone.now()) + timedelta(seconds=entry.timeout)
    ended_by = execution.decision.get("entry_end", "")
    while order.status in OPEN and not ended_by:
        if timezone.now() >= deadline:
            ended_by = EndedBy.TIMEOUT
        elif _next_alert_waits(signal):
            ended_by = EndedBy.NEXT_ALERT
        else:
            _pause(mandate, min(POLL, max((deadline - timezone.now()).total_seconds(), 0.0)))
            found = _look_up(order, exchange)
            if found is not None:
                order = recording.order_record(order, found)
    if order.status in OPEN:
        _decision_note(execution, entry_end=ended_by)  # before the cancel: a resumed attempt ends it the same way
        order = _cancel(order, exchange, mandate)
    return _ended(order, leg, entry, ended_by, execution=execution, signal=signal, exchange=exchange,
                  mandate=mandate, deadline=deadline)


def _ended(order: Order, leg: Leg, entry: LimitEntry, ended_by: str, *, execution: Execution, signal: Signal,
           exchange: Exchange, mandate: Mandate, deadline: datetime) -> Ended:
    price = plain(entry.price)
    if order.status == Order.Status.FILLED:
        return Ended(order, None, f"limit entry filled at {price}")
    if order.status in OPEN:  # the cancel's outcome stays unknown: the sweep and the stream settle it
        return Ended(order, None, f"limit entry at {price}: still open at the exchange, its cancel unconfirmed")
    filled, left = order.executed_qty, order.quantity - order.executed_qty
    part = f"filled {plain(filled)} of {plain(order.quantity)}" if filled else "not filled"
    if ended_by == EndedBy.NEXT_ALERT:
        return Ended(order, None, f"limit entry at {price} {part}; the rest cancelled for the symbol's next alert")
    if ended_by != EndedBy.TIMEOUT or entry.on_timeout != "market":
        return Ended(order, None, f"limit entry at {price} {part} within {entry.timeout} s; the rest cancelled")
    rules = mandate.retrying(exchange.get_symbol_rules, order.symbol)
    quantity = rules.round_quantity(left)
    problem = rules.violation(quantity, order.price) if quantity > 0 else "nothing left"
    if problem:
        return Ended(order, None, f"limit entry at {price} {part} within {entry.timeout} s; the rest not sent "
                                  f"at market: {problem}")
    remainder = _remainder(order, leg, quantity, execution=execution, signal=signal, exchange=exchange,
                           mandate=mandate, deadline=deadline)
    said = "filled" if remainder.status == Order.Status.FILLED else f"ended {remainder.get_status_display().lower()}"
    return Ended(order, remainder, f"limit entry at {price} {part} within {entry.timeout} s; the rest "
                                   f"({plain(quantity)}) sent at market: {said}")


def _remainder(order: Order, leg: Leg, quantity: Decimal, *, execution: Execution, signal: Signal,
               exchange: Exchange, mandate: Mandate, deadline: datetime) -> Order:
    """The market order for what the entry left: recorded once (its leg number), sent at most once.
    Its deadline runs from the entry's timeout, not from the alert's receipt."""
    from trading.services import client_order_id  # services imports this module

    row, _ = Order.objects.get_or_create(
        execution=execution, leg=order.leg + REMAINDER_LEG,
        defaults={"purpose": order.purpose, "client_order_id": client_order_id(signal, order.leg + REMAINDER_LEG),
                  "symbol": order.symbol, "side": order.side, "position_side": order.position_side,
                  "quantity": quantity, "reduce_only": order.reduce_only})
    row.execution = execution  # the object this attempt concludes (trading/services.py `_order_for`)
    request = OrderRequest(symbol=row.symbol, side=row.side, quantity=row.quantity, client_order_id=row.client_order_id,
                           reduce_only=row.reduce_only, position_side=row.position_side)
    at_timeout = Mandate(lane=mandate.lane, received_at=deadline)
    return sending.leg_execute(row, exchange=exchange, mandate=at_timeout, request=request)


OPEN = (Order.Status.SENT, Order.Status.UNKNOWN, Order.Status.NEW, Order.Status.PARTIALLY_FILLED)


def _next_alert_waits(signal: Signal) -> bool:
    """A later signal for the symbol is waiting for this lane."""
    return (Signal.objects.filter(symbol=signal.symbol, status__in=PENDING_SIGNALS)
            .filter(Q(received_at__gt=signal.received_at) | Q(received_at=signal.received_at, pk__gt=signal.pk))
            .exists())


def _pause(mandate: Mandate, seconds: float) -> None:
    """Sleep, keeping the lane (raises LaneLost when it is gone)."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.25))
        mandate.check()
    mandate.check()


def _look_up(order: Order, exchange: Exchange) -> OrderResult | None:
    try:
        return exchange.get_order(order.symbol, order.client_order_id, stamp=order.sent_stamp)
    except (RetryableError, OutcomeUnknown) as error:
        logger.info("%s: resting entry %s not looked up this time: %s", order.symbol, order.client_order_id, error)
        return None


def _cancel(order: Order, exchange: Exchange, mandate: Mandate) -> Order:
    """Take what is left off the book and record the order's final word (it may have filled first)."""
    for attempt in range(1, CANCEL_TRIES + 1):
        mandate.check()
        try:
            result = exchange.cancel_order(order.symbol, order.client_order_id)
        except ExchangeError as error:
            if attempt == CANCEL_TRIES or not isinstance(error, (RetryableError, OutcomeUnknown)):
                logger.error("%s: the cancel of resting entry %s failed: %s", order.symbol, order.client_order_id, error)
                return order
            _pause(mandate, error.retry_after or POLL * attempt)
            continue
        if result is None:
            logger.error("%s: resting entry %s is unknown to the exchange at its cancel", order.symbol,
                         order.client_order_id)
            return order
        return recording.order_record(order, result)
    return order


def _decision_note(execution: Execution, **notes: str) -> None:
    execution.decision = {**execution.decision, **notes}
    Execution.objects.filter(pk=execution.pk).update(decision=execution.decision)


def entry_of(order: Order, legs: tuple[Leg, ...]) -> Leg | None:
    """The planned leg of an order that went out as a limit entry, or None."""
    if order.order_type != "LIMIT" or not 1 <= order.leg <= len(legs):
        return None
    leg = legs[order.leg - 1]
    return leg if leg.entry is not None else None


def entry_conclude(execution: Execution, plan: Plan, orders: list[Order]) -> bool:
    """Conclude an execution whose limit entry ended without filling whole by itself (cancelled or
    expired): filled when its remainder made up the rest, partly done when some of it filled, nothing
    when none did — never a failure, the strategy asked for a price. An entry whose cancel was never
    confirmed is still on the book: a failure, said so (the sweep, trading/recovery.py, cancels it).
    False: the usual conclusion."""
    words = execution.decision.get("entry", "")
    unsettled = [o for o in orders if o.order_type == "LIMIT" and o.status in OPEN]
    if unsettled:
        filled = any(o.executed_qty for o in orders)
        recording.execution_finish(execution, Execution.Status.PARTIAL if filled else Execution.Status.FAILED,
                                   f"{plan.reason}; {words or 'limit entry still open'} (the sweep cancels it)")
        return True
    entries = [o for o in orders if o.order_type == "LIMIT" and o.status in (Order.Status.CANCELED, Order.Status.EXPIRED)]
    if not entries:
        return False
    remainders = {o.leg - REMAINDER_LEG: o for o in orders if o.leg > REMAINDER_LEG}
    wanted = sum((o.quantity for o in entries), Decimal(0))
    parts = [o for o in entries if o.executed_qty] + [r for o in entries if (r := remainders.get(o.leg)) and r.executed_qty]
    got = sum((o.executed_qty for o in parts), Decimal(0))
    if got and parts:
        execution.fill_price = sum((o.executed_qty * (o.avg_price or 0) for o in parts), Decimal(0)) / got
    status = (Execution.Status.FILLED if got >= wanted else Execution.Status.PARTIAL if got
              else Execution.Status.NOTHING)
    recording.execution_finish(execution, status, f"{plan.reason}; {words}" if words else plan.reason)
    return True
