"""Deciding what to do with a signal: gather the inputs, then let the pure `engine.plan` decide.

Inputs come from our records where they are fresh enough (the position mirror, the last account
snapshot, a recent mark price) so that a signal in steady state costs one exchange request: the
order itself.
"""

import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.utils import timezone

from analytics.models import AccountSnapshot
from preferences.matching import trade_refusal
from preferences.models import StrategyPreference
from trading import engine
from trading.closed_first import recorded_close
from trading.exchange import Exchange, PermanentError, SymbolRules
from trading.intake import alert_limit_price, alert_order_type
from trading.mandate import Mandate
from trading.models import Execution, Position, Signal
from trading.risk import OpeningLimits, opening_limits
from trading.upkeep import snapshot_take

logger = logging.getLogger(__name__)

EQUITY_MAX_AGE = timedelta(seconds=120)  # sizing uses the last account snapshot younger than this
MARK_MAX_AGE = 60.0  # seconds a mark price is trusted to tell a sane alert price from a mis-scaled one


@dataclass(frozen=True)
class Verdict:
    """The execution ends before any order: too late, filtered, or nothing to do."""

    status: Execution.Status
    reason: str
    signal_status: Signal.Status | None = None
    mismatch: str = ""  # see engine.alert_mismatch


def decide(*, signal: Signal, exchange: Exchange, mandate: Mandate) -> engine.Plan | Verdict:
    if mandate.too_late():
        return Verdict(Execution.Status.SKIPPED, f"too late: {mandate.age():.1f} s after receipt, over "
                                                 f"EXECUTION_MAX_DELAY ({settings.EXECUTION_MAX_DELAY} s)")
    if signal.origin == Signal.Origin.OPERATOR:
        return _plan_flatten(signal, exchange, mandate)
    preference = _preference_now(signal)
    refusal = trade_refusal(preference, signal.strategy, signal.symbol)
    if refusal or preference is None:
        return Verdict(Execution.Status.NOTHING, f"since the signal arrived: {refusal}", Signal.Status.FILTERED)
    plan = _plan(signal, preference, exchange, mandate)
    if plan.outcome == engine.Outcome.FILTERED:
        return Verdict(Execution.Status.NOTHING, plan.reason, Signal.Status.FILTERED, plan.mismatch)
    if plan.outcome == engine.Outcome.NOTHING:
        hedge_mode = mandate.retrying(exchange.is_hedge_mode)  # read for the plan a moment ago: cached
        return Verdict(Execution.Status.NOTHING, _nothing_said(signal, plan.reason, hedge_mode=hedge_mode),
                       mismatch=plan.mismatch)
    if plan.outcome == engine.Outcome.REFUSED:
        return Verdict(Execution.Status.SKIPPED, plan.reason, mismatch=plan.mismatch)
    return plan


def _nothing_said(signal: Signal, reason: str, *, hedge_mode: bool) -> str:
    """A close with nothing to close says what closed the position when the exchange reported it:
    a take-profit or stop of ours (no news), a liquidation or a trade outside this system (a warning).
    In hedge mode, what closed the side the alert closes: the other side's stop is not the answer."""
    if engine.entry_side(engine.Intent(action=signal.action, market_position=signal.market_position)) is not None:
        return reason
    first = recorded_close(signal.symbol, position_side=_side_closed(signal.action) if hedge_mode else None,
                           alert_at=signal.received_at)
    if first is None:
        return reason
    said = f"nothing to close: {first.words}"
    if first.warning:
        logger.warning("signal %s %s: %s", signal.pk, signal.symbol, said)
        return Execution.WARNING + said
    return said


def _side_closed(action: str) -> str | None:
    """The hedge-mode position side a close alert closes; None for both (`close`). A buy or sell here
    is an exit (market position flat): a buy closes the short, a sell the long."""
    return {"close_long": "LONG", "sell": "LONG", "close_short": "SHORT", "buy": "SHORT"}.get(action)


def _preference_now(signal: Signal) -> StrategyPreference | None:
    """The strategy's settings as they are now: the latest word wins."""
    if signal.preference_id is None:
        return None
    preference = StrategyPreference.objects.filter(pk=signal.preference_id).first()
    if preference is not None:
        signal.preference = preference  # what the account settings read next: no second query
    return preference


def _plan(signal: Signal, preference: StrategyPreference, exchange: Exchange, mandate: Mandate) -> engine.Plan:
    intent = engine.Intent(action=signal.action, quantity=signal.quantity, quantity_type=signal.quantity_type,
                           price=signal.price, market_position=signal.market_position,
                           prev_market_position=signal.prev_market_position, position_size=signal.position_size,
                           stop_loss=signal.stop_loss)
    rules = mandate.retrying(exchange.get_symbol_rules, signal.symbol)
    book = position_book(signal.symbol, mandate.retrying(exchange.is_hedge_mode))
    side = engine.entry_side(intent)
    opening = side is not None
    limits = opening_limits(preference, signal.symbol, side) if opening else OpeningLimits()
    wanted = _engine_preference(preference, limits)
    sizing_needed = opening and engine.needs_equity(intent, wanted) and not limits.opens
    equity = _equity(exchange, mandate) if sizing_needed else None
    plan_at = partial(engine.plan, intent=intent, preference=wanted, book=book, rules=rules, equity=equity)
    if not opening:
        return plan_at(mark=None)
    mark, fresh = MARKS.get(exchange, signal.symbol, mandate, fresh=signal.price is None)
    plan = plan_at(mark=mark)
    if plan.price != signal.price and signal.price is not None and not fresh:
        # The alert's price looked wrong next to a mark price up to a minute old: ask for the current one.
        mark, _ = MARKS.get(exchange, signal.symbol, mandate, fresh=True)
        plan = plan_at(mark=mark)
    return _with_entry(plan, signal, preference, rules)


