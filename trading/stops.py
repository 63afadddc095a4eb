"""Where a position's stop-loss and take-profit trigger, pure: from the entry fill price and the
strategy's percents, or from the alert's own `sl` / `tp` prices, which win when present. And its
trailing stop: a callback from the best price since an activation price (`trailing_for`).

Trigger prices are rounded to the symbol's tick in the *safe* direction — towards the current
price, so the protection triggers a hair early rather than late: a long's stop-loss rounds up and
its take-profit down; a short's the other way.
"""

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from trading.engine import plain
from trading.exchange.base import SymbolRules

HUNDRED = Decimal(100)
# Binance's range for a TRAILING_STOP_MARKET's callbackRate, in its steps of 0.1 %.
# Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order
CALLBACK_MIN, CALLBACK_MAX, CALLBACK_STEP = Decimal("0.1"), Decimal(10), Decimal("0.1")


@dataclass(frozen=True)
class Protection:
    kind: str  # stop_loss, take_profit, trailing
    side: str  # the closing side: SELL for a long
    trigger: Decimal  # a trailing stop's activation price; 0: active at once
    quantity: Decimal | None = None  # None: the whole position (closePosition)
    callback: Decimal | None = None  # a trailing stop's callback, % from the best price since activation
    level: int = 0  # a take-profit ladder's level, from 1; 0: not a ladder level


@dataclass(frozen=True)
class Wanted:
    protections: tuple[Protection, ...]
    problems: tuple[str, ...] = ()  # a configured protection that cannot be placed, in plain words
    notes: tuple[str, ...] = ()  # what was placed otherwise than configured, and why (a merged ladder level)


def protections_for(*, amount: Decimal, entry: Decimal, tick: Decimal, stop_loss_pct: Decimal | None,
                    take_profit_pct: Decimal | None, sl_price: Decimal | None = None,
                    tp_price: Decimal | None = None) -> Wanted:
    """The protections a position of signed `amount` entered at `entry` should rest under (one side
    of it in hedge mode: the SHORT side's amount is negative, as Binance states it)."""
    if amount == 0 or entry <= 0:
        return Wanted(())
    long = amount > 0
    side = "SELL" if long else "BUY"
    wanted, problems = [], []
    for kind, pct, price in (("stop_loss", stop_loss_pct, sl_price), ("take_profit", take_profit_pct, tp_price)):
        loss = kind == "stop_loss"
        if price is None and pct:
            below = loss == long  # a long's stop and a short's target lie below the entry
            price = entry * (1 - pct / HUNDRED) if below else entry * (1 + pct / HUNDRED)
        if price is None:
            continue
        trigger = _round_towards_price(price, tick, up=loss == long)
        problem = _wrong_side(kind, trigger, entry, long)
        if problem:
            problems.append(problem)
        else:
            wanted.append(Protection(kind, side, trigger))
    return Wanted(tuple(wanted), tuple(problems))


def _round_towards_price(price: Decimal, tick: Decimal, *, up: bool) -> Decimal:
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return (steps * tick).quantize(tick)


def _wrong_side(kind: str, trigger: Decimal, entry: Decimal, long: bool) -> str:
    below = (kind == "stop_loss") == long
    if trigger <= 0 or (below and trigger >= entry) or (not below and trigger <= entry):
        where = "below" if below else "above"
        what = "stop-loss" if kind == "stop_loss" else "take-profit"
        return (f"no {what} placed: its trigger {plain(trigger)} is not {where} the "
                f"{'long' if long else 'short'}'s entry {plain(entry)}")
    return ""


