"""Trading performance maths: pure functions over typed records, no ORM, no Django.

Definitions (the analytics page shows the same words):

- **Net P&L** = realized P&L + commissions + funding fees. Commissions and funding fees are the
  ledger's signed amounts (a fee paid is negative, funding received positive), so they are added, not
  subtracted. Other ledger lines (transfers, bonuses…) are not P&L and are left out.
- **Trade**: a round trip from flat to flat of one strategy on one symbol, built from its fills in
  time order. Its side is the side of the fill that opened it (buy: long, sell: short). A fill that
  flips the position through zero closes one trade and opens the next: its realized P&L belongs to the
  closing trade (only the reducing part of a fill realizes P&L) and its commission is split between
  the two in proportion to quantity. A trade not yet back to flat is *open* and is left out of every
  trade statistic. A trade's net = Σ realized P&L + Σ commissions of its fills (funding is paid on
  the position over time, not per trade, and is counted only in net P&L).
- **Win / loss / break-even**: a closed trade whose |net| < BREAK_EVEN (0.01 USDT) is break-even;
  otherwise a win (net > 0) or a loss (net < 0).
- **Win rate** = wins ÷ (wins + losses) × 100: break-even trades are counted apart and left out of
  the rate. None when there are no wins and no losses.
- **Average win** = Σ net of wins ÷ wins; **average loss** = Σ net of losses ÷ losses (negative).
- **Profit factor** = Σ net of wins ÷ |Σ net of losses|; None when there is no loss.
- **Expectancy** = Σ net of closed trades ÷ number of closed trades (break-evens included): what one
  trade made on average. None without trades.
- **Drawdown** of an equity curve: the fall from the highest equity so far (the peak) to a later
  point. *Max drawdown* is the largest such fall in the curve, in the asset and as % of its peak, with
  the peak's and the trough's times; *current drawdown* is the fall from the peak to the latest point.
  A peak equalled again moves the peak to the later time.
- **Breakdown**: net P&L summed per UTC day, per ISO week (Monday to Sunday, labelled 2024-W01) and
  per calendar month.
- **Latency percentiles** per stage (the same gaps as Execution.stage_ms), nearest-rank: sort the n
  values, the p-th percentile is the value at rank ⌈p/100 × n⌉ (1-based). Always an observed value,
  never interpolated. Executions that skipped a stage are left out of that stage.
"""

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TypeVar

ZERO = Decimal(0)
HUNDRED = Decimal(100)
# |net| below this is a break-even trade: it rounds to nothing on a statement in USDT.
BREAK_EVEN = Decimal("0.01")
MS = Decimal("0.1")
Number = TypeVar("Number", Decimal, float)


# --- money: net P&L and its breakdown ----------------------------------------------------------------
@dataclass(frozen=True)
class PnL:
    """Ledger sums over some span. `commission` and `funding` are signed (a fee paid is negative)."""

    realized: Decimal = ZERO
    commission: Decimal = ZERO
    funding: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.realized + self.commission + self.funding

    @property
    def fees(self) -> Decimal:
        """Commissions and funding together: what holding and trading cost (or earned)."""
        return self.commission + self.funding

    def __add__(self, other: "PnL") -> "PnL":
        return PnL(self.realized + other.realized, self.commission + other.commission, self.funding + other.funding)


def total(pnls: Iterable[PnL]) -> PnL:
    return sum(pnls, PnL())


@dataclass(frozen=True)
class PeriodPnL:
    label: str  # 2024-01-05, 2024-W01, 2024-01
    start: date
    pnl: PnL


def by_day(days: Mapping[date, PnL]) -> list[PeriodPnL]:
    """Newest first, as a statement is read."""
    return [PeriodPnL(day.isoformat(), day, days[day]) for day in sorted(days, reverse=True)]


def by_week(days: Mapping[date, PnL]) -> list[PeriodPnL]:
    """ISO weeks: 2024-12-30 (a Monday) is in 2025-W01."""
    return _grouped(days, _iso_week)


def by_month(days: Mapping[date, PnL]) -> list[PeriodPnL]:
    return _grouped(days, lambda day: (f"{day:%Y-%m}", day.replace(day=1)))


def _iso_week(day: date) -> tuple[str, date]:
    year, week, weekday = day.isocalendar()
    return f"{year}-W{week:02d}", day - timedelta(days=weekday - 1)


