"""Protective orders: after an execution changed a position, make the exchange hold exactly the
stop-loss and take-profit its strategy asks for — placed after an entry, re-placed when an add moves
the entry price, cancelled when the position closes or reverses — then read them back. A position
left without its configured protection raises an alarm (on the execution, in /health, in the log).

Placing never blocks or undoes the trade: the entry has filled whatever happens here. The client id
of each protective order is derived from the signal and its kind, so a retry after a lost answer
cannot place two; the new ones are placed before the old are cancelled, so the position is never
left bare in between.

Protection is per position side: BOTH in one-way mode; in hedge mode the LONG and the SHORT each have
their own, and an execution brings up to date only the sides its legs traded.
"""

import logging
from collections.abc import Callable
from typing import TypeVar

from django.utils import timezone

from notifications.events import notify
from preferences.models import StrategyPreference
from trading.engine import Plan
from trading.exchange import Exchange, ExchangeError, OutcomeUnknown, ProtectiveRequest, RetryableError
from trading.models import Execution, Position, ProtectiveOrder, Signal
from trading.stops import Protection, protections_for

logger = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 3  # per request; a protective order is worth a few quick retries, never an endless wait
LIVE = (ProtectiveOrder.Status.PLACING, ProtectiveOrder.Status.ACTIVE)


def position_protect(*, execution: Execution, signal: Signal, exchange: Exchange) -> str:
    """Bring the symbol's protective orders in line with its position; the alarm ("" if none)."""
    preference = StrategyPreference.objects.filter(pk=signal.preference_id).first() if signal.preference_id else None
    configured = preference is not None and bool(preference.stop_loss or preference.take_profit)
    alert_prices = signal.stop_loss is not None or signal.take_profit is not None
    sides = _sides_traded(execution)
    live = list(ProtectiveOrder.objects.filter(symbol=signal.symbol, status__in=LIVE, position_side__in=sides))
    if not (configured or alert_prices or live):
        return ""
    try:
        alarm = _protect(execution, signal, preference, exchange, live, sides)
    except ExchangeError as error:
        alarm = f"protective orders could not be brought up to date: {error.reason}"
    except Exception as error:  # the trade is done: a bug here must not rewrite its outcome
        logger.exception("protecting %s after signal %s failed", signal.symbol, signal.pk)
        alarm = f"protective orders could not be brought up to date: {type(error).__name__}"
    if alarm:
        logger.error("signal %s %s: protection alarm: %s", signal.pk, signal.symbol, alarm)
        notify("protection", f"{signal.symbol} is not protected as strategy {signal.strategy} asks: {alarm}", strategy=preference)
        Execution.objects.filter(pk=execution.pk).update(protection_alarm=alarm)
        execution.protection_alarm = alarm
    return alarm


def _sides_traded(execution: Execution) -> set[str]:
    """The position sides the execution's legs traded (BOTH in one-way mode): in hedge mode a buy
    leaves the short's protection alone."""
    legs = Plan.from_dict(execution.decision).legs if execution.decision.get("outcome") else ()
    return {leg.position_side for leg in legs} or {"BOTH"}


def _protect(execution: Execution, signal: Signal, preference: StrategyPreference | None, exchange: Exchange,
             live: list[ProtectiveOrder], sides: set[str]) -> str:
    problems: list[str] = []
    for side in sorted(sides):
        problems += _protect_side(execution, signal, preference, exchange, side,
                                  [order for order in live if order.position_side == side])
    if Position.objects.filter(symbol=signal.symbol, position_side__in=sides).exclude(amount=0).exists():
        problems += _read_back(signal.symbol, exchange)
    return "; ".join(problems)


def _protect_side(execution: Execution, signal: Signal, preference: StrategyPreference | None, exchange: Exchange,
                  side: str, live: list[ProtectiveOrder]) -> list[str]:
    position = Position.objects.filter(symbol=signal.symbol, position_side=side).exclude(amount=0).first()
    problems: list[str] = []
    wanted: tuple[Protection, ...] = ()
    if position is not None:
        rules = exchange.get_symbol_rules(signal.symbol)
        plan = protections_for(
            amount=position.amount, entry=position.entry_price, tick=rules.tick_size,
            stop_loss_pct=preference.stop_loss if preference else None,
            take_profit_pct=preference.take_profit if preference else None,
            sl_price=signal.stop_loss, tp_price=signal.take_profit,
        )
        wanted, problems = plan.protections, list(plan.problems)
    keep = [order for order in live if _fits(order, wanted, position)]
    for protection in wanted:
        if not any(order.kind == protection.kind for order in keep):
            problems += _place(execution, signal, protection, position, exchange)
    for order in live:
        if order not in keep:
            problems += _cancel(order, exchange)
    return problems


