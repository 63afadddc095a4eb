"""Executing queued signals: exactly once, in order per symbol, every stage recorded.

How it stays exactly-once although django-q2 may deliver a task twice and an order request may time
out after the exchange filled it:
- A worker executes a symbol's signals only while it holds that symbol's *lane* (a lease taken with
  a conditional UPDATE), oldest first. A second task for the same symbol finds the lane taken and
  returns: the holder drains every queued signal of the symbol before letting go, and looks again
  after letting go, so nothing committed meanwhile is left behind.
- Each leg's Order row, with a client order id derived from the signal, is committed as `sent`
  *before* the request leaves. Whoever finds a `sent` order later (a retry after a timeout, or the
  next worker after a crash) asks the exchange for that client order id before sending anything.
- Permanent refusals are recorded, never retried; retryable ones are retried while the signal is
  younger than EXECUTION_MAX_DELAY.
"""

import logging
import os
import socket
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.models import AccountSnapshot
from trading import engine
from trading.exchange import (
    Exchange,
    ExchangeError,
    OrderRequest,
    OrderResult,
    OutcomeUnknownError,
    PermanentError,
    RetryableError,
    get_exchange,
)
from trading.lanes import lane_acquire, lane_release, lane_renew
from trading.models import Execution, Order, Position, Signal, SymbolSetting
from trading.pnl import position_after
from trading.upkeep import PENDING_SIGNALS, snapshot_take

logger = logging.getLogger(__name__)

EQUITY_MAX_AGE = timedelta(seconds=120)  # sizing uses the last account snapshot younger than this
OPEN_STATUSES = (Order.Status.NEW, Order.Status.PARTIALLY_FILLED)
UNRESOLVED = (Order.Status.PENDING, Order.Status.SENT, Order.Status.UNKNOWN)


class GaveUp(Exception):
    """Retryable errors went on past the signal's execution deadline."""


# --- lanes: one executor per symbol at a time, signals oldest first ----------------------------------
def symbol_drain(*, symbol: str) -> int:
    """Execute the symbol's pending signals, oldest first, if its lane is free; how many ran."""
    holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    seen: set[int] = set()
    while lane_acquire(symbol=symbol, holder=holder):
        try:
            while (signal := _next_pending(symbol, exclude=seen)) is not None:
                seen.add(signal.pk)
                lane_renew(symbol=symbol, holder=holder)
                signal_execute(signal=signal, lane=(symbol, holder))
        finally:
            lane_release(symbol=symbol, holder=holder)
        # A task that found the lane taken just before we released it returned without executing:
        # look once more so its signal is not left waiting for the sweeper.
        if _next_pending(symbol, exclude=seen) is None:
            break
    return len(seen)


def _next_pending(symbol: str, *, exclude: set[int]) -> Signal | None:
    return (
        Signal.objects.filter(symbol=symbol, status__in=PENDING_SIGNALS)
        .exclude(pk__in=exclude)
        .select_related("preference")
        .order_by("received_at", "id")
        .first()
    )


# --- one signal ------------------------------------------------------------------------------------
def signal_execute(*, signal: Signal, lane: tuple[str, str] | None = None) -> Execution | None:
    """Execute one pending signal; call it while holding the signal's symbol lane."""
    claimed = Signal.objects.filter(pk=signal.pk, status__in=PENDING_SIGNALS).update(status=Signal.Status.EXECUTING)
    if not claimed:
        return None  # someone else finished it
    execution, created = Execution.objects.get_or_create(
        signal=signal,
        defaults={
            "strategy": signal.strategy,
            "symbol": signal.symbol,
            "exchange": settings.EXCHANGE,
            "received_at": signal.received_at,
            "queued_at": signal.queued_at,
            "signal_price": signal.price,
        },
    )
    execution.attempts += 1
    execution.save(update_fields=["attempts"])
    run = _Run(signal=signal, execution=execution, exchange=get_exchange(), lane=lane)
    try:
        run.go()
    except PermanentError as error:
        run.finish(Execution.Status.REJECTED, error.reason, error=error)
    except (GaveUp, RetryableError, OutcomeUnknownError) as error:
        run.finish(Execution.Status.FAILED, f"gave up: {error}", error=error if isinstance(error, ExchangeError) else None)
    except Exception as error:
        logger.exception("execution %s of signal %s failed", execution.pk, signal.pk)
        run.finish(Execution.Status.FAILED, f"unexpected error: {type(error).__name__}: {error}")
    return run.execution