def _with_entry(plan: engine.Plan, signal: Signal, preference: StrategyPreference, rules: SymbolRules) -> engine.Plan:
    """The plan's opening legs as limit orders when the alert's `order_type` (else the strategy's
    `entry`) says limit or post_only; refused, in words, when such an order would break the symbol's
    rules at its limit price."""
    order_type = alert_order_type(signal.payload.get("order_type")) or preference.entry
    alert_limit = alert_limit_price(signal.payload.get("limit_price"))
    if order_type == "market" and alert_limit is not None and not signal.payload.get("order_type"):
        order_type = "limit"  # a limit price alone asks for a limit order
    if order_type == "market" or plan.outcome != engine.Outcome.TRADE or plan.price is None:
        return plan
    legs = []
    for leg in plan.legs:
        if not leg.opens:
            legs.append(leg)
            continue
        price = engine.limit_price(leg.side, alert_limit=alert_limit, price=plan.price,
                                   offset_pct=preference.entry_offset_pct, rules=rules)
        problem = rules.violation(leg.quantity, price)
        if problem:
            return engine.Plan(engine.Outcome.REFUSED, f"limit entry at {engine.plain(price)}: {problem}", price=plan.price)
        entry = engine.LimitEntry(price=price, post_only=order_type == "post_only", timeout=preference.entry_timeout,
                                  on_timeout=preference.on_timeout)
        legs.append(replace(leg, entry=entry))
    kind = "post-only" if order_type == "post_only" else "limit"
    reason = f"{plan.reason}, {kind} at {engine.plain(legs[-1].entry.price)}" if legs[-1].entry else plan.reason
    return replace(plan, legs=tuple(legs), reason=reason)


def _engine_preference(preference: StrategyPreference, limits: OpeningLimits) -> engine.Preference:
    return engine.Preference(direction=preference.direction, sizing=preference.sizing,
                             allocation_pct=preference.allocation_pct, leverage=preference.leverage,
                             risk_pct=preference.risk_pct, stop_loss_pct=preference.stop_loss or None,
                             max_position_usdt=preference.max_position_usdt,
                             price_tolerance_pct=preference.price_tolerance_pct, opens_refused=limits.opens,
                             new_positions_refused=limits.new_positions, adds_refused=limits.adds,
                             sync_to_alert=preference.sync_to_alert)


def _plan_flatten(signal: Signal, exchange: Exchange, mandate: Mandate) -> engine.Plan | Verdict:
    """An operator's close of a whole position (the kill switch's flatten): no strategy to ask."""
    rules = mandate.retrying(exchange.get_symbol_rules, signal.symbol)
    book = position_book(signal.symbol, mandate.retrying(exchange.is_hedge_mode))
    plan = engine.plan(intent=engine.Intent(action="close"), preference=engine.Preference(), book=book, rules=rules,
                       mark=None, equity=None)
    if plan.outcome != engine.Outcome.TRADE:
        return Verdict(Execution.Status.NOTHING, plan.reason)
    return plan


def position_book(symbol: str, hedge_mode: bool) -> engine.Book:
    amounts = dict(Position.objects.filter(symbol=symbol).values_list("position_side", "amount"))
    if hedge_mode:
        return engine.Book(long=abs(amounts.get("LONG", Decimal(0))), short=abs(amounts.get("SHORT", Decimal(0))),
                           hedge_mode=True)
    amount = amounts.get("BOTH", Decimal(0))
    return engine.Book(long=max(amount, Decimal(0)), short=max(-amount, Decimal(0)))


def _equity(exchange: Exchange, mandate: Mandate) -> Decimal:
    """From the periodic account snapshot when it is fresh (no request on the hot path)."""
    fresh = AccountSnapshot.objects.filter(account=exchange.account_id,
                                           taken_at__gte=timezone.now() - EQUITY_MAX_AGE).first()
    if fresh is not None:
        return fresh.equity
    return snapshot_take(exchange, mandate.retrying(exchange.get_balance)).equity


class _MarkPrices:
    """The last mark price read per symbol, in this process."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], tuple[Decimal, float]] = {}

    def get(self, exchange: Exchange, symbol: str, mandate: Mandate, *, fresh: bool) -> tuple[Decimal | None, bool]:
        """(mark price or None when the exchange has none, whether it was read just now)."""
        key = (exchange.account_id, symbol)
        known = self.seen.get(key)
        if not fresh and known is not None and time.monotonic() - known[1] <= MARK_MAX_AGE:
            return known[0], False
        try:
            price = mandate.retrying(exchange.get_mark_price, symbol)
        except PermanentError:
            return None, True  # e.g. the paper exchange before its first price: the alert's price stands
        self.seen[key] = (price, time.monotonic())
        return price, True

    def clear(self) -> None:
        self.seen.clear()


MARKS = _MarkPrices()
