"""Order planning, pure: from a signal, the strategy's preferences, the position and the account to
the order legs to send. No ORM, no HTTP: every input is a value, so every case is a plain test.

Whether a `sell` opens a short, closes a long, or reverses one into the other depends on the
position at the moment of execution, which is why this runs in the worker, not in the webhook.
In hedge mode (`Book.hedge_mode`, read from the exchange) the long and the short of a symbol are two
positions: a `buy` opens or adds the long and a `sell` the short, each leg names its side
(`positionSide`) and none is reduce-only (docs/EXECUTION.md, "Hedge mode").
"""

from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from trading.exchange.base import SymbolRules

HUNDRED = Decimal(100)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Intent:
    """What the signal asks for, as parsed at intake."""

    action: str  # buy, sell, close, close_long, close_short
    quantity: Decimal | None = None
    quantity_type: str = ""  # what `quantity` means: contracts (also ""), usdt (notional) or percent (of equity)
    price: Decimal | None = None
    market_position: str = ""  # long, short, flat or "" (TradingView's strategy.market_position)
    prev_market_position: str = ""  # the strategy's position before this order, as TradingView saw it
    position_size: Decimal | None = None  # the strategy's position after this order, signed ({{strategy.position_size}})
    stop_loss: Decimal | None = None  # the alert's `sl` price


@dataclass(frozen=True)
class Preference:
    direction: str = "both"  # long, short, both
    sizing: str = "auto"  # auto, allocation, signal, risk (see _size)
    allocation_pct: Decimal = Decimal(10)
    leverage: int = 1
    risk_pct: Decimal | None = None  # risk sizing: percent of equity lost at the stop
    stop_loss_pct: Decimal | None = None  # the strategy's stop-loss, percent from entry (risk sizing's stop without `sl`)
    max_position_usdt: Decimal | None = None  # a position's notional after an order may not pass it
    price_tolerance_pct: Decimal = Decimal(5)  # how far the alert's price may be from the mark price
    opens_refused: str = ""  # a limit that refuses every opening leg (kill switch, daily loss): why
    new_positions_refused: str = ""  # a limit that refuses opening a new position (adds may go on): why
    adds_refused: str = ""  # a limit that refuses adding to the entry side's held position (max_adds): why
    sync_to_alert: bool = False  # on a missed alert, trade to the alert's stated position, not the delta


@dataclass(frozen=True)
class Book:
    """The position on the exchange: magnitudes of the long and short sides (one-way mode holds one)."""

    long: Decimal = Decimal(0)
    short: Decimal = Decimal(0)
    hedge_mode: bool = False


@dataclass(frozen=True)
class LimitEntry:
    """An opening leg sent as a limit order: at `price` (on the tick), post-only or not, resting up to
    `timeout` seconds; then what is left is cancelled or, `on_timeout` "market", sent at market."""

    price: Decimal
    post_only: bool
    timeout: int
    on_timeout: str  # cancel, market

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "price": plain(self.price)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "LimitEntry":
        return cls(price=Decimal(data["price"]), post_only=bool(data["post_only"]), timeout=int(data["timeout"]),
                   on_timeout=data["on_timeout"])


@dataclass(frozen=True)
class Leg:
    purpose: str  # open, add, close
    side: str  # BUY or SELL
    quantity: Decimal
    reduce_only: bool
    position_side: str  # BOTH in one-way mode, LONG/SHORT in hedge mode
    entry: LimitEntry | None = None  # an opening leg's limit order; None: a market order

    @property
    def opens(self) -> bool:
        return self.purpose != "close"

    def as_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "quantity": plain(self.quantity)}
        if self.entry is None:
            del data["entry"]  # a market leg's decision reads as before limit entries were
        else:
            data["entry"] = self.entry.as_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Leg":
        entry = data.get("entry")
        return cls(purpose=data["purpose"], side=data["side"], quantity=Decimal(data["quantity"]),
                   reduce_only=bool(data["reduce_only"]), position_side=data.get("position_side", "BOTH"),
                   entry=LimitEntry.from_dict(entry) if entry else None)