@dataclass(frozen=True)
class Trailing:
    """A trailing stop as a strategy sets it (preference `trailing_stop`) or an alert asks (`trail`)."""

    callback: Decimal  # % from the best price since activation
    activation_pct: Decimal | None = None  # % from the entry in the position's favour; None: active at once

    @classmethod
    def from_value(cls, value: Any) -> "Trailing | None":  # noqa: ANN401 - stored or posted JSON
        """From the preference's JSON ({"callback": 1, "activation_pct": 2}); a ValueError names the problem."""
        if value is None:
            return None
        if not isinstance(value, dict) or set(value) - {"callback", "activation_pct"} or "callback" not in value:
            raise ValueError('give {"callback": 1.0, "activation_pct": 2} (activation_pct may be left out), or null')
        activation = _number(value.get("activation_pct"), "activation_pct")
        if activation is not None and not 0 <= activation <= HUNDRED:
            raise ValueError(f"activation_pct {plain(activation)} is not from 0 to 100 (%)")
        return cls(callback_checked(_number(value["callback"], "callback")), activation or None)

    def as_value(self) -> dict[str, str | None]:
        return {"callback": plain(self.callback),
                "activation_pct": None if self.activation_pct is None else plain(self.activation_pct)}


def callback_checked(callback: Decimal | None) -> Decimal:
    if callback is None or not CALLBACK_MIN <= callback <= CALLBACK_MAX or callback % CALLBACK_STEP:
        shown = "missing" if callback is None else plain(callback)
        raise ValueError(f"callback {shown} is not from 0.1 to 10 (%) in steps of 0.1, Binance's range")
    return callback


def _number(value: Any, name: str) -> Decimal | None:  # noqa: ANN401 - a JSON number or its text
    if value is None:
        return None
    try:
        number = Decimal(str(value)) if not isinstance(value, bool) else None
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise ValueError(f"{name} {str(value)[:40]!r} is not a number")
    return number


def trailing_for(*, amount: Decimal, entry: Decimal, tick: Decimal, trailing: Trailing | None) -> Protection | None:
    """The trailing stop of a position of signed `amount` entered at `entry`: it closes the position's
    quantity; activated `activation_pct` from the entry in the position's favour (rounded towards the
    entry: a hair early), or at once."""
    if trailing is None or amount == 0 or entry <= 0:
        return None
    long = amount > 0
    trigger = Decimal(0)
    if trailing.activation_pct:
        move = trailing.activation_pct / HUNDRED
        trigger = _round_towards_price(entry * (1 + move) if long else entry * (1 - move), tick, up=not long)
    return Protection("trailing", "SELL" if long else "BUY", trigger, quantity=abs(amount), callback=trailing.callback)


LADDER_MAX = 5


@dataclass(frozen=True)
class Level:
    """One take-profit ladder level: a percent from the entry (the strategy's) or a price (the alert's),
    and a share of the position (%)."""

    share: Decimal
    pct: Decimal | None = None
    price: Decimal | None = None


def ladder_from_value(value: Any) -> tuple[Level, ...] | None:  # noqa: ANN401 - stored or posted JSON
    """The strategy's ladder from its JSON ([{"pct": 2, "share": 50}, …]); a ValueError names the problem."""
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= LADDER_MAX:
        raise ValueError(f'give a list of 1 to {LADDER_MAX} levels, e.g. [{{"pct": 2, "share": 50}}, {{"pct": 4, "share": 50}}]')
    levels: list[Level] = []
    for n, item in enumerate(value, 1):
        if not isinstance(item, dict) or set(item) != {"pct", "share"}:
            raise ValueError(f'level {n}: give {{"pct": 2, "share": 50}}')
        pct = _above_zero(item["pct"], f"level {n}'s pct", Decimal(1000))
        share = _above_zero(item["share"], f"level {n}'s share", HUNDRED)
        if levels and pct <= (levels[-1].pct or 0):
            raise ValueError(f"level {n}'s pct {plain(pct)} is not above level {n - 1}'s: list the levels from the nearest")
        levels.append(Level(share=share, pct=pct))
    total = sum((level.share for level in levels), Decimal(0))
    if total != HUNDRED:
        raise ValueError(f"the shares sum to {plain(total)}, not 100")
    return tuple(levels)


