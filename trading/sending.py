"""Sending one order leg, at most once, however often it is attempted and by whom.

The protocol, for an Order row already recorded as `pending`:
1. Budget, then stamp: wait for the deployment's order budget (trading/order_budget.py) to allow one
   more order, then ask the adapter for the timestamp the request will carry.
2. Compare-and-set: `UPDATE order SET status='sent', sent_stamp=… WHERE id=… AND status/stamp are as
   this worker last saw them AND this worker holds the symbol's lane` — exactly one row, or stop.
   Only the lane holder moves an order to `sent`, and only from the state it has seen.
3. Request. A refusal is final; a retryable error (nothing happened) moves the order back to
   `pending` and waits; a lost answer (`unknown`) is looked up.
4. Look up by client order id before anything is sent again: found → record it; absent → only
   conclusive once no request with the recorded stamp can still be accepted (the adapter says when);
   then, and only if the deadline allows, back to step 1 with a new stamp.
An order found `sent`/`unknown` when a leg is resumed (after a crash, or by the next lane holder) is
looked up first, so a worker that died after sending never causes a second order.
"""

import logging
from datetime import datetime
from typing import Any

from django.db.models import Field, Q, QuerySet
from django.utils import timezone

from trading import recording
from trading.exchange import Exchange, OrderRequest, OrderResult, OutcomeUnknown, PermanentError, RetryableError
from trading.lanes import LaneLost, held
from trading.mandate import FIRST_PAUSE, LONGEST_PAUSE, GaveUp, Mandate
from trading.models import Order, SymbolLane
from trading.order_budget import ORDER_BUDGET
from trading.reused import ReusedUpdate

logger = logging.getLogger(__name__)

# Seconds past the deadline that a lost answer is still looked up: the execution then ends (failed,
# order `unknown`) before /health calls it unfinished, and the sweep resolves the order later.
LOOKUP_GRACE = 25.0
OPEN_POLL = 0.2  # seconds between lookups of an order the exchange still reports open
LIMIT = "LIMIT"
MAY_EXIST = (Order.Status.SENT, Order.Status.UNKNOWN, Order.Status.NEW, Order.Status.PARTIALLY_FILLED)


def leg_execute(order: Order, *, exchange: Exchange, mandate: Mandate, request: OrderRequest) -> Order:
    """Bring one leg to its outcome: recorded from the exchange, refused, or never sent."""
    if order.status in MAY_EXIST:
        result = _look_up(order, exchange, mandate)
        if result is not None:
            return _record(order, result, exchange, mandate)
        # Conclusively not at the exchange: the earlier request never took effect.
    if order.status not in (Order.Status.PENDING, *MAY_EXIST):
        return order  # already final
    return _send(order, exchange, mandate, request)


def _send(order: Order, exchange: Exchange, mandate: Mandate, request: OrderRequest) -> Order:
    pause = FIRST_PAUSE
    while True:
        if mandate.too_late():
            return recording.order_not_sent(
                order, f"not sent: {mandate.age():.1f} s after receipt, over EXECUTION_MAX_DELAY")
        try:  # before the stamp: a request must leave within recvWindow of its stamp
            mandate.wait_for_budget(ORDER_BUDGET.take(exchange))
        except GaveUp:
            return recording.order_not_sent(order, "not sent: the order budget allowed no order before the deadline")
        stamp = mandate.retrying(exchange.order_stamp)
        _claim(order, mandate, stamp)
        try:
            place = exchange.place_limit_order if request.is_limit else exchange.place_market_order
            result = place(request, stamp=stamp)
        except PermanentError as error:
            return recording.order_refused(order, error)
        except OutcomeUnknown as error:
            _mark(order, Order.Status.UNKNOWN, error_message=error.reason)
            found = _look_up(order, exchange, mandate)
            if found is not None:
                return _record(order, found, exchange, mandate)
            continue  # conclusively absent: send again, with a new stamp
        except RetryableError as error:
            # Refused before anything happened (rate limit, clock drift): not at the exchange.
            _mark(order, Order.Status.PENDING, error_code=error.code, error_message=error.reason)
            try:
                mandate.sleep(error.retry_after or pause, why=error.reason)
            except GaveUp:
                return recording.order_not_sent(order, f"not sent: {error.reason}, until the deadline passed")
            pause = min(pause * 2, LONGEST_PAUSE)
            continue
        return _record(order, result, exchange, mandate)


