"""Protective orders: after an execution changed a position, make the exchange hold exactly the
stop-loss, take-profit (or ladder of them) and trailing stop its strategy asks for — placed after an
entry, re-placed when an add moves the entry price or changes the quantities they close, cancelled
when the position closes or reverses — then read them back; and after a ladder's level fills, move
the stop to breakeven (position_settle). A position
left without its configured protection raises an alarm (on the execution, in /health, in the log).

Placing never blocks or undoes the trade: the entry has filled whatever happens here. The client id
of each protective order is derived from the signal and its kind, so a retry after a lost answer
cannot place two; the new ones are placed before the old are cancelled, so the position is never
left bare in between.

Protection is per position side: BOTH in one-way mode; in hedge mode the LONG and the SHORT each have
their own, and an execution brings up to date only the sides its legs traded.
"""

import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

from django.db.models import Q, Sum
from django.utils import timezone

from notifications.events import notify
from preferences.models import StrategyPreference
from trading.engine import Plan, plain
from trading.exchange import Exchange, ExchangeError, OutcomeUnknown, ProtectiveRequest, RetryableError
from trading.intake import alert_tp_ladder, alert_trail
from trading.models import Execution, Order, Position, ProtectiveOrder, Signal
from trading.stops import (
    Level,
    Protection,
    Trailing,
    breakeven_stop,
    ladder_for,
    ladder_from_prices,
    ladder_from_value,
    protections_for,
    trailing_for,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")
ATTEMPTS = 3  # per request; a protective order is worth a few quick retries, never an endless wait
PAUSE = 0.25  # seconds before a retry the exchange gave no time for; doubled each time
PATIENCE = 5.0  # seconds a retry may wait (Retry-After, a rate-limit hold-back); longer: an alarm now
LIVE = (ProtectiveOrder.Status.PLACING, ProtectiveOrder.Status.ACTIVE)
ID_LETTERS = {"stop_loss": "s", "take_profit": "t", "trailing": "r"}  # in the client id: one order of each kind


def position_protect(*, execution: Execution, signal: Signal, exchange: Exchange) -> str:
    """Bring the symbol's protective orders in line with its position; the alarm ("" if none)."""
    preference = _preference(signal)
    configured = preference is not None and bool(preference.stop_loss or preference.take_profit
                                                  or preference.take_profit_ladder or preference.trailing_stop)
    alert_prices = (signal.stop_loss is not None or signal.take_profit is not None or "trail" in signal.payload
                    or "tp" in signal.payload)
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


def _preference(signal: Signal) -> StrategyPreference | None:
    """The strategy's settings the decision was made with (trading/deciding.py reads them fresh and
    keeps them on the signal): the protection follows the same word, without a second query."""
    if Signal.preference.is_cached(signal):
        return signal.preference
    return StrategyPreference.objects.filter(pk=signal.preference_id).first() if signal.preference_id else None


def _sides_traded(execution: Execution) -> set[str]:
    """The position sides the execution's legs traded (BOTH in one-way mode): in hedge mode a buy
    leaves the short's protection alone."""
    legs = Plan.from_dict(execution.decision).legs if execution.decision.get("outcome") else ()
    return {leg.position_side for leg in legs} or {"BOTH"}


def _protect(execution: Execution, signal: Signal, preference: StrategyPreference | None, exchange: Exchange,
             live: list[ProtectiveOrder], sides: set[str]) -> str:
    problems: list[str] = []
    notes: list[str] = []
    for side in sorted(sides):
        problems += _protect_side(execution, signal, preference, exchange, side,
                                  [order for order in live if order.position_side == side], notes)
    if notes:  # said in the execution's reason when it concludes (recording.execution_conclude)
        execution.decision = {**execution.decision, "protection_notes": notes}
        Execution.objects.filter(pk=execution.pk).update(decision=execution.decision)
    if Position.objects.filter(symbol=signal.symbol, position_side__in=sides).exclude(amount=0).exists():
        problems += _read_back(signal.symbol, exchange)
    return "; ".join(problems)


def _protect_side(execution: Execution, signal: Signal, preference: StrategyPreference | None, exchange: Exchange,
                  side: str, live: list[ProtectiveOrder], notes: list[str]) -> list[str]:
    position = Position.objects.filter(symbol=signal.symbol, position_side=side).exclude(amount=0).first()
    problems: list[str] = []
    wanted: tuple[Protection, ...] = ()
    if position is not None:
        rules = exchange.get_symbol_rules(signal.symbol)
        ladder = _ladder(signal, preference)
        plan = protections_for(
            amount=position.amount, entry=position.entry_price, tick=rules.tick_size,
            stop_loss_pct=preference.stop_loss if preference else None,
            take_profit_pct=preference.take_profit if preference and not ladder else None,
            sl_price=signal.stop_loss, tp_price=signal.take_profit,
        )
        wanted, problems = plan.protections, list(plan.problems)
        if ladder:
            levels = ladder_for(amount=position.amount, entry=position.entry_price, rules=rules, levels=ladder)
            wanted, problems = wanted + levels.protections, problems + list(levels.problems)
            notes += levels.notes
        trailing = trailing_for(amount=position.amount, entry=position.entry_price, tick=rules.tick_size,
                                trailing=_trailing(signal, preference))
        wanted += (trailing,) if trailing is not None else ()
    keep = [order for order in live if _fits(order, wanted, position)]
    for protection in wanted:
        if not any(_matches(order, protection) for order in keep):
            problems += _place(execution, signal, protection, position, exchange)
    for order in live:
        if order not in keep:
            problems += _cancel(order, exchange)
    return problems


def _ladder(signal: Signal, preference: StrategyPreference | None) -> tuple[Level, ...] | None:
    """The alert's `tp` list (equal shares) wins; its single `tp` price wins too, as one take-profit;
    else the strategy's ladder. Checked when they came in: a stored value read here is valid."""
    prices = alert_tp_ladder(signal.payload.get("tp"))
    if prices:
        return ladder_from_prices(prices)
    if signal.take_profit is not None or preference is None:
        return None
    return ladder_from_value(preference.take_profit_ladder)


def _trailing(signal: Signal, preference: StrategyPreference | None) -> Trailing | None:
    """The alert's `trail` (its callback; the strategy's activation, if any) wins over the strategy's.
    Both were checked when they came in (the webhook, the form): a stored value read here is valid."""
    stored = Trailing.from_value(preference.trailing_stop) if preference is not None else None
    callback = alert_trail(signal.payload.get("trail"))
    if callback is None:
        return stored
    return Trailing(callback, stored.activation_pct if stored is not None else None)


def _fits(order: ProtectiveOrder, wanted: tuple[Protection, ...], position: Position | None) -> bool:
    return position is not None and any(_matches(order, protection) for protection in wanted)


def _matches(order: ProtectiveOrder, p: Protection) -> bool:
    """The order resting is this protection: a ladder whose position grew re-places every level."""
    return (p.kind == order.kind and p.side == order.side and p.trigger == order.trigger_price
            and p.quantity == order.quantity and p.callback == order.callback_rate and p.level == order.level)


def _place(execution: Execution, signal: Signal, protection: Protection, position: Position | None,
           exchange: Exchange) -> list[str]:
    assert position is not None
    client_id = _client_id(signal, protection, position.position_side)
    order, _ = ProtectiveOrder.objects.get_or_create(
        client_id=client_id,
        defaults={"execution": execution, "symbol": signal.symbol, "position_side": position.position_side,
                  "kind": protection.kind, "side": protection.side, "trigger_price": protection.trigger,
                  "quantity": protection.quantity, "callback_rate": protection.callback, "level": protection.level},
    )
    request = ProtectiveRequest(symbol=signal.symbol, kind=protection.kind, side=protection.side, trigger=protection.trigger,
                                client_id=client_id, position_side=position.position_side, quantity=protection.quantity,
                                callback=protection.callback)
    try:
        order.exchange_id = _with_retries(lambda: exchange.place_protective(request))
    except ExchangeError as error:
        order.status, order.error_message = ProtectiveOrder.Status.REJECTED, error.reason
        order.save(update_fields=["status", "error_message", "updated_at"])
        return [f"{_described(protection)} was refused: {error.reason}"]
    order.status = ProtectiveOrder.Status.ACTIVE
    order.save(update_fields=["exchange_id", "status", "updated_at"])
    return []


def _client_id(signal: Signal, protection: Protection, position_side: str) -> str:
    """The same for the same signal, kind, level and side: placing again is a no-op at the exchange."""
    received_ms = int(signal.received_at.timestamp() * 1000)
    client_id = f"pt-{signal.pk:x}-{received_ms:x}-{ID_LETTERS[protection.kind]}{protection.level or ''}"
    if position_side != "BOTH":  # hedge mode: one signal may protect both sides
        client_id += f"-{position_side[0].lower()}"
    return client_id


def _described(protection: Protection) -> str:
    if protection.kind == "trailing":
        assert protection.callback is not None
        return f"trailing stop of {plain(protection.callback)} %"
    level = f" level {protection.level}" if protection.level else ""
    return f"{ProtectiveOrder.Kind(protection.kind).label.lower()}{level} at {plain(protection.trigger)}"


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


def _with_retries(call: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """`call()`, again after a pause when nothing happened or the outcome is unknown (safe: the client
    id makes a second placement of the same order a no-op). The pause is what the exchange asked for
    (a rate limit's hold-back, Retry-After), else a short doubling one; a wait over PATIENCE is not
    waited: the error goes up and the position's protection alarm says why."""
    pause = PAUSE
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return call()
        except (RetryableError, OutcomeUnknown) as error:
            wait = error.retry_after if error.retry_after is not None else pause
            if attempt == ATTEMPTS or wait > PATIENCE:
                raise
            sleep(wait)
            pause *= 2
    raise AssertionError("unreachable")


def position_settle(symbol: str, exchange: Exchange) -> str:
    """The exchange changed the position by itself: once it is flat, no protective order is needed
    (the other half of a stop-loss / take-profit pair would otherwise rest there); while it is open
    after a take-profit ladder's level filled, the stop may move to breakeven. Problems, if any.
    Side by side in hedge mode: the long's stop closing it leaves the short's protection resting."""
    open_sides = set(Position.objects.filter(symbol=symbol).exclude(amount=0).values_list("position_side", flat=True))
    problems: list[str] = []
    for order in ProtectiveOrder.objects.filter(symbol=symbol, status__in=LIVE).exclude(position_side__in=open_sides):
        problems += _cancel(order, exchange)
    for side in sorted(open_sides):
        problems += _breakeven(symbol, side, exchange)
    return "; ".join(problems)


def _breakeven(symbol: str, side: str, exchange: Exchange) -> list[str]:
    """After level k (the strategy's `breakeven_after`) or a later one of the position's ladder filled,
    its stop moves to breakeven: placed first, the old stop cancelled second; a stop already there
    stays. The next execution that changes the position places the stop from the percents again."""
    position = Position.objects.filter(symbol=symbol, position_side=side).exclude(amount=0).first()
    opened = (Order.objects.filter(symbol=symbol, position_side=side, purpose="open", executed_qty__gt=0)
              .order_by("-id").values_list("id", "created_at").first())
    if position is None or opened is None:
        return []
    # Triggered, or its fill already seen: the stream may bring the fill before the trigger's own news.
    done = Q(status=ProtectiveOrder.Status.TRIGGERED) | Q(fills__executed_qty__gt=0)
    filled = (ProtectiveOrder.objects.filter(done, symbol=symbol, position_side=side, level__gt=0,
                                             kind=ProtectiveOrder.Kind.TAKE_PROFIT, created_at__gte=opened[1])
              .select_related("execution__signal__preference").order_by("-level", "-id").first())
    preference = filled.execution.signal.preference if filled is not None else None
    if filled is None or preference is None or not preference.breakeven_after or filled.level < preference.breakeven_after:
        return []
    stop = _breakeven_stop(position, filled, preference, opened[0], exchange)
    stops = list(ProtectiveOrder.objects.filter(symbol=symbol, position_side=side, kind=ProtectiveOrder.Kind.STOP_LOSS,
                                                status__in=LIVE))
    # Already there: the same stop, or this level's breakeven stop placed from the same execution (its
    # price read again may differ by a fee recorded since; placing it again would reuse its client id, a
    # no-op at the exchange, and the cancel below would then take the only stop away).
    if any(_matches(order, stop) or (order.level == stop.level and order.execution_id == filled.execution_id)
           for order in stops):
        return []
    problems = _place(filled.execution, filled.execution.signal, stop, position, exchange)
    if problems:
        return problems  # the old stop stays: the position is never bare
    placed = _client_id(filled.execution.signal, stop, side)
    for order in stops:
        if order.client_id != placed:  # never the stop just placed, whatever made it look like an old one
            problems += _cancel(order, exchange)
    return problems


def _breakeven_stop(position: Position, filled: ProtectiveOrder, preference: StrategyPreference, opened_id: int,
                    exchange: Exchange) -> Protection:
    previous = None
    if preference.breakeven_to == StrategyPreference.BreakevenTo.PREVIOUS_TP and filled.level > 1:
        previous = (ProtectiveOrder.objects.filter(execution=filled.execution, position_side=filled.position_side,
                                                   kind=ProtectiveOrder.Kind.TAKE_PROFIT, level=filled.level - 1)
                    .values_list("trigger_price", flat=True).first())
    fees = (Order.objects.filter(symbol=position.symbol, position_side=position.position_side, id__gte=opened_id)
            .aggregate(paid=Sum("commission"))["paid"]) or Decimal(0)
    tick = exchange.get_symbol_rules(position.symbol).tick_size
    return breakeven_stop(amount=position.amount, entry=position.entry_price, fees=fees, tick=tick,
                          level=filled.level, to_price=previous)


def positions_unprotected() -> list[str]:
    """Open positions whose latest protection attempt raised an alarm, for /health."""
    alarms = []
    for position in Position.objects.exclude(amount=0):
        latest = (Execution.objects.filter(symbol=position.symbol).exclude(finished_at=None)
                  .order_by("-finished_at").values_list("protection_alarm", flat=True).first())
        if latest:
            alarms.append(f"{position.symbol}: {latest}")
    return alarms
