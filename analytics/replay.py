"""Replay, pure: a strategy's recorded alerts run again through the order engine (trading/engine.py)
and the protection maths (trading/stops.py) against a paper book, under settings that may differ from
the recorded ones, with the exchange's 1-minute klines deciding where stops, ladders and trailing stops
trigger. No ORM, no HTTP: alerts, bars, rules and funding are values; the caller loads them.

How the simulation goes (issue #21):

- **Time.** Alerts and funding charges are taken in time order (alerts of one instant in their given
  order; a funding charge before an alert of the same instant: it is due on the position held then).
  Before each event, every symbol with an open position has its bars with `open_time` *before* the
  event's time played against its protective levels; a bar opening at or after an alert is played
  after it (an alert at 12:00:30 has its first bar at 12:01). A symbol that is flat, or whose position
  rests under no protective order, is not looked at: its bars are found again by bisection when an
  alert next changes it, so the cost is the bars spent in a protected position, not all the bars.
- **Alerts.** `engine.plan` with the simulated `Book`, the alert's price as the mark (without one,
  the close of the last bar that *ended* by the alert's time: no look-ahead) and the simulated equity
  (balance + unrealized P&L of every open position at its latest known close) for sizing. Each leg
  fills whole, at that price moved by the slippage against the trader (buys higher, sells lower).
  The preference's `stop_loss_pct` (risk sizing's stop) is the settings' stop-loss % when it is
  unset, as trading/deciding.py does.
- **Fees** = fill notional (price after slippage × quantity) × `taker_fee`, on every fill; realized
  P&L by `trading.pnl.position_after`, the function the live system folds fills with.
- **Protection** is (re)computed after every alert fill that changes a position side, from its entry
  and amount, exactly as trading/protection.py asks `stops`: `protections_for` (stop-loss and a single
  take-profit: the alert's `sl` / `tp` prices win over the percents), `ladder_for` (the alert's list of
  2+ `tp` prices wins, equal shares; else the settings' ladder, which replaces the single take-profit %;
  shares rounded down to the step, the remainder on the last level, a level under the minimum notional
  merged), `trailing_for` (the alert's `trail` callback wins, with the settings' activation). Every
  level is placed again after an add (the live system re-places a ladder whose position grew) and the
  stop returns to its percent; all is cancelled when the side is flat.
- **Triggers**, per bar, a long (a short mirrored): its stop when `low <= stop`; its trailing stop,
  once active, when `low <=` the best price since activation × (1 − callback) (on the tick, rounded
  up: a hair early, as stops.py rounds); a take-profit level when `high >= level`. **When a stop and a
  take-profit are both inside one bar, the stop is assumed to have filled first** (conservative: the
  minute's order of high and low is unknown) and closes the whole position; of a stop and a trailing
  stop both hit, the one nearer the price (a long's higher) fills, the stop on a tie. Take-profit
  levels inside one bar fill from the nearest. A fill is at the trigger price, or at the bar's open
  when the bar opened beyond it (a gap); triggered orders are market orders on Binance
  (STOP_MARKET, TAKE_PROFIT_MARKET, TRAILING_STOP_MARKET), so every one is moved by the slippage
  against the trader, take-profits included. Klines are the last price, where Binance may trigger on
  the mark price: close enough for a replay.
- **Breakeven**: after ladder level k >= `breakeven_after` fills, the stop moves to
  `stops.breakeven_stop`: the entry plus the fees paid on the side since it opened spread over what is
  held ("entry"), or level k − 1's trigger ("previous_tp"; the entry-plus-fees for level 1). A stop
  moved inside a bar is first checked on the next bar. Its fills read "breakeven stop".
- **Trailing**: active at once (the best price starts at the alert's price) or when the bar reaches the
  activation price (the best starts at that bar's extreme). Within a bar the trigger is first checked
  against the best before the bar; then the best moves to the bar's extreme, and when the bar's close
  is beyond the trigger from that new best, the price crossed it after the extreme: it fills there.
  It closes what is left of the side.
- **Funding**: a `FundingCharge` (the ledger's rate for a symbol at a time) costs every open side
  amount × price × rate (a long pays a positive rate, a short receives it), at the charge's mark price
  or, without one, the open of the bar at that minute (else the last close before).

Results: one `Trade` per fill, with its reason ("alert buy", "alert sell", "stop-loss",
"breakeven stop", "take-profit", "take-profit 2", "trailing"). Statistics count the *closing* fills
(those that reduce a position): each one's net is its realized P&L less its own fee and less its share
(by quantity) of the fees paid opening what it closes; a win has net > 0, a loss net < 0. Win rate =
wins ÷ (wins + losses) × 100; profit factor = Σ net of wins ÷ |Σ net of losses|, None without a loss.
Net P&L = realized − fees + funding. The equity curve is the balance (starting equity + realized −
fees + funding) after each fill and funding charge, starting with the starting equity; max drawdown is
the largest fall from a running peak, in USDT and, separately, the largest as % of its peak. Positions
still open at the end are listed with their unrealized P&L at their last close, outside net P&L.
"""

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trading.engine import Book, Intent, Outcome, Preference, plan
from trading.exchange.base import SymbolRules
from trading.pnl import position_after
from trading.stops import (
    Level,
    Protection,
    Trailing,
    breakeven_stop,
    ladder_for,
    ladder_from_prices,
    protections_for,
    trailing_for,
)

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
BPS = Decimal(10000)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Alert:
    """A recorded signal: its time (UTC), symbol and parsed intent, with the alert's own protection
    prices, if any (`stop_loss` falls back to the intent's)."""

    time: datetime
    symbol: str
    intent: Intent
    stop_loss: Decimal | None = None
    take_profits: tuple[Decimal, ...] = ()  # one: a single take-profit; two or more: a ladder of equal shares
    trail: Decimal | None = None  # the alert's trailing callback %