def limit_price(side: str, *, alert_limit: Decimal | None, price: Decimal, offset_pct: Decimal,
                rules: SymbolRules) -> Decimal:
    """A limit entry's price: the alert's `limit_price`, else `price` less (a buy) or plus (a sell) the
    offset, on the tick and never worse for the side than that (a buy's rounded down, a sell's up)."""
    if alert_limit is None:
        shift = price * offset_pct / HUNDRED
        alert_limit = price - shift if side == "BUY" else price + shift
    return rules.round_price(alert_limit, side)


class Outcome(StrEnum):
    TRADE = "trade"  # legs to send
    NOTHING = "nothing"  # nothing to do (e.g. closing when flat)
    FILTERED = "filtered"  # the strategy's preferences say no
    REFUSED = "refused"  # an order would break a rule or lacks an input; nothing sent


@dataclass(frozen=True)
class Plan:
    outcome: Outcome
    reason: str
    legs: tuple[Leg, ...] = ()
    sizing: dict[str, Any] = field(default_factory=dict)  # the inputs of the quantity, for the record
    price: Decimal | None = None  # the price the legs were sized and checked at
    mismatch: str = ""  # the alert's previous position disagreed with ours (see alert_mismatch)

    @property
    def opens(self) -> bool:
        return any(leg.opens for leg in self.legs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": str(self.outcome),
            "reason": self.reason,
            "legs": [leg.as_dict() for leg in self.legs],
            "sizing": self.sizing,
            "price": None if self.price is None else plain(self.price),
            "mismatch": self.mismatch,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Plan":
        return cls(
            outcome=Outcome(data["outcome"]),
            reason=data.get("reason", ""),
            legs=tuple(Leg.from_dict(leg) for leg in data.get("legs", [])),
            sizing=data.get("sizing", {}),
            price=Decimal(data["price"]) if data.get("price") else None,
            mismatch=data.get("mismatch", ""),
        )


@dataclass(frozen=True)
class PriceChoice:
    price: Decimal | None
    note: str = ""  # said in the plan's reason when the alert's price was not used


def choose_price(alert: Decimal | None, mark: Decimal | None, tolerance_pct: Decimal) -> PriceChoice:
    """The price to size at: the alert's, unless it is missing or further than the tolerance from the
    mark price (a mis-scaled `{{close}}`, ×10 or ×1000), in which case the mark price, said so."""
    if alert is None or mark is None or mark <= 0:
        return PriceChoice(alert if alert is not None else mark)
    off_pct = abs(alert - mark) / mark * HUNDRED
    if off_pct <= tolerance_pct:
        return PriceChoice(alert)
    return PriceChoice(mark, f"the alert's price {plain(alert)} is {off_pct:.1f}% from the mark price {plain(mark)} "
                             f"(tolerance {plain(tolerance_pct)}%): sized at the mark price")


def plan(*, intent: Intent, preference: Preference, book: Book, rules: SymbolRules,
         mark: Decimal | None, equity: Decimal | None) -> Plan:
    """`mark` is the exchange's mark price, when known: entries are checked and sized against it."""
    side = entry_side(intent)
    if partial_exit(intent):
        decided = _plan_reduce(intent, preference, book, rules)
    elif side is not None and _syncs_to_size(intent, preference, book):
        decided = _plan_to_target(side, intent, preference, book, rules, mark)
    elif side is None:
        decided = _plan_close(intent.action, book, rules)
    else:
        decided = _plan_entry(side, intent, preference, book, rules, mark, equity)
    mismatch = alert_mismatch(intent, book)
    return replace(decided, mismatch=mismatch) if mismatch else decided


def alert_mismatch(intent: Intent, book: Book) -> str:
    """When the alert says where the strategy stood before this order (TradingView's
    `prev_market_position`) and our position disagrees, a previous alert was probably never
    delivered: say so in plain words; "" when they agree or the alert does not say."""
    said = intent.prev_market_position
    if said not in ("long", "short", "flat"):
        return ""
    ours = "long" if book.long > 0 and not book.short else "short" if book.short > 0 and not book.long else "flat"
    if book.long > 0 and book.short > 0:
        ours = "long and short"
    if said == ours or (said != "flat" and _held(book, said) > 0):
        return ""
    size = {"long": plain(book.long), "short": plain(book.short)}.get(ours, "")
    return (f"the alert says the strategy was {said} before this order, but our position is {ours}"
            f"{' ' + size if size else ''}: an earlier alert may have been missed")


def entry_side(intent: Intent) -> str | None:
    """long or short for an entry; None for a close. A buy/sell reported with market_position
    "flat" is TradingView's exit order: it closes the position rather than opening the other side."""
    if intent.action in ("close", "close_long", "close_short"):
        return None
    if intent.market_position == "flat" or partial_exit(intent):
        return None
    return "long" if intent.action == "buy" else "short"


def partial_exit(intent: Intent) -> bool:
    """A sell after which the strategy is still long (or a buy after which it is still short) is
    TradingView's partial exit: it reduces the position, it never opens the other side."""
    return (intent.action, intent.market_position) in (("sell", "long"), ("buy", "short"))


def _plan_reduce(intent: Intent, preference: Preference, book: Book, rules: SymbolRules) -> Plan:
    """Our part of a partial exit. With the alert's position after it ({{strategy.position_size}}) the
    same share of our position as of the strategy's, whatever our sizing; else the alert's quantity
    when the strategy trades the alert's quantities; else nothing can say how much, and nothing is sent."""
    held_side = "long" if intent.action == "sell" else "short"
    held = _held(book, held_side)
    if held <= 0:
        return Plan(Outcome.NOTHING, f"nothing to reduce: the alert reduces the strategy's {held_side}, and there is "
                                     f"no {held_side} position open")
    if intent.quantity and intent.position_size is not None:
        before = abs(intent.position_size) + intent.quantity
        share = intent.quantity / before
        quantity = rules.round_quantity(held * share)
        how = (f"{plain(intent.quantity)} of the strategy's {plain(before)} ({plain((share * HUNDRED).quantize(CENT))} %) "
               f"of our {held_side} {plain(held)}")
    elif intent.quantity and uses_alert_quantity(intent, preference) and intent.quantity_type in ("", "contracts"):
        quantity, how = rules.round_quantity(min(intent.quantity, held)), "the alert's quantity"
    else:
        return Plan(Outcome.REFUSED, f"no order sent: a partial exit of the strategy's {held_side} (a {intent.action} "
                                     f"that leaves it {intent.market_position}), and nothing says how much of our "
                                     f"{held_side} {plain(held)} it is: add \"position_size\": {{{{strategy.position_size}}}} "
                                     f"to the alert")
    if quantity <= 0:
        return Plan(Outcome.NOTHING, f"nothing to reduce: {how} is less than one step ({plain(rules.step_size)})")
    quantity = min(quantity, held)
    part = Book(long=quantity, hedge_mode=book.hedge_mode) if held_side == "long" else Book(
        short=quantity, hedge_mode=book.hedge_mode)
    verb = "close" if quantity == held else "reduce"
    return Plan(Outcome.TRADE, f"{verb} {held_side} {plain(held)} by {plain(quantity)}: partial exit, {how}",
                tuple(_close_legs(held_side, part, rules)))


def _plan_close(action: str, book: Book, rules: SymbolRules) -> Plan:
    sides = {"close": ("long", "short"), "close_long": ("long",), "close_short": ("short",)}.get(action)
    if sides is None:  # buy/sell with market_position flat: a buy closes a short, a sell a long
        sides = ("short",) if action == "buy" else ("long",)
    open_sides = [held for held in sides if _held(book, held) > 0]
    if not open_sides:
        what = "position" if len(sides) == 2 else f"{sides[0]} position"
        return Plan(Outcome.NOTHING, f"nothing to close: there is no {what} open")
    legs = tuple(leg for held in open_sides for leg in _close_legs(held, book, rules))
    return Plan(Outcome.TRADE, "close " + " and ".join(f"{held} {plain(_held(book, held))}" for held in open_sides), legs)


def _plan_entry(side: str, intent: Intent, preference: Preference, book: Book, rules: SymbolRules,
                mark: Decimal | None, equity: Decimal | None) -> Plan:
    opposite = "short" if side == "long" else "long"
    allowed = preference.direction in (side, "both")
    closing = _closes_opposite(intent, book, opposite, allowed=allowed)
    legs: list[Leg] = list(_close_legs(opposite, book, rules)) if closing else []
    if not allowed:
        if legs:
            return Plan(Outcome.TRADE, f"close the {opposite} position: the strategy trades {preference.direction} only",
                        tuple(legs))
        return Plan(
            Outcome.FILTERED,
            f"filtered by direction: the strategy trades {preference.direction} only, and a "
            f"{intent.action} with no {opposite} position open would open a {side}",
        )
    purpose = "add" if _held(book, side) > 0 else "open"
    if purpose == "add" and preference.sync_to_alert and intent.prev_market_position == "flat":
        held = plain(_held(book, side))
        return Plan(Outcome.NOTHING, f"already {side} {held}: the alert's position ({side}) is reached — it says the "
                                     f"strategy was flat before, so an exit alert was missed; not adding (sync to alert)")
    limit = preference.opens_refused or _purpose_refused(preference, purpose)
    if limit:
        if legs:
            return Plan(Outcome.TRADE, f"close the {opposite} position; the {side} was not opened: {limit}", tuple(legs))
        return Plan(Outcome.REFUSED, f"no order sent: {limit}")
    choice = choose_price(intent.price, mark, preference.price_tolerance_pct)
    price = choice.price
    quantity, sizing, problem = _size(intent, preference, rules, price, equity)
    if problem is None:
        problem = rules.violation(quantity, price) or _cap_breach(preference, _held(book, side) + quantity, price)
    notes = [note for note in (choice.note, _ignored_quantity(intent, preference)) if note]
    note = "".join(f"; {note}" for note in notes)
    if problem:
        if legs:
            return Plan(Outcome.TRADE, f"close the {opposite} position; the {side} was not opened: {problem}{note}",
                        tuple(legs), sizing, price)
        return Plan(Outcome.REFUSED, f"no order sent: {problem}{note}", (), sizing, price)
    legs.append(_open_leg(side, quantity, purpose, book))
    if not closing and _held(book, opposite) > 0:  # hedge mode: the other side is left as it is
        note += f"; the {opposite} {plain(_held(book, opposite))} stays open (hedge mode)"
    reason = f"{'reverse to' if len(legs) > 1 else purpose} {side} {plain(quantity)}{note}"
    return Plan(Outcome.TRADE, reason, tuple(legs), sizing, price)


def _purpose_refused(preference: Preference, purpose: str) -> str:
    return preference.new_positions_refused if purpose == "open" else preference.adds_refused


def _closes_opposite(intent: Intent, book: Book, opposite: str, *, allowed: bool) -> bool:
    """Whether an entry closes the other side first. In one-way mode it must (one position per
    symbol). In hedge mode the sides are independent: only when the strategy cannot trade this
    side (its buy or sell is an exit), or the alert says the strategy held the other side before
    this order (TradingView's strategy holds one position: a reversal there ended that side)."""
    if _held(book, opposite) <= 0:
        return False
    return not book.hedge_mode or not allowed or intent.prev_market_position == opposite


def _syncs_to_size(intent: Intent, preference: Preference, book: Book) -> bool:
    """With sync_to_alert and the alert's own quantities (signal sizing), an entry that states the
    position it leads to is traded to that position, whatever ours is (one-way mode)."""
    return (preference.sync_to_alert and uses_alert_quantity(intent, preference) and intent.position_size is not None
            and intent.quantity_type in ("", "contracts") and not book.hedge_mode)


def _plan_to_target(side: str, intent: Intent, preference: Preference, book: Book, rules: SymbolRules,
                    mark: Decimal | None) -> Plan:
    """The legs from our position to the alert's stated one: close the other side, then open, add or
    reduce by the difference. Opening is subject to the direction and the limits, as any entry."""
    assert intent.position_size is not None
    target = rules.round_quantity(abs(intent.position_size))
    if target == 0 or (intent.position_size > 0) != (side == "long"):
        return _plan_entry(side, intent, preference, book, rules, mark, None)  # an alert that contradicts itself
    opposite = "short" if side == "long" else "long"
    held = _held(book, side)
    legs: list[Leg] = list(_close_legs(opposite, book, rules)) if _held(book, opposite) > 0 else []
    stated = f"the alert's position is {side} {plain(target)}"
    if held == target and not legs:
        return Plan(Outcome.NOTHING, f"already {side} {plain(held)}: {stated} (sync to alert)")
    if held > target:
        reduce = _close_legs(side, Book(long=held - target) if side == "long" else Book(short=held - target), rules)
        return Plan(Outcome.TRADE, f"reduce {side} {plain(held)} by {plain(held - target)}: {stated} (sync to alert)",
                    tuple(reduce))
    purpose = "add" if held > 0 else "open"
    refusal = "" if preference.direction in (side, "both") else f"the strategy trades {preference.direction} only"
    refusal = refusal or preference.opens_refused or _purpose_refused(preference, purpose)
    price = choose_price(intent.price, mark, preference.price_tolerance_pct).price
    quantity = target - held
    refusal = refusal or rules.violation(quantity, price) or _cap_breach(preference, target, price) or ""
    if refusal:
        if legs:
            return Plan(Outcome.TRADE, f"close the {opposite} position; the {side} was not opened: {refusal}", tuple(legs))
        return Plan(Outcome.REFUSED, f"no order sent: {refusal}")
    legs.append(_open_leg(side, quantity, purpose, book))
    sizing = {"mode": "sync to alert", "target": plain(target), "held": plain(held), "quantity": plain(quantity)}
    verb = "reverse to" if len(legs) > 1 else purpose
    return Plan(Outcome.TRADE, f"{verb} {side} {plain(quantity)}: {stated} (sync to alert)", tuple(legs), sizing, price)


def uses_alert_quantity(intent: Intent, preference: Preference) -> bool:
    """Whether the order's size is the alert's own quantity: `signal` sizing, or `auto` with a quantity."""
    return preference.sizing == "signal" or (preference.sizing == "auto" and intent.quantity is not None)


def needs_equity(intent: Intent, preference: Preference) -> bool:
    """Whether sizing this entry reads the account's equity (so the caller fetches it only then)."""
    if uses_alert_quantity(intent, preference):
        return intent.quantity_type == "percent"
    return preference.sizing in ("auto", "allocation", "risk")


def _size(intent: Intent, preference: Preference, rules: SymbolRules, price: Decimal | None,
          equity: Decimal | None) -> tuple[Decimal, dict[str, Any], str | None]:
    """The quantity to open, rounded down to the symbol's step, with what it was computed from."""
    if uses_alert_quantity(intent, preference):
        return _size_from_alert(intent, preference, rules, price, equity)
    mode = "risk" if preference.sizing == "risk" else "allocation"
    if not price:
        return Decimal(0), {"mode": mode}, "no price to size the order with (the alert had none and no mark price was known)"
    problem = _equity_problem(equity)
    if problem or equity is None:
        return Decimal(0), {"mode": mode}, problem
    if mode == "risk":
        return _size_by_risk(intent, preference, rules, price, equity)
    raw = preference.allocation_pct / HUNDRED * equity * preference.leverage / price
    quantity = rules.round_quantity(raw)
    sizing = {
        "mode": "allocation",
        "allocation_pct": plain(preference.allocation_pct),
        "equity": plain(equity),
        "leverage": preference.leverage,
        "price": plain(price),
        "unrounded": _unrounded(raw),
        "quantity": plain(quantity),
        "step": plain(rules.step_size),
    }
    return quantity, sizing, None


def _size_from_alert(intent: Intent, preference: Preference, rules: SymbolRules, price: Decimal | None,
                     equity: Decimal | None) -> tuple[Decimal, dict[str, Any], str | None]:
    """The alert's quantity, read as its `quantity_type` says: contracts, USDT of notional, or a percent
    of equity put up as margin (× leverage)."""
    mode = "signal" if preference.sizing == "signal" else "auto: the alert's quantity"
    if not intent.quantity:
        return Decimal(0), {"mode": mode}, "sizing is 'signal quantity' but the alert carried no quantity"
    kind = intent.quantity_type or "contracts"
    sizing: dict[str, Any] = {"mode": mode, "requested": plain(intent.quantity), "quantity_type": kind}
    if kind == "contracts":
        raw = intent.quantity
    elif not price:
        return Decimal(0), sizing, f"no price to turn the alert's {kind} quantity into contracts"
    elif kind == "usdt":
        raw = intent.quantity / price
        sizing["price"] = plain(price)
    else:
        problem = _equity_problem(equity)
        if problem or equity is None:
            return Decimal(0), sizing, problem
        raw = intent.quantity / HUNDRED * equity * preference.leverage / price
        sizing.update(equity=plain(equity), leverage=preference.leverage, price=plain(price))
    quantity = rules.round_quantity(raw)
    if raw != intent.quantity:
        sizing["unrounded"] = _unrounded(raw)
    sizing.update(quantity=plain(quantity), step=plain(rules.step_size))
    return quantity, sizing, None


def _size_by_risk(intent: Intent, preference: Preference, rules: SymbolRules, price: Decimal,
                  equity: Decimal) -> tuple[Decimal, dict[str, Any], str | None]:
    """risk % of equity is what the stop loses: quantity = equity × risk % ÷ |entry − stop|."""
    sizing: dict[str, Any] = {"mode": "risk"}
    if not preference.risk_pct:
        return Decimal(0), sizing, "risk sizing needs a risk %: set the strategy's risk_pct"
    stop, problem = risk_stop(intent, preference, price)
    if problem or stop is None:
        return Decimal(0), sizing, problem
    distance = abs(price - stop)
    at_risk = equity * preference.risk_pct / HUNDRED
    raw = at_risk / distance
    quantity = rules.round_quantity(raw)
    sizing.update(risk_pct=plain(preference.risk_pct), equity=plain(equity), at_risk=plain(at_risk.quantize(CENT)),
                  price=plain(price), stop=plain(stop), unrounded=_unrounded(raw), quantity=plain(quantity),
                  step=plain(rules.step_size))
    return quantity, sizing, None


def risk_stop(intent: Intent, preference: Preference, price: Decimal) -> tuple[Decimal | None, str]:
    """The stop risk sizing measures from: the alert's `sl`, else the strategy's stop-loss % from the
    entry; (None, why) when there is none or it is on the wrong side of the entry."""
    long = entry_side(intent) == "long"
    if intent.stop_loss is not None:
        stop = intent.stop_loss
        if (long and stop >= price) or (not long and stop <= price):
            where = "at or above" if long else "at or below"
            return None, (f"the alert's sl {plain(stop)} is {where} the entry price {plain(price)} "
                          f"of this {'long' if long else 'short'}: no risk to size by")
        return stop, ""
    if preference.stop_loss_pct:
        offset = price * preference.stop_loss_pct / HUNDRED
        return (price - offset if long else price + offset), ""
    return None, "risk sizing needs a stop: the alert carried no sl and the strategy has no stop-loss %"


def _cap_breach(preference: Preference, position: Decimal, price: Decimal | None) -> str | None:
    """max_position_usdt: the position after the order, at the order's price, may be at most the cap."""
    cap = preference.max_position_usdt
    if cap is None or price is None:
        return None
    notional = position * price
    if notional <= cap:
        return None
    return (f"the position would be {plain(notional.quantize(CENT))} USDT after this order, over the strategy's "
            f"max position of {plain(cap)} USDT (refused, not shrunk)")


def _ignored_quantity(intent: Intent, preference: Preference) -> str:
    """Said in the decision when an alert's quantity is not what sized the order."""
    if intent.quantity is None or uses_alert_quantity(intent, preference):
        return ""
    return f"alert quantity {plain(intent.quantity)} not used: this strategy sizes by {preference.sizing}"


def _equity_problem(equity: Decimal | None) -> str | None:
    if equity is None:
        return "the account's equity is not known: nothing to size the order from"
    if equity <= 0:
        return f"account equity is {plain(equity)} USDT: nothing to allocate"
    return None


def _unrounded(raw: Decimal) -> str:
    return plain(raw.quantize(Decimal("1e-12")))


def _held(book: Book, side: str) -> Decimal:
    return book.long if side == "long" else book.short


def _close_legs(side: str, book: Book, rules: SymbolRules) -> list[Leg]:
    """Reduce-only legs for the whole side, each within the market-order maximum (a position larger
    than that — built by adds — cannot be closed by one market order)."""
    remaining, legs = _held(book, side), []
    while remaining > 0:
        quantity = min(remaining, rules.max_qty)
        remaining -= quantity
        legs.append(Leg(
            purpose="close",
            side="SELL" if side == "long" else "BUY",
            quantity=quantity,
            reduce_only=not book.hedge_mode,  # hedge mode refuses reduceOnly; positionSide says it all
            position_side=side.upper() if book.hedge_mode else "BOTH",
        ))
    return legs


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
