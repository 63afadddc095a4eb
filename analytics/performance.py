"""The analytics page's figures: a few aggregate queries feed analytics.metrics (the maths).

Each part is one query, aggregated in the database where it can be: ledger sums per (UTC day,
strategy, symbol, kind); the fills (orders with their execution's strategy) as bare tuples; stage gaps
computed by the database; the equity curve thinned to one snapshot per minute, hour or day. Time keys
are cut from the timestamp written as text in UTC, which every backend does natively (Django's Trunc
functions call back into Python for every row on SQLite: three times slower on 50,000 ledger lines).
The results are cached (see cached_performance).
"""

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.core.cache import cache
from django.db.models import CharField, F, FloatField, Func, Max, Q, QuerySet, Sum
from django.db.models.functions import Cast, Coalesce, Substr

from analytics import metrics
from analytics.metrics import Drawdowns, EquityPoint, Fill, Latency, PeriodPnL, PnL, StageSamples, Trade, TradeStats
from analytics.models import AccountSnapshot, LedgerEntry
from trading.models import Execution, Order

# The latency table reads the latest executions of the period, at most this many: enough for a p99
# (20 values above it) and what a trader asks about (how fast is it now?).
LATENCY_SAMPLE = 2_000
# The day table shows the latest days; weeks and months cover the rest.
DAY_ROWS = 92
Kind = LedgerEntry.Kind
PNL_KINDS = (Kind.REALIZED_PNL, Kind.COMMISSION, Kind.FUNDING_FEE)
UNATTRIBUTED = "(unattributed)"
# Binance writes income amounts with 8 decimals.
LEDGER_PLACES = Decimal("1E-8")


@dataclass(frozen=True)
class Scope:
    """Whose figures, over which span: `start` inclusive, `end` exclusive, None for open-ended."""

    account: str
    exchange: str
    start: datetime | None = None
    end: datetime | None = None
    strategy: str = ""
    symbol: str = ""


@dataclass(frozen=True)
class Group:
    name: str
    pnl: PnL | None  # ledger figures; None for a grouping the ledger cannot tell (long vs short)
    stats: TradeStats


@dataclass(frozen=True)
class Performance:
    """What the ledger, the fills and the executions say about a scope."""

    pnl: PnL
    stats: TradeStats
    by_strategy: list[Group]
    by_symbol: list[Group]
    by_side: list[Group]
    days: list[PeriodPnL]
    weeks: list[PeriodPnL]
    months: list[PeriodPnL]
    latency: list[Latency]
    latency_sampled: int
    daily_points: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.days or self.stats.trades or self.stats.open_trades or self.latency_sampled)


@dataclass(frozen=True)
class Equity:
    """What the account snapshots say: the curve (thinned, see equity_curve) and its drawdowns."""

    drawdowns: Drawdowns
    resolution: str
    points: list[dict[str, Any]] = field(default_factory=list)  # as the chart reads them


def performance(scope: Scope) -> Performance:
    days, strategies, symbols = ledger_sums(scope)
    trades = [trade for trade in metrics.trades_from_fills(fills(scope)) if _counts_in(trade, scope)]
    latencies, sampled = latency(scope)
    return Performance(
        pnl=metrics.total(days.values()),
        stats=metrics.trade_stats(trades),
        by_strategy=_groups(strategies, metrics.stats_by(trades, lambda trade: trade.strategy or UNATTRIBUTED)),
        by_symbol=_groups(symbols, metrics.stats_by(trades, lambda trade: trade.symbol)),
        by_side=[Group(side, None, stats) for side, stats in metrics.stats_by(trades, lambda trade: trade.side).items()],
        days=metrics.by_day(days)[:DAY_ROWS],
        weeks=metrics.by_week(days),
        months=metrics.by_month(days),
        latency=latencies,
        latency_sampled=sampled,
        daily_points=[{"time": day.isoformat(), "value": days[day].net} for day in sorted(days)],
    )


def equity(scope: Scope) -> Equity:
    curve, resolution = equity_curve(scope)
    return Equity(
        drawdowns=metrics.drawdowns(curve),
        resolution=resolution,
        points=[{"time": int(point.time.timestamp()), "value": point.equity} for point in curve],
    )


# --- cached: recomputed when rows are added, and at least every CACHE_SECONDS ---------------------------
# The fingerprint is the newest id of each table (index lookups, no scan): a new fill, ledger line or
# execution shows at once. Changes to existing rows (an order's fill recorded, an execution finishing, a
# ledger line attributed to a strategy after its import) show when the figures expire.
CACHE_SECONDS = 60
Value = TypeVar("Value")