@dataclass(frozen=True)
class Bar:
    """One 1-minute kline."""

    symbol: str
    open_time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


@dataclass(frozen=True)
class FundingCharge:
    """A funding rate applied to a symbol's positions at `time` (the ledger's, or the exchange's history)."""

    symbol: str
    time: datetime
    rate: Decimal  # e.g. 0.0001: a long pays 0.01 % of its notional
    mark_price: Decimal | None = None  # None: the bar's open at that minute


@dataclass(frozen=True)
class Settings:
    preference: Preference = Preference()
    stop_loss_pct: Decimal | None = None
    take_profit_pct: Decimal | None = None
    ladder: tuple[Level, ...] | None = None  # stops.Level with pct and share; replaces take_profit_pct
    breakeven_after: int | None = None  # a ladder level; None: the stop stays
    breakeven_to: str = "entry"  # entry (plus fees), previous_tp
    trailing: Trailing | None = None
    slippage_bps: Decimal = ZERO
    taker_fee: Decimal = Decimal("0.0005")
    starting_equity: Decimal = Decimal(10000)
    hedge_mode: bool = False


@dataclass(frozen=True)
class Trade:
    """One fill."""

    time: datetime
    symbol: str
    position_side: str  # BOTH in one-way mode, LONG/SHORT in hedge mode
    side: str  # BUY, SELL
    quantity: Decimal
    price: Decimal  # after slippage
    fee: Decimal
    realized_pnl: Decimal  # gross, as position_after computes it
    net_pnl: Decimal  # a closing fill: realized − its fee − its share of the opening fees; an opening fill: 0
    reason: str  # alert buy, alert sell, stop-loss, breakeven stop, take-profit, take-profit 2, trailing
    closes: bool  # it reduced a position
    amount_after: Decimal  # the side's signed amount after it


@dataclass(frozen=True)
class EquityPoint:
    time: datetime
    equity: Decimal


@dataclass(frozen=True)
class Decision:
    """What the engine said about one alert."""

    time: datetime
    symbol: str
    action: str
    outcome: str  # trade, nothing, filtered, refused
    reason: str


@dataclass(frozen=True)
class OpenPosition:
    symbol: str
    position_side: str
    amount: Decimal
    entry_price: Decimal
    last_price: Decimal | None
    unrealized_pnl: Decimal