def _grouped(days: Mapping[date, PnL], key: Callable[[date], tuple[str, date]]) -> list[PeriodPnL]:
    groups: dict[tuple[str, date], PnL] = defaultdict(PnL)
    for day, pnl in days.items():
        groups[key(day)] += pnl
    return [PeriodPnL(label, start, pnl) for (label, start), pnl in sorted(groups.items(), key=lambda g: g[0][1], reverse=True)]


# --- trades: round trips built from fills ------------------------------------------------------------
@dataclass(frozen=True)
class Fill:
    time: datetime
    strategy: str
    symbol: str
    quantity: Decimal  # signed: a buy is positive, a sell negative
    price: Decimal
    realized_pnl: Decimal
    commission: Decimal  # signed as in the ledger: a fee paid is negative
    position_side: str = "BOTH"  # LONG/SHORT in hedge mode: each side's trades are its own


@dataclass
class Trade:
    strategy: str
    symbol: str
    side: str  # long or short
    opened_at: datetime
    closed_at: datetime | None = None  # None while the trade is open
    size: Decimal = ZERO  # the largest absolute position held during the trade
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO
    fills: int = 0

    @property
    def net(self) -> Decimal:
        return self.realized_pnl + self.commission

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


def trades_from_fills(fills: Iterable[Fill]) -> list[Trade]:
    """Every trade, closed and open, in the order they opened. `fills` must be in time order; fills of
    zero quantity are ignored."""
    position: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    current: dict[tuple[str, str, str], Trade] = {}
    trades: list[Trade] = []
    for fill in fills:
        if fill.quantity == 0:
            continue
        key = (fill.strategy, fill.symbol, fill.position_side)
        before = position[key]
        after = position[key] = before + fill.quantity
        trade = current.get(key)
        if trade is None:
            current[key] = _opened(fill, after, trades)
            _add(current[key], fill.realized_pnl, fill.commission, size=abs(after))
        elif after == 0 or (after > 0) != (before > 0):
            # Closes; past zero it also opens the next trade with the rest of the fill.
            closing_commission = fill.commission * abs(before) / abs(fill.quantity)
            _add(trade, fill.realized_pnl, closing_commission, size=ZERO)
            trade.closed_at = fill.time
            del current[key]
            if after != 0:
                current[key] = _opened(fill, after, trades)
                _add(current[key], ZERO, fill.commission - closing_commission, size=abs(after))
        else:
            _add(trade, fill.realized_pnl, fill.commission, size=abs(after))
    return trades


def _opened(fill: Fill, after: Decimal, trades: list[Trade]) -> Trade:
    trade = Trade(strategy=fill.strategy, symbol=fill.symbol, side="long" if after > 0 else "short", opened_at=fill.time)
    trades.append(trade)
    return trade


def _add(trade: Trade, realized: Decimal, commission: Decimal, *, size: Decimal) -> None:
    trade.realized_pnl += realized
    trade.commission += commission
    trade.size = max(trade.size, size)
    trade.fills += 1


@dataclass(frozen=True)
class TradeStats:
    trades: int  # closed trades
    wins: int
    losses: int
    break_even: int
    net: Decimal  # Σ net of the closed trades
    gross_win: Decimal  # Σ net of wins, ≥ 0
    gross_loss: Decimal  # Σ net of losses, ≤ 0
    win_rate: Decimal | None  # percent
    average_win: Decimal | None
    average_loss: Decimal | None
    profit_factor: Decimal | None
    expectancy: Decimal | None
    open_trades: int = 0


def trade_stats(trades: Iterable[Trade], *, break_even: Decimal = BREAK_EVEN) -> TradeStats:
    """Statistics over the closed trades; open ones are only counted (see the module's definitions)."""
    wins: list[Decimal] = []
    losses: list[Decimal] = []
    closed = still_open = flat = 0
    net = ZERO
    for trade in trades:
        if trade.closed_at is None:
            still_open += 1
            continue
        closed += 1
        result = trade.net
        net += result
        if abs(result) < break_even:
            flat += 1
        elif result > 0:
            wins.append(result)
        else:
            losses.append(result)
    gross_win, gross_loss = sum(wins, ZERO), sum(losses, ZERO)
    decided = len(wins) + len(losses)
    return TradeStats(
        trades=closed, wins=len(wins), losses=len(losses), break_even=flat, net=net,
        gross_win=gross_win, gross_loss=gross_loss,
        win_rate=Decimal(len(wins)) / decided * HUNDRED if decided else None,
        average_win=gross_win / len(wins) if wins else None,
        average_loss=gross_loss / len(losses) if losses else None,
        profit_factor=gross_win / abs(gross_loss) if losses else None,
        expectancy=net / closed if closed else None,
        open_trades=still_open,
    )