def cached_performance(scope: Scope) -> Performance:
    newest = (
        LedgerEntry.objects.filter(account=scope.account).aggregate(last=Max("id"))["last"],
        Order.objects.aggregate(last=Max("id"))["last"],
        Execution.objects.aggregate(last=Max("id"))["last"],
    )
    return _cached("performance", (scope, newest), lambda: performance(scope))


def cached_equity(scope: Scope) -> Equity:
    newest = AccountSnapshot.objects.filter(account=scope.account).aggregate(last=Max("id"))
    return _cached("equity", (scope, newest), lambda: equity(scope))


def _cached(kind: str, inputs: object, compute: Callable[[], Value]) -> Value:
    key = f"analytics:{kind}:{hashlib.sha256(repr(inputs).encode()).hexdigest()}"
    value: Value | None = cache.get(key)
    if value is None:
        value = compute()
        cache.set(key, value, CACHE_SECONDS)
    return value


def _counts_in(trade: Trade, scope: Scope) -> bool:
    """A closed trade belongs to the period it closed in; an open one to any period that reaches now."""
    if trade.closed_at is None:
        return scope.end is None
    return (scope.start is None or trade.closed_at >= scope.start) and (scope.end is None or trade.closed_at < scope.end)


def _groups(pnls: dict[str, PnL], stats: dict[str, TradeStats]) -> list[Group]:
    return [Group(name, pnls.get(name, PnL()), stats.get(name, metrics.trade_stats([])))
            for name in sorted(pnls.keys() | stats.keys())]


# --- the ledger --------------------------------------------------------------------------------------
def _utc_text(field_name: str, length: int) -> Substr:
    """The first `length` characters of a timestamp written as text in UTC: 10 → "2024-01-05" (its
    day), 13 → the hour, 16 → the minute. Django keeps the database session in UTC."""
    return Substr(_text(field_name), 1, length)


def _within(queryset: QuerySet[Any], field_name: str, scope: Scope) -> QuerySet[Any]:
    if scope.start is not None:
        queryset = queryset.filter(**{f"{field_name}__gte": scope.start})
    if scope.end is not None:
        queryset = queryset.filter(**{f"{field_name}__lt": scope.end})
    return queryset


def ledger_sums(scope: Scope) -> tuple[dict[date, PnL], dict[str, PnL], dict[str, PnL]]:
    """Net P&L per UTC day, per strategy and per symbol, from one grouped query."""
    entries = LedgerEntry.objects.filter(account=scope.account, kind__in=PNL_KINDS)
    if scope.strategy:
        entries = entries.filter(strategy=scope.strategy)
    if scope.symbol:
        entries = entries.filter(symbol=scope.symbol)
    rows = (
        _within(entries, "time", scope).order_by()
        .annotate(day=_utc_text("time", 10)).values_list("day", "strategy", "symbol", "kind")
        .annotate(total=Sum("amount"))
    )
    days: dict[date, PnL] = defaultdict(PnL)
    strategies: dict[str, PnL] = defaultdict(PnL)
    symbols: dict[str, PnL] = defaultdict(PnL)
    for day, strategy, symbol, kind, amount in rows:
        # SQLite sums in floating point: back to the ledger's 8 decimals (PostgreSQL sums exactly).
        pnl = _pnl(kind, amount.quantize(LEDGER_PLACES))
        days[date.fromisoformat(day)] += pnl
        strategies[strategy or UNATTRIBUTED] += pnl
        symbols[symbol or UNATTRIBUTED] += pnl
    return days, strategies, symbols


def _pnl(kind: str, amount: Decimal) -> PnL:
    if kind == Kind.REALIZED_PNL:
        return PnL(realized=amount)
    if kind == Kind.COMMISSION:
        return PnL(commission=amount)
    return PnL(funding=amount)


# --- fills -------------------------------------------------------------------------------------------
def fills(scope: Scope) -> list[Fill]:
    """Every fill of ours up to the end of the period, oldest first: a trade closed in the period may
    have opened long before it. A stop-loss or take-profit that filled at the exchange is a fill of the
    strategy whose execution placed it (as the ledger attributes it). An order is one fill at its
    average price; its commission is positive on the order (as Binance reports it) and turned into the
    ledger's sign here."""
    orders = Order.objects.filter(
        Q(execution__exchange=scope.exchange) | Q(protective__execution__exchange=scope.exchange), executed_qty__gt=0)
    if scope.strategy:
        orders = orders.filter(Q(execution__strategy=scope.strategy) | Q(protective__execution__strategy=scope.strategy))
    if scope.symbol:
        orders = orders.filter(symbol=scope.symbol)
    if scope.end is not None:
        orders = orders.filter(created_at__lt=scope.end)
    # Numbers and times as text, parsed here: Django's own converters cost twice the query on 10,000 rows.
    rows = orders.order_by("created_at", "id").values_list(
        _text(Coalesce("acknowledged_at", "created_at")), Coalesce("execution__strategy", "protective__execution__strategy"),
        "symbol", "side",
        _text("executed_qty"), _text("avg_price"), _text("realized_pnl"), _text("commission"), "position_side",
    )
    return [
        Fill(time=_utc(time), strategy=strategy, symbol=symbol,
             quantity=Decimal(quantity) if side == Order.Side.BUY else -Decimal(quantity),
             price=Decimal(price or 0), realized_pnl=Decimal(realized), commission=-Decimal(commission),
             position_side=position_side)
        for time, strategy, symbol, side, quantity, price, realized, commission, position_side in rows
    ]