@dataclass(frozen=True)
class Stats:
    net_pnl: Decimal  # realized − fees + funding
    realized_pnl: Decimal
    fees: Decimal
    funding: Decimal  # signed: positive received
    trades: int  # closing fills
    wins: int
    losses: int
    win_rate: Decimal | None  # percent of wins + losses
    gross_profit: Decimal  # Σ net of wins
    gross_loss: Decimal  # Σ net of losses, ≤ 0
    profit_factor: Decimal | None  # None without a loss
    max_drawdown: Decimal  # USDT, ≥ 0
    max_drawdown_pct: Decimal  # % of the peak it fell from


@dataclass(frozen=True)
class Result:
    trades: tuple[Trade, ...]
    equity_curve: tuple[EquityPoint, ...]
    stats: Stats
    decisions: tuple[Decision, ...]
    open_positions: tuple[OpenPosition, ...]
    final_balance: Decimal


@dataclass(frozen=True)
class TakeProfit:
    level: int  # 0: a single take-profit (closes the whole side)
    trigger: Decimal
    quantity: Decimal | None  # None: the whole side


@dataclass(frozen=True)
class Guard:
    """The protective orders resting on one position side."""

    stop: Decimal | None = None
    stop_reason: str = "stop-loss"
    take_profits: tuple[TakeProfit, ...] = ()  # the nearest first
    ladder_triggers: tuple[tuple[int, Decimal], ...] = ()  # every placed level's trigger, for previous_tp
    trail_callback: Decimal | None = None
    trail_activation: Decimal = ZERO  # 0: active at once
    trail_best: Decimal | None = None  # None: not active yet

    @property
    def empty(self) -> bool:
        return self.stop is None and not self.take_profits and self.trail_callback is None


@dataclass(frozen=True)
class Context:
    """What the side's protection is computed from: the last alert that traded it."""

    sl_price: Decimal | None = None
    tp_price: Decimal | None = None
    ladder: tuple[Level, ...] | None = None
    trailing: Trailing | None = None


@dataclass(frozen=True)
class Side:
    amount: Decimal = ZERO  # signed
    entry: Decimal = ZERO
    fees_since_open: Decimal = ZERO  # every fee on the side since it opened (breakeven's)
    open_fees: Decimal = ZERO  # opening fees not yet charged to a closing fill
    guard: Guard = Guard()
    context: Context = Context()


@dataclass
class _Run:
    """The simulation's running state (private, mutable: one run)."""

    settings: Settings
    rules: Mapping[str, SymbolRules]
    bars: Mapping[str, Sequence[Bar]]
    times: dict[str, list[datetime]]
    sides: dict[tuple[str, str], Side] = field(default_factory=dict)
    cursor: dict[str, int] = field(default_factory=dict)
    balance: Decimal = ZERO
    trades: list[Trade] = field(default_factory=list)
    curve: list[EquityPoint] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    funding: Decimal = ZERO


def simulate(alerts: Sequence[Alert], bars: Mapping[str, Sequence[Bar]], settings: Settings,
             rules: Mapping[str, SymbolRules], funding: Sequence[FundingCharge] = ()) -> Result:
    """Replay `alerts` against `bars` (per symbol, in time order) under `settings`; see the module's
    docstring for every rule. When a stop and a take-profit trigger inside the same bar, the stop is
    taken to have filled first."""
    missing = sorted({alert.symbol for alert in alerts} - set(rules))
    if missing:
        raise ValueError(f"no symbol rules for {', '.join(missing)}")
    if settings.breakeven_to not in ("entry", "previous_tp"):
        raise ValueError(f"breakeven_to {settings.breakeven_to!r} is not entry or previous_tp")
    run = _Run(settings=settings, rules=rules, bars=bars,
               times={symbol: [bar.open_time for bar in series] for symbol, series in bars.items()},
               balance=settings.starting_equity)
    start = min([a.time for a in alerts] + [f.time for f in funding], default=None)
    if start is not None:
        run.curve.append(EquityPoint(start, settings.starting_equity))
    events: list[tuple[datetime, int, int]] = [(charge.time, 0, n) for n, charge in enumerate(funding)]
    events += [(alert.time, 1, n) for n, alert in enumerate(alerts)]
    for time, kind, n in sorted(events):
        _advance_all(run, time)
        if kind == 0:
            _fund(run, funding[n])
        else:
            _alert(run, alerts[n])
    _advance_all(run, None)
    return _result(run)