def stats_by(trades: Sequence[Trade], key: Callable[[Trade], str]) -> dict[str, TradeStats]:
    """trade_stats per group (per strategy, symbol or side), groups in name order."""
    groups: dict[str, list[Trade]] = defaultdict(list)
    for trade in trades:
        groups[key(trade)].append(trade)
    return {name: trade_stats(groups[name]) for name in sorted(groups)}


# --- drawdown ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EquityPoint:
    time: datetime
    equity: Decimal


@dataclass(frozen=True)
class Drawdown:
    amount: Decimal  # peak − trough, ≥ 0
    pct: Decimal | None  # amount ÷ peak × 100; None when the peak is not positive
    peak: Decimal | None = None
    peak_at: datetime | None = None
    trough: Decimal | None = None
    trough_at: datetime | None = None


@dataclass(frozen=True)
class Drawdowns:
    max: Drawdown
    current: Drawdown


NO_DRAWDOWN = Drawdown(amount=ZERO, pct=None)


def drawdowns(curve: Sequence[EquityPoint]) -> Drawdowns:
    """Max and current drawdown of a curve in time order (see the module's definitions). A curve that
    never falls has a max drawdown of 0 with no dates."""
    if not curve:
        return Drawdowns(max=NO_DRAWDOWN, current=NO_DRAWDOWN)
    peak = curve[0]
    worst = NO_DRAWDOWN
    for point in curve:
        if point.equity >= peak.equity:
            peak = point
            continue
        fall = peak.equity - point.equity
        if fall > worst.amount:
            worst = _drawdown(peak, point)
    last = curve[-1]
    return Drawdowns(max=worst, current=_drawdown(peak, last))


def _drawdown(peak: EquityPoint, trough: EquityPoint) -> Drawdown:
    fall = peak.equity - trough.equity
    return Drawdown(
        amount=fall,
        pct=fall / peak.equity * HUNDRED if peak.equity > 0 else None,
        peak=peak.equity, peak_at=peak.time, trough=trough.equity, trough_at=trough.time,
    )


# --- latency -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LatencyStage:
    name: str
    label: str
    start: str  # Execution field
    end: str


# The gaps of Execution.stage_ms, in the order an execution passes through them.
LATENCY_STAGES = (
    LatencyStage("queue", "received → queued", "received_at", "queued_at"),
    LatencyStage("dispatch", "queued → started", "queued_at", "started_at"),
    LatencyStage("prepare", "started → sent", "started_at", "sent_at"),
    LatencyStage("exchange", "sent → acknowledged", "sent_at", "acknowledged_at"),
    LatencyStage("total", "received → finished", "received_at", "finished_at"),
)


def percentile(values: Sequence[Number], pct: int) -> Number | None:
    """Nearest-rank percentile of values already sorted ascending; None for no values."""
    if not values:
        return None
    rank = max(1, math.ceil(Decimal(pct) / HUNDRED * len(values)))
    return values[rank - 1]


@dataclass(frozen=True)
class Latency:
    stage: LatencyStage
    count: int
    p50: Decimal | None = None
    p95: Decimal | None = None
    p99: Decimal | None = None


@dataclass(frozen=True)
class StageSamples:
    stage: LatencyStage
    ms: Sequence[float | None] = ()  # one per execution, in milliseconds; None: the stage was skipped


def latency(samples: Iterable[StageSamples]) -> list[Latency]:
    """p50 / p95 / p99 in milliseconds (to 0.1 ms) per stage."""
    rows = []
    for sample in samples:
        values = sorted(value for value in sample.ms if value is not None)
        rows.append(Latency(sample.stage, len(values), *(_ms(percentile(values, pct)) for pct in (50, 95, 99))))
    return rows


def _ms(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(MS)
