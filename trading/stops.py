"""Where a position's stop-loss and take-profit trigger, pure: from the entry fill price and the
strategy's percents, or from the alert's own `sl` / `tp` prices, which win when present.

Trigger prices are rounded to the symbol's tick in the *safe* direction — towards the current
price, so the protection triggers a hair early rather than late: a long's stop-loss rounds up and
its take-profit down; a short's the other way.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trading.engine import plain

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Protection:
    kind: str  # stop_loss, take_profit
    side: str  # the closing side: SELL for a long
    trigger: Decimal


@dataclass(frozen=True)
class Wanted:
    protections: tuple[Protection, ...]
    problems: tuple[str, ...] = ()  # a configured protection that cannot be placed, in plain words


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