# --- alerts -----------------------------------------------------------------------------------------


def _alert(run: _Run, alert: Alert) -> None:
    settings = run.settings
    rules = run.rules[alert.symbol]
    price = alert.intent.price if alert.intent.price is not None else _last_close(run, alert.symbol, alert.time)
    intent = alert.intent
    stop_loss = alert.stop_loss if alert.stop_loss is not None else intent.stop_loss
    if stop_loss is not None and intent.stop_loss is None:
        intent = replace(intent, stop_loss=stop_loss)
    preference = settings.preference
    if preference.stop_loss_pct is None and settings.stop_loss_pct:
        preference = replace(preference, stop_loss_pct=settings.stop_loss_pct)
    decided = plan(intent=intent, preference=preference, book=_book(run, alert.symbol), rules=rules, mark=price,
                   equity=_equity(run, alert.symbol, alert.time, price))
    run.decisions.append(Decision(alert.time, alert.symbol, intent.action, str(decided.outcome), decided.reason))
    if decided.outcome == Outcome.TRADE and price is None:  # a close, with no price known to fill it at
        run.decisions[-1] = replace(run.decisions[-1], outcome=str(Outcome.REFUSED),
                                    reason=f"{decided.reason}: no price to fill at (no alert price, no bar before)")
    if decided.outcome != Outcome.TRADE or price is None:
        return
    context = _context(alert, stop_loss)
    changed: list[str] = []
    for leg in decided.legs:
        fill_price = _slipped(price, leg.side, settings.slippage_bps)
        _fill(run, alert.symbol, leg.position_side, leg.side, leg.quantity, fill_price, alert.time,
              f"alert {leg.side.lower()}")
        if leg.position_side not in changed:
            changed.append(leg.position_side)
    for position_side in changed:
        key = (alert.symbol, position_side)
        side = run.sides[key]
        if side.amount == 0:
            run.sides[key] = replace(side, guard=Guard(), context=Context())
        else:
            run.sides[key] = replace(side, context=context, guard=_guard(run, alert.symbol, side, context, price))
            # The bars from the alert's minute on (bisection: a symbol that was flat was not followed).
            run.cursor[alert.symbol] = bisect_left(run.times.get(alert.symbol, []), alert.time)


def _context(alert: Alert, stop_loss: Decimal | None) -> Context:
    ladder = None
    tp_price = None
    if len(alert.take_profits) >= 2:
        ladder = ladder_from_prices(alert.take_profits)
    elif len(alert.take_profits) == 1:
        tp_price = alert.take_profits[0]
    return Context(sl_price=stop_loss, tp_price=tp_price, ladder=ladder,
                   trailing=Trailing(alert.trail) if alert.trail is not None else None)


def _guard(run: _Run, symbol: str, side: Side, context: Context, price: Decimal) -> Guard:
    """The protection a side rests under after an alert changed it, as trading/protection.py places it."""
    settings, rules = run.settings, run.rules[symbol]
    ladder = context.ladder if context.ladder is not None else (None if context.tp_price is not None else settings.ladder)
    wanted = protections_for(amount=side.amount, entry=side.entry, tick=rules.tick_size,
                             stop_loss_pct=settings.stop_loss_pct,
                             take_profit_pct=settings.take_profit_pct if not ladder else None,
                             sl_price=context.sl_price, tp_price=context.tp_price)
    protections: list[Protection] = list(wanted.protections)
    if ladder:
        protections += ladder_for(amount=side.amount, entry=side.entry, rules=rules, levels=ladder).protections
    trailing = settings.trailing
    if context.trailing is not None:
        trailing = Trailing(context.trailing.callback, trailing.activation_pct if trailing is not None else None)
    trail = trailing_for(amount=side.amount, entry=side.entry, tick=rules.tick_size, trailing=trailing)
    stop = next((p.trigger for p in protections if p.kind == "stop_loss"), None)
    long = side.amount > 0
    take_profits = sorted((TakeProfit(p.level, p.trigger, p.quantity) for p in protections if p.kind == "take_profit"),
                          key=lambda tp: tp.trigger, reverse=not long)
    guard = Guard(stop=stop, take_profits=tuple(take_profits),
                  ladder_triggers=tuple((tp.level, tp.trigger) for tp in take_profits if tp.level))
    if trail is not None:
        assert trail.callback is not None
        active = trail.trigger == 0
        guard = replace(guard, trail_callback=trail.callback, trail_activation=trail.trigger,
                        trail_best=price if active else None)  # Binance tracks from the price at placement
    return guard