def _above_zero(value: Any, name: str, high: Decimal) -> Decimal:  # noqa: ANN401 - a JSON number
    number = _number(value, name)
    if number is None or not 0 < number <= high:
        raise ValueError(f"{name} {'missing' if number is None else plain(number)} is not above 0 and at most "
                         f"{plain(high)} (%)")
    return number


def ladder_as_value(levels: tuple[Level, ...] | None) -> list[dict[str, str]] | None:
    return None if not levels else [{"pct": plain(level.pct or Decimal(0)), "share": plain(level.share)} for level in levels]


def ladder_from_prices(prices: tuple[Decimal, ...]) -> tuple[Level, ...]:
    """An alert's `tp` list: one level per price, equal shares (the rounding's remainder on the last)."""
    return tuple(Level(share=HUNDRED / len(prices), price=price) for price in prices)


def ladder_for(*, amount: Decimal, entry: Decimal, rules: SymbolRules, levels: tuple[Level, ...]) -> Wanted:
    """The take-profits of a ladder for a position of signed `amount` entered at `entry`: reduce-only
    orders of each level's share, rounded down to the step with the remainder on the last level. A
    level below the minimum notional merges into the next (the last into the one before), said in
    `notes`; a level on the wrong side of the entry is a problem, its share going to the next."""
    if amount == 0 or entry <= 0 or not levels:
        return Wanted(())
    long, held = amount > 0, abs(amount)
    side = "SELL" if long else "BUY"
    quantities = [rules.round_quantity(held * level.share / HUNDRED) for level in levels[:-1]]
    quantities.append(held - sum(quantities, Decimal(0)))
    placed: list[Protection] = []
    problems, notes = [], []
    carried = Decimal(0)
    for n, (level, quantity) in enumerate(zip(levels, quantities, strict=True), 1):
        quantity += carried
        carried = Decimal(0)
        price = level.price if level.price is not None else _target(entry, level.pct or Decimal(0), long)
        trigger = _round_towards_price(price, rules.tick_size, up=not long)
        problem = _wrong_side("take_profit", trigger, entry, long)
        if problem:
            problems.append(f"level {n}: {problem}")
            carried = quantity
            continue
        if quantity * trigger < rules.min_notional and (n < len(levels) or placed):
            into = f"level {n + 1}" if n < len(levels) else f"level {placed[-1].level}"
            notes.append(f"take-profit level {n} ({plain(quantity)} at {plain(trigger)}) is below the minimum notional "
                         f"{plain(rules.min_notional)} USDT: merged into {into}")
            if n < len(levels):
                carried = quantity
            else:
                placed[-1] = _more(placed[-1], quantity)
            continue
        placed.append(Protection("take_profit", side, trigger, quantity=quantity, level=n))
    if carried and placed:  # the last level was on the wrong side: its share stays with the one before
        placed[-1] = _more(placed[-1], carried)
    return Wanted(tuple(placed), tuple(problems), tuple(notes))


def _more(level: Protection, quantity: Decimal) -> Protection:
    return replace(level, quantity=(level.quantity or Decimal(0)) + quantity)


def _target(entry: Decimal, pct: Decimal, long: bool) -> Decimal:
    return entry * (1 + pct / HUNDRED) if long else entry * (1 - pct / HUNDRED)


def breakeven_stop(*, amount: Decimal, entry: Decimal, fees: Decimal, tick: Decimal, level: int,
                   to_price: Decimal | None = None) -> Protection:
    """The stop-loss moved to breakeven after ladder level `level` filled: at `to_price` (the previous
    level's) when given, else at the entry plus the fees paid spread over what is still held (a long's
    above the entry). Rounded towards the price, as every stop: a long's up."""
    long = amount > 0
    per_unit = fees / abs(amount)
    price = to_price if to_price is not None else (entry + per_unit if long else entry - per_unit)
    return Protection("stop_loss", "SELL" if long else "BUY", _round_towards_price(price, tick, up=long), level=level)