def _claim(order: Order, mandate: Mandate, stamp: int) -> None:
    """The compare-and-set to `sent`: from exactly the state this worker saw, by the lane holder."""
    now = timezone.now()
    values = {"pk": order.pk, "status": order.status, "stamp": stamp, "now": now, "symbol": mandate.lane.symbol,
              "holder": mandate.lane.holder}
    if order.sent_stamp is None:
        changed = _CLAIM_UNSENT.run(**values)
    else:
        changed = _CLAIM_RESENT.run(**values, seen=order.sent_stamp)
    if changed != 1:
        raise LaneLost(f"order {order.client_order_id} changed hands or the lane was lost: not sending it")
    order.status, order.sent_stamp, order.sent_at = Order.Status.SENT, stamp, now


def _claim_update(*, resent: bool) -> ReusedUpdate:
    """The compare-and-set's statement, for an order never sent (its stamp NULL) or, `resent`, one
    sent before with the stamp `seen`. Written once (trading/reused.py): it stands before every order."""
    def build(*, pk: int, status: str, stamp: int, now: datetime, symbol: str, holder: str,
              seen: int | None = None) -> tuple[QuerySet[Order], dict[str, object]]:
        unchanged = Q(sent_stamp=seen) if resent else Q(sent_stamp__isnull=True)
        return (Order.objects.filter(unchanged, pk=pk, status=status).filter(held(symbol, holder)),
                {"status": Order.Status.SENT, "sent_stamp": stamp, "sent_at": now, "updated_at": now})

    fields: dict[str, Field[Any, Any]] = {
        "pk": Order._meta.get_field("id"), "status": Order._meta.get_field("status"),
        "stamp": Order._meta.get_field("sent_stamp"), "now": Order._meta.get_field("sent_at"),
        "symbol": SymbolLane._meta.get_field("symbol"), "holder": SymbolLane._meta.get_field("holder"),
    }
    if resent:
        fields["seen"] = Order._meta.get_field("sent_stamp")
    return ReusedUpdate(build, **fields)


_CLAIM_UNSENT = _claim_update(resent=False)
_CLAIM_RESENT = _claim_update(resent=True)


def _mark(order: Order, status: Order.Status, *, error_code: str = "", error_message: str = "") -> None:
    """Move an order this worker just sent out of `sent`; still only from the stamp it sent."""
    Order.objects.filter(pk=order.pk, status=Order.Status.SENT, sent_stamp=order.sent_stamp).update(
        status=status, error_code=error_code[:20], error_message=error_message, updated_at=timezone.now()
    )
    order.status, order.error_code, order.error_message = status, error_code[:20], error_message


def _look_up(order: Order, exchange: Exchange, mandate: Mandate) -> OrderResult | None:
    """The exchange's word on an order whose answer was lost; None when it is conclusively absent.
    Waits (lane checked, deadline + LOOKUP_GRACE) while the exchange cannot yet say."""
    pause = FIRST_PAUSE
    stamp = order.sent_stamp
    if stamp is None and order.sent_at is not None:  # recorded before stamps were: as good an estimate
        stamp = int(order.sent_at.timestamp() * 1000)
    while True:
        mandate.check()
        try:
            return exchange.get_order(order.symbol, order.client_order_id, stamp=stamp)
        except (OutcomeUnknown, RetryableError) as error:
            mandate.sleep(error.retry_after or pause, why=f"the outcome of order {order.client_order_id} is "
                                                          f"still unknown: {error.reason}", grace=LOOKUP_GRACE)
            pause = min(pause * 2, LONGEST_PAUSE)


def _record(order: Order, result: OrderResult, exchange: Exchange, mandate: Mandate) -> Order:
    """Record the answer; an answer that says a market order is still open is looked up until it is
    not. A limit entry resting on the book is recorded as it is: trading/resting.py waits for it."""
    while result.state.is_open and order.order_type != LIMIT:
        recording.order_record(order, result)
        try:
            mandate.sleep(OPEN_POLL, why="the order is still open at the exchange", grace=LOOKUP_GRACE)
        except GaveUp:
            break
        found = _look_up(order, exchange, mandate)
        if found is None:
            break
        result = found
    return recording.order_record(order, result)