# --- fills ------------------------------------------------------------------------------------------


def _slipped(price: Decimal, side: str, slippage_bps: Decimal) -> Decimal:
    """The fill price: against the trader by the slippage (a buy pays more, a sell gets less)."""
    if not slippage_bps:
        return price
    move = slippage_bps / BPS
    return price * (ONE + move) if side == "BUY" else price * (ONE - move)


def _fill(run: _Run, symbol: str, position_side: str, side: str, quantity: Decimal, price: Decimal, time: datetime,
          reason: str) -> Side:
    key = (symbol, position_side)
    before = run.sides.get(key, Side())
    signed = quantity if side == "BUY" else -quantity
    amount, entry, realized = position_after(before.amount, before.entry, signed, price)
    fee = price * quantity * run.settings.taker_fee
    closes = before.amount != 0 and (before.amount > 0) != (signed > 0)
    net = ZERO
    open_fees, fees_since_open = before.open_fees, before.fees_since_open
    if closes:
        closed = min(abs(before.amount), quantity)
        share = open_fees * closed / abs(before.amount)
        open_fees -= share
        net = realized - fee * closed / quantity - share
        fees_since_open += fee
        if amount == 0:
            open_fees, fees_since_open = ZERO, ZERO
        elif (amount > 0) != (before.amount > 0):  # through zero: the rest of the fill opened the other way
            opening_fee = fee * (quantity - closed) / quantity
            open_fees, fees_since_open = opening_fee, opening_fee
    else:
        open_fees += fee
        fees_since_open += fee
    after = replace(before, amount=amount, entry=entry, open_fees=open_fees, fees_since_open=fees_since_open)
    run.sides[key] = after
    run.balance += realized - fee
    run.trades.append(Trade(time=time, symbol=symbol, position_side=position_side, side=side, quantity=quantity,
                            price=price, fee=fee, realized_pnl=realized, net_pnl=net, reason=reason, closes=closes,
                            amount_after=amount))
    run.curve.append(EquityPoint(time, run.balance))
    return after


# --- bars -------------------------------------------------------------------------------------------


def _advance_all(run: _Run, until: datetime | None) -> None:
    """Play the bars before `until` (None: all) of every symbol with an open side."""
    for symbol in sorted({symbol for (symbol, _), side in run.sides.items() if side.amount != 0}):
        _advance(run, symbol, until)


def _advance(run: _Run, symbol: str, until: datetime | None) -> None:
    series = run.bars.get(symbol, ())
    times = run.times.get(symbol, [])
    index = run.cursor.get(symbol, 0)
    end = len(times) if until is None else bisect_left(times, until, lo=index)
    keys = [key for key in run.sides if key[0] == symbol]
    if all(run.sides[key].guard.empty for key in keys):  # nothing rests: no bar can change anything
        run.cursor[symbol] = end
        return
    while index < end:
        bar = series[index]
        index += 1
        still_open = False
        for key in keys:
            if run.sides[key].amount != 0:
                _play(run, key, bar)
                still_open = still_open or run.sides[key].amount != 0
        if not still_open:
            break
    run.cursor[symbol] = index