def _text(expression: Any) -> Cast:  # noqa: ANN401 (a field name or an expression)
    return Cast(expression, CharField())


def _utc(text: str) -> datetime:
    """A timestamp the database wrote as text in UTC ("2024-01-05 13:00:00.5", "…+00" on PostgreSQL)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- equity ------------------------------------------------------------------------------------------
# (longest span, characters of the UTC timestamp kept, what the curve is then made of)
RESOLUTIONS = (
    (timedelta(days=2), 16, "the last snapshot of each minute"),
    (timedelta(days=92), 13, "the last snapshot of each hour"),
    (None, 10, "the last snapshot of each day"),
)


def equity_curve(scope: Scope) -> tuple[list[EquityPoint], str]:
    """The account's equity over the period, oldest first, thinned by the span so a year of
    one-a-minute snapshots stays a few hundred points: the drawdowns are measured on this curve."""
    snapshots = _within(AccountSnapshot.objects.filter(account=scope.account), "taken_at", scope)
    # The oldest by id (snapshots are written as they are taken): read off the account index, no sort.
    first = scope.start or snapshots.order_by("id").values_list("taken_at", flat=True).first()
    if first is None:
        return [], RESOLUTIONS[-1][2]
    span = (scope.end or datetime.now(tz=first.tzinfo)) - first
    length, resolution = next((length, words) for limit, length, words in RESOLUTIONS if limit is None or span <= limit)
    last_of_each = snapshots.order_by().annotate(bucket=_utc_text("taken_at", length)).values("bucket").annotate(
        last=Max("id")).values("last")
    rows = AccountSnapshot.objects.filter(id__in=last_of_each).order_by("taken_at").values_list("taken_at", "equity")
    return [EquityPoint(taken_at, equity) for taken_at, equity in rows], resolution


# --- latency -----------------------------------------------------------------------------------------
class MillisecondsBetween(Func):
    """end − start in milliseconds, computed by the database (a float: latency, not money). Django's
    own `F(end) - F(start)` calls back into Python for every row on SQLite."""

    arity = 2
    output_field = FloatField()
    template = "CAST(EXTRACT(EPOCH FROM (%(expressions)s)) * 1000 AS double precision)"  # PostgreSQL
    arg_joiner = " - "

    def __init__(self, start: str, end: str) -> None:
        super().__init__(F(end), F(start))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # noqa: ANN401 (Django's signature)
        # julianday counts days in a double: exact to about 0.02 ms at today's dates.
        return self.as_sql(compiler, connection, template="((julianday(%(expressions)s)) * 86400000.0)",
                           arg_joiner=") - julianday(", **extra)

    def as_mysql(self, compiler: Any, connection: Any, **extra: Any) -> Any:  # noqa: ANN401
        # TIMESTAMPDIFF(unit, a, b) is b − a: given (end, start) it is negative, hence the sign.
        return self.as_sql(compiler, connection, template="(TIMESTAMPDIFF(MICROSECOND, %(expressions)s) / -1000.0)",
                           arg_joiner=", ", **extra)


def latency(scope: Scope) -> tuple[list[Latency], int]:
    """Stage percentiles over the latest LATENCY_SAMPLE executions received in the period."""
    executions = _within(Execution.objects.filter(exchange=scope.exchange), "received_at", scope)
    if scope.strategy:
        executions = executions.filter(strategy=scope.strategy)
    if scope.symbol:
        executions = executions.filter(symbol=scope.symbol)
    gaps = {f"gap_{stage.name}": MillisecondsBetween(stage.start, stage.end) for stage in metrics.LATENCY_STAGES}
    rows = list(executions.order_by("-received_at").annotate(**gaps).values_list(*gaps)[:LATENCY_SAMPLE])
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in gaps]
    samples = [StageSamples(stage, column) for stage, column in zip(metrics.LATENCY_STAGES, columns, strict=True)]
    return metrics.latency(samples), len(rows)