def _fits(order: ProtectiveOrder, wanted: tuple[Protection, ...], position: Position | None) -> bool:
    return position is not None and any(
        p.kind == order.kind and p.side == order.side and p.trigger == order.trigger_price for p in wanted
    )


def _place(execution: Execution, signal: Signal, protection: Protection, position: Position | None,
           exchange: Exchange) -> list[str]:
    assert position is not None
    received_ms = int(signal.received_at.timestamp() * 1000)
    client_id = f"pt-{signal.pk:x}-{received_ms:x}-{protection.kind[0]}"
    if position.position_side != "BOTH":  # hedge mode: one signal may protect both sides
        client_id += f"-{position.position_side[0].lower()}"
    order, _ = ProtectiveOrder.objects.get_or_create(
        client_id=client_id,
        defaults={"execution": execution, "symbol": signal.symbol, "position_side": position.position_side,
                  "kind": protection.kind, "side": protection.side, "trigger_price": protection.trigger},
    )
    request = ProtectiveRequest(symbol=signal.symbol, kind=protection.kind, side=protection.side, trigger=protection.trigger,
                                client_id=client_id, position_side=position.position_side)
    try:
        order.exchange_id = _with_retries(lambda: exchange.place_protective(request))
    except ExchangeError as error:
        order.status, order.error_message = ProtectiveOrder.Status.REJECTED, error.reason
        order.save(update_fields=["status", "error_message", "updated_at"])
        return [f"{order.get_kind_display().lower()} at {protection.trigger.normalize():f} was refused: {error.reason}"]
    order.status = ProtectiveOrder.Status.ACTIVE
    order.save(update_fields=["exchange_id", "status", "updated_at"])
    return []


def _cancel(order: ProtectiveOrder, exchange: Exchange) -> list[str]:
    # Said (and committed) before the request: the stream's cancel event often arrives before the
    # answer, and must read as ours, not as an order cancelled by someone else (trading/live.py).
    ProtectiveOrder.objects.filter(pk=order.pk).update(cancel_requested_at=timezone.now(), updated_at=timezone.now())
    try:
        _with_retries(lambda: exchange.cancel_protective(order.symbol, order.client_id))
    except ExchangeError as error:
        # Still resting, most likely: a cancel seen later is not ours.
        ProtectiveOrder.objects.filter(pk=order.pk, status__in=LIVE).update(cancel_requested_at=None,
                                                                             updated_at=timezone.now())
        return [f"the old {order.get_kind_display().lower()} {order.client_id} could not be cancelled: {error.reason}"]
    # Not over `triggered`: one that triggered just before the cancel reached the exchange stays so.
    ProtectiveOrder.objects.filter(pk=order.pk, status__in=(*LIVE, ProtectiveOrder.Status.GONE)).update(
        status=ProtectiveOrder.Status.CANCELLED, updated_at=timezone.now())
    return []


def _read_back(symbol: str, exchange: Exchange) -> list[str]:
    """Every protective order we count on must be resting at the exchange."""
    resting = {state.client_id for state in exchange.open_protective(symbol)}
    missing = ProtectiveOrder.objects.filter(symbol=symbol, status=ProtectiveOrder.Status.ACTIVE).exclude(client_id__in=resting)
    gone = [f"the {order.get_kind_display().lower()} {order.client_id} is not at the exchange" for order in missing]
    missing.update(status=ProtectiveOrder.Status.GONE, updated_at=timezone.now())
    return gone


def _with_retries(call: Callable[[], T]) -> T:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except (RetryableError, OutcomeUnknown):
            # Safe to repeat: the client id makes a second placement of the same order a no-op.
            if attempt == ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def position_settle(symbol: str, exchange: Exchange) -> str:
    """The exchange changed the position by itself: once it is flat, no protective order is needed
    (the other half of a stop-loss / take-profit pair would otherwise rest there); problems, if any.
    Side by side in hedge mode: the long's stop closing it leaves the short's protection resting."""
    open_sides = set(Position.objects.filter(symbol=symbol).exclude(amount=0).values_list("position_side", flat=True))
    problems: list[str] = []
    for order in ProtectiveOrder.objects.filter(symbol=symbol, status__in=LIVE).exclude(position_side__in=open_sides):
        problems += _cancel(order, exchange)
    return "; ".join(problems)


def positions_unprotected() -> list[str]:
    """Open positions whose latest protection attempt raised an alarm, for /health."""
    alarms = []
    for position in Position.objects.exclude(amount=0):
        latest = (Execution.objects.filter(symbol=position.symbol).exclude(finished_at=None)
                  .order_by("-finished_at").values_list("protection_alarm", flat=True).first())
        if latest:
            alarms.append(f"{position.symbol}: {latest}")
    return alarms