def _play(run: _Run, key: tuple[str, str], bar: Bar) -> None:
    """One bar against one side's protective orders."""
    side = run.sides[key]
    guard = side.guard
    long = side.amount > 0
    tick = run.rules[key[0]].tick_size
    # Stop-like orders first: the stop, and the trailing stop at its level from the best before this bar.
    hits: list[tuple[Decimal, str]] = []
    if guard.stop is not None and (bar.low <= guard.stop if long else bar.high >= guard.stop):
        hits.append((guard.stop, guard.stop_reason))
    if guard.trail_best is not None and guard.trail_callback is not None:
        level = _trail_level(guard.trail_best, guard.trail_callback, tick, long)
        if bar.low <= level if long else bar.high >= level:
            hits.append((level, "trailing"))
    if hits:
        # The nearest to the price fills first; on a tie the first listed, the stop.
        trigger, reason = max(hits, key=lambda hit: hit[0]) if long else min(hits, key=lambda hit: hit[0])
        price = min(trigger, bar.open) if long else max(trigger, bar.open)
        _close(run, key, abs(side.amount), price, bar.open_time, reason)
        return
    for tp in guard.take_profits:
        if not (bar.high >= tp.trigger if long else bar.low <= tp.trigger):
            break  # sorted from the nearest: the rest are further
        side = run.sides[key]
        price = max(tp.trigger, bar.open) if long else min(tp.trigger, bar.open)
        quantity = abs(side.amount) if tp.quantity is None else min(tp.quantity, abs(side.amount))
        side = _close(run, key, quantity, price, bar.open_time, f"take-profit {tp.level}" if tp.level else "take-profit")
        if side.amount == 0:
            return
        guard = replace(side.guard, take_profits=tuple(t for t in side.guard.take_profits if t is not tp))
        guard = _breakeven(run, key[0], side, guard, tp.level)
        run.sides[key] = replace(side, guard=guard)
    side = run.sides[key]
    guard = side.guard
    if guard.trail_callback is None:
        return
    best = guard.trail_best
    extreme = bar.high if long else bar.low
    if best is None:
        if not (extreme >= guard.trail_activation if long else extreme <= guard.trail_activation):
            return
        best = extreme
    else:
        best = max(best, extreme) if long else min(best, extreme)
    if best != guard.trail_best:
        run.sides[key] = replace(side, guard=replace(guard, trail_best=best))
    level = _trail_level(best, guard.trail_callback, tick, long)
    if bar.close <= level if long else bar.close >= level:
        _close(run, key, abs(side.amount), level, bar.open_time, "trailing")


def _trail_level(best: Decimal, callback: Decimal, tick: Decimal, long: bool) -> Decimal:
    """best × (1 ∓ callback), on the tick towards the price (a long's up), as every stop."""
    move = callback / HUNDRED
    price = best * (ONE - move) if long else best * (ONE + move)
    steps = (price / tick).to_integral_value(rounding=ROUND_CEILING if long else ROUND_FLOOR)
    return (steps * tick).quantize(tick)


def _close(run: _Run, key: tuple[str, str], quantity: Decimal, trigger: Decimal, time: datetime, reason: str) -> Side:
    side = run.sides[key]
    order_side = "SELL" if side.amount > 0 else "BUY"
    after = _fill(run, key[0], key[1], order_side, quantity, _slipped(trigger, order_side, run.settings.slippage_bps),
                  time, reason)
    if after.amount == 0:
        after = replace(after, guard=Guard(), context=Context())
        run.sides[key] = after
    return after


def _breakeven(run: _Run, symbol: str, side: Side, guard: Guard, level: int) -> Guard:
    """After ladder level `level` filled: the stop to breakeven when the settings say so."""
    after = run.settings.breakeven_after
    if not level or not after or level < after:
        return guard
    previous = None
    if run.settings.breakeven_to == "previous_tp" and level > 1:
        previous = dict(guard.ladder_triggers).get(level - 1)
    stop = breakeven_stop(amount=side.amount, entry=side.entry, fees=side.fees_since_open,
                          tick=run.rules[symbol].tick_size, level=level, to_price=previous)
    return replace(guard, stop=stop.trigger, stop_reason="breakeven stop")


# --- funding, equity --------------------------------------------------------------------------------


def _fund(run: _Run, charge: FundingCharge) -> None:
    keys = [key for key, side in run.sides.items() if key[0] == charge.symbol and side.amount != 0]
    if not keys:
        return
    price = charge.mark_price if charge.mark_price is not None else _minute_open(run, charge.symbol, charge.time)
    if price is None:
        return
    for key in keys:
        paid = -run.sides[key].amount * price * charge.rate
        run.balance += paid
        run.funding += paid
    run.curve.append(EquityPoint(charge.time, run.balance))