class _Run:
    """The state of executing one signal; methods are the stages."""

    def __init__(self, *, signal: Signal, execution: Execution, exchange: Exchange, lane: tuple[str, str] | None):
        self.signal = signal
        self.execution = execution
        self.exchange = exchange
        self.lane = lane
        self.deadline = signal.received_at + timedelta(seconds=settings.EXECUTION_MAX_DELAY)
        self.preference = signal.preference

    def go(self) -> None:
        if not self.execution.decision:
            if not self._decide():
                return
        legs = self.execution.decision["legs"]
        orders = [self._leg(index, leg) for index, leg in enumerate(legs, start=1) if not self._stop_before(index)]
        self._conclude(orders)

    # --- deciding -------------------------------------------------------------------------------
    def _decide(self) -> bool:
        """Plan the legs and record the decision; False when the execution is already finished."""
        age = (timezone.now() - self.signal.received_at).total_seconds()
        if age > settings.EXECUTION_MAX_DELAY:
            self.finish(Execution.Status.SKIPPED, f"too late: {age:.1f} s after receipt, over EXECUTION_MAX_DELAY ({settings.EXECUTION_MAX_DELAY} s)")
            return False
        refusal = self._preference_refusal()
        if refusal:
            self.finish(Execution.Status.NOTHING, refusal, signal_status=Signal.Status.FILTERED)
            return False
        plan = self._plan()
        self.execution.decision = plan.as_dict()
        self.execution.save(update_fields=["decision"])
        if plan.outcome == "filtered":
            self.finish(Execution.Status.NOTHING, plan.reason, signal_status=Signal.Status.FILTERED)
            return False
        if plan.outcome == "nothing":
            self.finish(Execution.Status.NOTHING, plan.reason)
            return False
        if plan.outcome == "refused":
            self.finish(Execution.Status.SKIPPED, plan.reason)
            return False
        if any(leg.purpose != "close" for leg in plan.legs):
            self._apply_account_settings()
        return True

    def _preference_refusal(self) -> str:
        # Preferences may have changed between intake and now: the latest word wins.
        preference = self.preference
        if preference is None:
            return f"strategy {self.signal.strategy!r} is no longer configured"
        preference.refresh_from_db()
        if not preference.enabled:
            return f"strategy {preference.name!r} was disabled after the signal arrived"
        if not preference.allows_symbol(self.signal.symbol):
            return f"{self.signal.symbol} was removed from strategy {preference.name!r}'s products"
        return ""

    def _plan(self) -> engine.Plan:
        signal, preference = self.signal, self.preference
        intent = engine.Intent(action=signal.action, quantity=signal.quantity, price=signal.price,
                               market_position=signal.market_position)
        rules = self._patiently(self.exchange.get_symbol_rules, signal.symbol)
        hedge = self._patiently(self.exchange.is_hedge_mode)
        opening = engine.entry_side(intent) is not None
        price = signal.price
        if price is None and opening:
            price = self._patiently(self.exchange.get_mark_price, signal.symbol)
        equity = self._equity() if opening and preference.sizing == "allocation" else None
        return engine.plan(
            intent=intent,
            preference=engine.Preference(direction=preference.direction, sizing=preference.sizing,
                                         allocation_pct=preference.allocation_pct, leverage=preference.leverage),
            book=_book(signal.symbol, hedge),
            rules=rules,
            price=price,
            equity=equity,
        )

    def _equity(self) -> Decimal:
        """From the periodic account snapshot when it is fresh (no request on the hot path)."""
        fresh = AccountSnapshot.objects.filter(exchange=self.exchange.name, taken_at__gte=timezone.now() - EQUITY_MAX_AGE).first()
        if fresh is not None:
            return fresh.equity
        return snapshot_take(self.exchange, self._patiently(self.exchange.get_balance)).equity

    def _apply_account_settings(self) -> None:
        """Leverage and margin type are sent only when they differ from what is known to be set."""
        symbol, preference = self.signal.symbol, self.preference
        known, _ = SymbolSetting.objects.get_or_create(exchange=self.exchange.name, symbol=symbol)
        if known.margin_type != preference.margin_type:
            self._patiently(self.exchange.set_margin_type, symbol, preference.margin_type)
            known.margin_type = preference.margin_type
            known.save(update_fields=["margin_type", "updated_at"])
        if known.leverage != preference.leverage:
            self._patiently(self.exchange.set_leverage, symbol, preference.leverage)
            known.leverage = preference.leverage
            known.save(update_fields=["leverage", "updated_at"])

    # --- sending ----------------------------------------------------------------------------------
    def _stop_before(self, index: int) -> bool:
        """A later leg waits on the earlier ones: a reversal never opens if its close did not fill."""
        previous = self.execution.orders.filter(leg__lt=index).exclude(status=Order.Status.FILLED)
        return previous.exists()

    def _leg(self, index: int, leg: dict) -> Order:
        order, _ = Order.objects.get_or_create(
            execution=self.execution,
            leg=index,
            defaults={
                "purpose": leg["purpose"],
                "client_order_id": client_order_id(self.signal, index),
                "symbol": self.signal.symbol,
                "side": leg["side"],
                "position_side": leg["position_side"],
                "quantity": Decimal(leg["quantity"]),
                "reduce_only": leg["reduce_only"],
            },
        )
        if order.status in UNRESOLVED and order.sent_at is not None:
            # A previous attempt sent it and never learnt the outcome: ask before sending again.
            result = self._look_up(order)
            if result is not None:
                return self._record(order, result)
            if timezone.now() > self.deadline:
                return self._record_not_sent(order, "the order never reached the exchange, and it is now too late to send it")
        if order.status in UNRESOLVED:
            return self._send(order)
        if order.status in OPEN_STATUSES:
            result = self._look_up(order)
            return self._record(order, result) if result else order
        return order

    def _send(self, order: Order) -> Order:
        request = OrderRequest(
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            client_order_id=order.client_order_id,
            reduce_only=order.reduce_only,
            position_side=order.position_side,
            price_hint=self.signal.price,
        )
        pause = 0.2
        while True:
            late = (timezone.now() - self.signal.received_at).total_seconds()
            if late > settings.EXECUTION_MAX_DELAY:
                # e.g. a reversal's second leg, resumed after its worker died: too late to open now.
                return self._record_not_sent(order, f"not sent: {late:.1f} s after receipt, over EXECUTION_MAX_DELAY")
            self._renew_lane()
            order.status, order.sent_at = Order.Status.SENT, timezone.now()
            order.save(update_fields=["status", "sent_at", "updated_at"])  # committed before the request leaves
            if self.execution.sent_at is None:
                self.execution.sent_at = order.sent_at
                self.execution.save(update_fields=["sent_at"])
            try:
                return self._record(order, self.exchange.place_market_order(request))
            except PermanentError as error:
                return self._record_refusal(order, error)
            except OutcomeUnknownError as error:
                order.status, order.error_message = Order.Status.UNKNOWN, error.reason
                order.save(update_fields=["status", "error_message", "updated_at"])
                result = self._look_up(order)
                if result is not None:
                    return self._record(order, result)
                # Confirmed absent after the request's receive window closed: sending again is safe.
                if timezone.now() > self.deadline:
                    return self._record_not_sent(order, f"{error.reason}; the order is not at the exchange and it is now too late to resend it")
                continue
            except RetryableError as error:
                order.status, order.error_code, order.error_message = Order.Status.PENDING, error.code, error.reason
                order.save(update_fields=["status", "error_code", "error_message", "updated_at"])
                pause = self._pause(error.retry_after or pause, error)

    def _look_up(self, order: Order) -> OrderResult | None:
        """The exchange's word on an order whose answer was lost. An order is conclusively absent only
        once its request's receive window has closed: the exchange refuses a request older than
        that, so an absent order cannot appear later."""
        window = timedelta(milliseconds=getattr(self.exchange, "recv_window", 0) + 500)
        while True:
            self._renew_lane()
            try:
                result = self.exchange.get_order(order.symbol, order.client_order_id)
            except RetryableError as error:
                self._pause(error.retry_after or 0.5, error)
                continue
            if result is not None and result.status not in OPEN_STATUSES:
                return result
            settle = order.sent_at + window - timezone.now() if order.sent_at else timedelta(0)
            if result is None and settle <= timedelta(0):
                return None
            self._pause(max(min(settle.total_seconds(), 1.0), 0.2) if result is None else 0.2, None)
            if result is not None and timezone.now() > self.deadline:
                return result  # still open: record what is known

    def _pause(self, seconds: float, error: ExchangeError | None) -> float:
        """Sleep before retrying, unless that would pass the signal's deadline; the next pause."""
        if timezone.now() + timedelta(seconds=seconds) > self.deadline + timedelta(seconds=30 if error is None else 0):
            raise GaveUp(error.reason if error else "the exchange did not confirm the order in time")
        self._renew_lane()
        time.sleep(seconds)
        return min(seconds * 2, 5.0)

    def _patiently(self, call, *args):
        pause = 0.2
        while True:
            try:
                return call(*args)
            except RetryableError as error:
                pause = self._pause(error.retry_after or pause, error)

    def _renew_lane(self) -> None:
        if self.lane:
            lane_renew(symbol=self.lane[0], holder=self.lane[1])

    # --- recording --------------------------------------------------------------------------------
    def _record(self, order: Order, result: OrderResult) -> Order:
        now = timezone.now()
        with transaction.atomic():
            order.exchange_order_id = result.exchange_order_id
            order.status = result.status
            order.executed_qty = result.executed_qty
            order.avg_price = result.avg_price
            order.commission = result.commission or Decimal(0)
            order.raw_response = result.raw
            order.acknowledged_at = now
            order.error_code = order.error_message = ""
            order.realized_pnl = _position_apply(order, result)
            order.save()
        if self.execution.acknowledged_at is None:
            self.execution.acknowledged_at = now
            self.execution.save(update_fields=["acknowledged_at"])
        return order

    def _record_refusal(self, order: Order, error: PermanentError) -> Order:
        order.status, order.error_code, order.error_message = Order.Status.REJECTED, error.code, error.reason
        order.acknowledged_at = timezone.now()
        order.save(update_fields=["status", "error_code", "error_message", "acknowledged_at", "updated_at"])
        if error.code == "-2022":
            # The exchange has no position to reduce: ours was out of date (a manual trade?).
            Position.objects.filter(symbol=order.symbol, position_side=order.position_side).update(amount=0)
        return order

    def _record_not_sent(self, order: Order, reason: str) -> Order:
        order.status, order.error_message = Order.Status.NOT_FOUND, reason
        order.save(update_fields=["status", "error_message", "updated_at"])
        return order

    def _conclude(self, orders: list[Order]) -> None:
        filled = [o for o in orders if o.status == Order.Status.FILLED]
        failed = [o for o in orders if o.status != Order.Status.FILLED]
        main = orders[-1] if orders else None
        if main is not None and main.avg_price and self.signal.price:
            self.execution.fill_price = main.avg_price
            direction = 1 if main.side == Order.Side.BUY else -1
            self.execution.slippage_bps = ((main.avg_price - self.signal.price) / self.signal.price * 10000 * direction).quantize(Decimal("0.0001"))
        reason = self.execution.decision.get("reason", "")
        if not failed:
            self.finish(Execution.Status.FILLED, reason)
            return
        problem = failed[0]
        why = problem.error_message or f"order ended {problem.status}"
        status = Execution.Status.PARTIAL if filled else (
            Execution.Status.REJECTED if problem.status == Order.Status.REJECTED else Execution.Status.FAILED
        )
        self.finish(status, f"{reason}; leg {problem.leg} ({problem.purpose}) not filled: {why}",
                    error_code=problem.error_code, error_message=problem.error_message)

    def finish(self, status: str, reason: str, *, error: ExchangeError | None = None, signal_status: str | None = None,
               error_code: str = "", error_message: str = "") -> None:
        execution = self.execution
        execution.status, execution.reason, execution.finished_at = status, reason, timezone.now()
        execution.error_code = error.code if error else error_code
        execution.error_message = error.reason if error else error_message
        if status == Execution.Status.FAILED:
            _orders_settle(execution, reason)
        if signal_status is None:
            ok = status in (Execution.Status.FILLED, Execution.Status.PARTIAL, Execution.Status.NOTHING)
            signal_status = Signal.Status.DONE if ok else Signal.Status.FAILED
        with transaction.atomic():
            execution.save()
            Signal.objects.filter(pk=self.signal.pk).update(status=signal_status, reason=reason, updated_at=timezone.now())
        logger.info("signal %s %s %s: %s (%s)", self.signal.pk, self.signal.action, self.signal.symbol, status, reason)


