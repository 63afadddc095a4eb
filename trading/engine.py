"""Order planning, pure: from a signal, the strategy's preferences, the position and the account to
the order legs to send. No ORM, no HTTP: every input is a value, so every case is a plain test.

Whether a `sell` opens a short, closes a long, or reverses one into the other depends on the
position at the moment of execution, which is why this runs in the worker, not in the webhook.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from trading.exchange.base import SymbolRules

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Intent:
    """What the signal asks for, as parsed at intake."""

    action: str  # buy, sell, close, close_long, close_short
    quantity: Decimal | None = None
    price: Decimal | None = None
    market_position: str = ""  # long, short, flat or "" (TradingView's strategy.market_position)


@dataclass(frozen=True)
class Preference:
    direction: str = "both"  # long, short, both
    sizing: str = "allocation"  # allocation, signal
    allocation_pct: Decimal = Decimal(10)
    leverage: int = 1


@dataclass(frozen=True)
class Book:
    """The position on the exchange: magnitudes of the long and short sides (one-way mode holds one)."""

    long: Decimal = Decimal(0)
    short: Decimal = Decimal(0)
    hedge_mode: bool = False


@dataclass(frozen=True)
class Leg:
    purpose: str  # open, add, close
    side: str  # BUY or SELL
    quantity: Decimal
    reduce_only: bool
    position_side: str  # BOTH in one-way mode, LONG/SHORT in hedge mode


@dataclass(frozen=True)
class Plan:
    """`outcome`: trade (legs to send), nothing (nothing to do), filtered (preferences say no),
    refused (an order would break a rule or lacks an input; nothing sent)."""

    outcome: str
    reason: str
    legs: tuple[Leg, ...] = ()
    sizing: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "reason": self.reason,
            "legs": [{**leg.__dict__, "quantity": plain(leg.quantity)} for leg in self.legs],
            "sizing": self.sizing,
        }


def plan(*, intent: Intent, preference: Preference, book: Book, rules: SymbolRules,
         price: Decimal | None, equity: Decimal | None) -> Plan:
    side = entry_side(intent)
    if side is None:
        return _plan_close(intent.action, book, rules)
    return _plan_entry(side, intent, preference, book, rules, price, equity)


def entry_side(intent: Intent) -> str | None:
    """long or short for an entry; None for a close. A buy/sell reported with market_position
    "flat" is TradingView's exit order: it closes the position rather than opening the other side."""
    if intent.action in ("close", "close_long", "close_short"):
        return None
    if intent.market_position == "flat":
        return None
    return "long" if intent.action == "buy" else "short"


def _plan_close(action: str, book: Book, rules: SymbolRules) -> Plan:
    sides = {"close": ("long", "short"), "close_long": ("long",), "close_short": ("short",)}.get(action)
    if sides is None:  # buy/sell with market_position flat: a buy closes a short, a sell a long
        sides = ("short",) if action == "buy" else ("long",)
    open_sides = [held for held in sides if _held(book, held) > 0]
    if not open_sides:
        what = "position" if len(sides) == 2 else f"{sides[0]} position"
        return Plan("nothing", f"nothing to close: there is no {what} open")
    legs = tuple(_close_leg(held, book) for held in open_sides)
    return Plan("trade", "close " + " and ".join(f"{held} {plain(_held(book, held))}" for held in open_sides), legs)


def _plan_entry(side: str, intent: Intent, preference: Preference, book: Book, rules: SymbolRules,
                price: Decimal | None, equity: Decimal | None) -> Plan:
    opposite = "short" if side == "long" else "long"
    allowed = preference.direction in (side, "both")
    legs: list[Leg] = []
    if _held(book, opposite) > 0:
        legs.append(_close_leg(opposite, book))
    if not allowed:
        if legs:
            return Plan("trade", f"close the {opposite} position: the strategy trades {preference.direction} only", tuple(legs))
        return Plan(
            "filtered",
            f"filtered by direction: the strategy trades {preference.direction} only, and a "
            f"{intent.action} with no {opposite} position open would open a {side}",
        )
    quantity, sizing, problem = _size(intent, preference, rules, price, equity)
    if problem is None:
        problem = rules.violation(quantity, price)
    if problem:
        if legs:
            return Plan("trade", f"close the {opposite} position; the {side} was not opened: {problem}", tuple(legs), sizing)
        return Plan("refused", f"no order sent: {problem}", (), sizing)
    purpose = "add" if _held(book, side) > 0 else "open"
    legs.append(_open_leg(side, quantity, purpose, book))
    reason = f"{'reverse to' if len(legs) == 2 else purpose} {side} {plain(quantity)}"
    return Plan("trade", reason, tuple(legs), sizing)


def _size(intent: Intent, preference: Preference, rules: SymbolRules, price: Decimal | None,
          equity: Decimal | None) -> tuple[Decimal, dict, str | None]:
    """The quantity to open, rounded down to the symbol's step, with what it was computed from."""
    if preference.sizing == "signal":
        if not intent.quantity:
            return Decimal(0), {"mode": "signal"}, "sizing is 'signal quantity' but the alert carried no quantity"
        quantity = rules.round_quantity(intent.quantity)
        return quantity, {"mode": "signal", "requested": format(intent.quantity, "f"), "quantity": format(quantity, "f")}, None
    if not price:
        return Decimal(0), {"mode": "allocation"}, "no price to size the order with (the alert had none and no mark price was known)"
    if equity is None or equity <= 0:
        return Decimal(0), {"mode": "allocation"}, f"account equity is {equity or 0} USDT: nothing to allocate"
    raw = preference.allocation_pct / HUNDRED * equity * preference.leverage / price
    quantity = rules.round_quantity(raw)
    sizing = {
        "mode": "allocation",
        "allocation_pct": format(preference.allocation_pct, "f"),
        "equity": format(equity, "f"),
        "leverage": preference.leverage,
        "price": format(price, "f"),
        "unrounded": format(raw.quantize(Decimal("1e-12")).normalize(), "f"),
        "quantity": format(quantity, "f"),
        "step": format(rules.step_size, "f"),
    }
    return quantity, sizing, None


def _held(book: Book, side: str) -> Decimal:
    return book.long if side == "long" else book.short


def _close_leg(side: str, book: Book) -> Leg:
    return Leg(
        purpose="close",
        side="SELL" if side == "long" else "BUY",
        quantity=_held(book, side),
        reduce_only=not book.hedge_mode,  # hedge mode refuses reduceOnly; positionSide says it all
        position_side=side.upper() if book.hedge_mode else "BOTH",
    )


def _open_leg(side: str, quantity: Decimal, purpose: str, book: Book) -> Leg:
    return Leg(
        purpose=purpose,
        side="BUY" if side == "long" else "SELL",
        quantity=quantity,
        reduce_only=False,
        position_side=side.upper() if book.hedge_mode else "BOTH",
    )


def plain(number: Decimal) -> str:
    """0.2000000000 → "0.2", 100 → "100": for reasons a trader reads."""
    return format(number.normalize(), "f")