def _minute_open(run: _Run, symbol: str, time: datetime) -> Decimal | None:
    times = run.times.get(symbol, [])
    index = bisect_right(times, time) - 1
    if index < 0:
        return None
    bar = run.bars[symbol][index]
    return bar.open if bar.open_time + MINUTE > time else bar.close


def _last_close(run: _Run, symbol: str, time: datetime) -> Decimal | None:
    """The close of the last bar that ended by `time`."""
    index = bisect_right(run.times.get(symbol, []), time - MINUTE) - 1
    return run.bars[symbol][index].close if index >= 0 else None


def _book(run: _Run, symbol: str) -> Book:
    hedge = run.settings.hedge_mode
    if hedge:
        long = run.sides.get((symbol, "LONG"), Side()).amount
        short = run.sides.get((symbol, "SHORT"), Side()).amount
        return Book(long=long, short=-short, hedge_mode=True)
    amount = run.sides.get((symbol, "BOTH"), Side()).amount
    return Book(long=max(amount, ZERO), short=max(-amount, ZERO))


def _equity(run: _Run, symbol: str, time: datetime, price: Decimal | None) -> Decimal:
    """Balance plus the unrealized P&L of every open side: the alert's symbol at its price, others at
    their last close."""
    equity = run.balance
    for (held, _), side in run.sides.items():
        if side.amount == 0:
            continue
        mark = price if held == symbol else _last_close(run, held, time)
        if mark is not None:
            equity += (mark - side.entry) * side.amount
    return equity


# --- results ----------------------------------------------------------------------------------------


def max_drawdown(curve: Sequence[Decimal]) -> tuple[Decimal, Decimal]:
    """The largest fall from a running peak, in the curve's unit and (separately) as % of that peak."""
    worst, worst_pct = ZERO, ZERO
    peak: Decimal | None = None
    for equity in curve:
        if peak is None or equity > peak:
            peak = equity
            continue
        fall = peak - equity
        worst = max(worst, fall)
        if peak > 0:
            worst_pct = max(worst_pct, fall / peak * HUNDRED)
    return worst, worst_pct


def stats_of(trades: Sequence[Trade], curve: Sequence[EquityPoint], funding: Decimal = ZERO) -> Stats:
    """The statistics of a run (see the module's docstring for the definitions)."""
    closing = [trade for trade in trades if trade.closes]
    wins = [trade.net_pnl for trade in closing if trade.net_pnl > 0]
    losses = [trade.net_pnl for trade in closing if trade.net_pnl < 0]
    gross_profit = sum(wins, ZERO)
    gross_loss = sum(losses, ZERO)
    realized = sum((trade.realized_pnl for trade in trades), ZERO)
    fees = sum((trade.fee for trade in trades), ZERO)
    decided = len(wins) + len(losses)
    drawdown, drawdown_pct = max_drawdown([point.equity for point in curve])
    return Stats(
        net_pnl=realized - fees + funding, realized_pnl=realized, fees=fees, funding=funding, trades=len(closing),
        wins=len(wins), losses=len(losses),
        win_rate=Decimal(len(wins)) / decided * HUNDRED if decided else None,
        gross_profit=gross_profit, gross_loss=gross_loss,
        profit_factor=gross_profit / -gross_loss if losses else None,
        max_drawdown=drawdown, max_drawdown_pct=drawdown_pct,
    )


def _result(run: _Run) -> Result:
    still_open = []
    for (symbol, position_side), side in sorted(run.sides.items()):
        if side.amount == 0:
            continue
        series = run.bars.get(symbol, ())
        last = series[-1].close if series else None
        unrealized = (last - side.entry) * side.amount if last is not None else ZERO
        still_open.append(OpenPosition(symbol, position_side, side.amount, side.entry, last, unrealized))
    return Result(trades=tuple(run.trades), equity_curve=tuple(run.curve),
                  stats=stats_of(run.trades, run.curve, run.funding), decisions=tuple(run.decisions),
                  open_positions=tuple(still_open), final_balance=run.balance)