# --- helpers used by the run and by the periodic jobs ---------------------------------------------
def _orders_settle(execution: Execution, reason: str) -> None:
    """On giving up, say truthfully what each unresolved order is: never sent, or unknown."""
    execution.orders.filter(status=Order.Status.PENDING).update(
        status=Order.Status.NOT_FOUND, error_message=f"never sent: {reason}", updated_at=timezone.now()
    )
    execution.orders.filter(status=Order.Status.SENT).update(status=Order.Status.UNKNOWN, updated_at=timezone.now())


def client_order_id(signal: Signal, leg: int) -> str:
    """Unique per signal and leg, and across database resets (the receipt time is part of it), so a
    lookup by it can never find some other signal's order. ≤36 chars of ^[.A-Z:/a-z0-9_-]$."""
    received_ms = int(signal.received_at.timestamp() * 1000)
    return f"at-{_base36(signal.pk)}-{_base36(received_ms)}-{leg}"


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if number == 0:
            return out


def _book(symbol: str, hedge_mode: bool) -> engine.Book:
    amounts = dict(Position.objects.filter(symbol=symbol).values_list("position_side", "amount"))
    if hedge_mode:
        return engine.Book(long=abs(amounts.get("LONG", 0)), short=abs(amounts.get("SHORT", 0)), hedge_mode=True)
    amount = amounts.get("BOTH", Decimal(0))
    return engine.Book(long=max(amount, 0), short=max(-amount, 0))


def _position_apply(order: Order, result: OrderResult) -> Decimal:
    """Fold a fill into our Position mirror (inside the caller's transaction); the realized P&L."""
    if not result.executed_qty or result.avg_price is None:
        return Decimal(0)
    position, _ = Position.objects.select_for_update().get_or_create(symbol=order.symbol, position_side=order.position_side)
    signed = result.executed_qty if order.side == Order.Side.BUY else -result.executed_qty
    position.amount, position.entry_price, computed = position_after(position.amount, position.entry_price, signed, result.avg_price)
    realized = result.realized_pnl if result.realized_pnl is not None else computed
    position.realized_pnl += realized
    position.mark_price = result.avg_price
    position.unrealized_pnl = (result.avg_price - position.entry_price) * position.amount
    position.save()
    return realized
