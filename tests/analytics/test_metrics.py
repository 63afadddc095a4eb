"""analytics.metrics on hand-computed cases: the arithmetic is written beside each expectation."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

from analytics.metrics import (
    LATENCY_STAGES,
    EquityPoint,
    Fill,
    PnL,
    StageSamples,
    Trade,
    by_day,
    by_month,
    by_week,
    drawdowns,
    latency,
    percentile,
    stats_by,
    total,
    trade_stats,
    trades_from_fills,
)

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def fill(minutes, quantity, realized="0", commission="0", *, strategy="S1", symbol="BTCUSDT", price="100"):
    return Fill(time=at(minutes), strategy=strategy, symbol=symbol, quantity=D(quantity), price=D(price),
                realized_pnl=D(realized), commission=D(commission))


def closed(net: str, *, side="long", strategy="S1", symbol="BTCUSDT") -> Trade:
    return Trade(strategy=strategy, symbol=symbol, side=side, opened_at=T0, closed_at=at(1), realized_pnl=D(net))


# --- net P&L --------------------------------------------------------------------------------------------
def test_it_adds_signed_fees_and_funding_to_realized_pnl():
    pnl = PnL(realized=D("120.50"), commission=D("-4.25"), funding=D("1.10"))
    assert pnl.net == D("117.35")  # 120.50 − 4.25 + 1.10
    assert pnl.fees == D("-3.15")  # −4.25 + 1.10


def test_it_totals_pnl():
    assert total([PnL(D("1"), D("-0.1"), D("0")), PnL(D("-3"), D("-0.2"), D("-0.05"))]) == PnL(D("-2"), D("-0.3"), D("-0.05"))
    assert total([]).net == 0


# --- trades ---------------------------------------------------------------------------------------------
def test_it_builds_no_trade_from_no_fills():
    assert trades_from_fills([]) == []


def test_it_builds_a_round_trip_from_flat_to_flat():
    trades = trades_from_fills([
        fill(0, "0.5", commission="-0.1"),
        fill(1, "0.5", commission="-0.1"),  # adds: position 1.0
        fill(2, "-0.4", realized="8", commission="-0.08"),
        fill(3, "-0.6", realized="12", commission="-0.12"),  # back to flat
    ])
    assert len(trades) == 1
    trade = trades[0]
    assert (trade.side, trade.opened_at, trade.closed_at, trade.fills) == ("long", at(0), at(3), 4)
    assert trade.size == D("1.0")
    assert trade.realized_pnl == D("20")  # 8 + 12
    assert trade.commission == D("-0.40")  # −0.1 −0.1 −0.08 −0.12
    assert trade.net == D("19.60")


def test_it_keeps_strategies_and_symbols_apart():
    trades = trades_from_fills([
        fill(0, "1"), fill(1, "-2", strategy="S2"), fill(2, "1", symbol="ETHUSDT"),
        fill(3, "-1", realized="5"), fill(4, "2", realized="-3", strategy="S2"),
    ])
    assert [(t.strategy, t.symbol, t.side, t.is_open, t.net) for t in trades] == [
        ("S1", "BTCUSDT", "long", False, D("5")),
        ("S2", "BTCUSDT", "short", False, D("-3")),
        ("S1", "ETHUSDT", "long", True, D("0")),
    ]


def test_it_leaves_a_trade_still_open_out_of_the_statistics():
    trades = trades_from_fills([fill(0, "1"), fill(1, "-1", realized="10"), fill(2, "-3", commission="-0.3")])
    assert [(t.side, t.is_open) for t in trades] == [("long", False), ("short", True)]
    stats = trade_stats(trades)
    assert (stats.trades, stats.open_trades, stats.wins, stats.net) == (1, 1, 1, D("10"))


def test_it_splits_a_fill_that_flips_through_zero():
    trades = trades_from_fills([
        fill(0, "0.5", commission="-0.2"),
        # Sells 2: closes the long 0.5 and opens a short 1.5. Realized 6 belongs to the long;
        # commission −0.8 splits by quantity: 0.5/2 × −0.8 = −0.2 to the long, −0.6 to the short.
        fill(1, "-2", realized="6", commission="-0.8"),
        fill(2, "1.5", realized="-4.5", commission="-0.6"),
    ])
    long, short = trades
    assert (long.side, long.closed_at, long.realized_pnl, long.commission, long.net) == (
        "long", at(1), D("6"), D("-0.4"), D("5.6"))  # 6 − 0.2 − 0.2
    assert (short.side, short.opened_at, short.closed_at, short.size) == ("short", at(1), at(2), D("1.5"))
    assert (short.realized_pnl, short.commission, short.net) == (D("-4.5"), D("-1.2"), D("-5.7"))  # −0.6 −0.6; −4.5 −1.2


def test_it_ignores_a_fill_of_nothing():
    assert trades_from_fills([fill(0, "0", commission="-1")]) == []


# --- trade statistics -----------------------------------------------------------------------------------
def test_it_has_no_statistics_without_trades():
    stats = trade_stats([])
    assert (stats.trades, stats.wins, stats.losses, stats.break_even, stats.net) == (0, 0, 0, 0, 0)
    assert stats.win_rate is None and stats.profit_factor is None and stats.expectancy is None
    assert stats.average_win is None and stats.average_loss is None


def test_it_computes_win_rate_averages_profit_factor_and_expectancy():
    # Wins 30 and 10, losses −20 and −5, one break-even of 0.004 (|0.004| < 0.01).
    stats = trade_stats([closed("30"), closed("-20"), closed("10"), closed("-5"), closed("0.004")])
    assert (stats.trades, stats.wins, stats.losses, stats.break_even) == (5, 2, 2, 1)
    assert stats.win_rate == D("50")  # 2 ÷ (2 + 2) × 100: the break-even is left out
    assert stats.average_win == D("20")  # (30 + 10) ÷ 2
    assert stats.average_loss == D("-12.5")  # (−20 − 5) ÷ 2
    assert stats.profit_factor == D("1.6")  # 40 ÷ |−25|
    assert stats.net == D("15.004")  # 30 − 20 + 10 − 5 + 0.004
    assert stats.expectancy == D("3.0008")  # 15.004 ÷ 5


def test_it_has_no_profit_factor_when_all_trades_win():
    stats = trade_stats([closed("3"), closed("5")])
    assert stats.win_rate == D("100")
    assert stats.profit_factor is None
    assert stats.average_loss is None
    assert stats.expectancy == D("4")  # 8 ÷ 2


def test_it_counts_a_break_even_apart():
    stats = trade_stats([closed("-0.009"), closed("0.01"), closed("-0.01")])
    # −0.009 is break-even; exactly 0.01 is not (|net| < 0.01 only): a win of 0.01 and a loss of −0.01.
    assert (stats.wins, stats.losses, stats.break_even) == (1, 1, 1)
    assert stats.profit_factor == D("1")  # 0.01 ÷ 0.01


def test_it_has_no_win_rate_with_only_break_evens():
    stats = trade_stats([closed("0")])
    assert (stats.trades, stats.break_even, stats.win_rate, stats.expectancy) == (1, 1, None, D("0"))


def test_it_groups_statistics_by_side():
    groups = stats_by([closed("10"), closed("-4", side="short"), closed("2", side="short")], lambda t: t.side)
    assert list(groups) == ["long", "short"]
    assert (groups["long"].trades, groups["long"].net) == (1, D("10"))
    assert (groups["short"].trades, groups["short"].net, groups["short"].win_rate) == (2, D("-2"), D("50"))


# --- drawdown -------------------------------------------------------------------------------------------
def curve(*values: str) -> list[EquityPoint]:
    return [EquityPoint(at(n), D(value)) for n, value in enumerate(values)]


def test_it_has_no_drawdown_without_a_curve():
    result = drawdowns([])
    assert result.max.amount == 0 and result.max.pct is None and result.max.peak_at is None
    assert result.current.amount == 0


def test_it_finds_the_max_and_current_drawdown_with_their_dates():
    # Peak 1000 at 1, trough 850 at 3: max drawdown 150 = 15 % of 1000. New peak 1100 at 5; now 1045:
    # current drawdown 55 = 5 % of 1100.
    result = drawdowns(curve("900", "1000", "950", "850", "990", "1100", "1045"))
    assert (result.max.amount, result.max.pct) == (D("150"), D("15"))
    assert (result.max.peak, result.max.peak_at, result.max.trough, result.max.trough_at) == (D("1000"), at(1), D("850"), at(3))
    assert (result.current.amount, result.current.pct) == (D("55"), D("5"))
    assert (result.current.peak_at, result.current.trough_at) == (at(5), at(6))


def test_it_has_no_drawdown_on_a_rising_curve():
    result = drawdowns(curve("100", "101", "101", "105"))
    assert result.max.amount == 0 and result.max.peak_at is None
    assert result.current.amount == 0 and result.current.peak_at == at(3)


def test_it_keeps_the_largest_fall_not_the_latest():
    # Falls: 200 → 100 (100, 50 %), then 300 → 180 (120, 40 %): the max is the larger amount.
    result = drawdowns(curve("200", "100", "300", "180"))
    assert (result.max.amount, result.max.pct, result.max.peak_at) == (D("120"), D("40"), at(2))
    assert result.current.amount == D("120")  # still 120 below the 300 peak


def test_it_moves_the_peak_to_the_later_time_when_equalled():
    result = drawdowns(curve("100", "90", "100", "95"))
    assert (result.current.amount, result.current.peak_at) == (D("5"), at(2))
    assert (result.max.amount, result.max.peak_at) == (D("10"), at(0))


# --- breakdown ------------------------------------------------------------------------------------------
def test_it_breaks_net_pnl_down_by_day_iso_week_and_month():
    days = {
        date(2024, 12, 30): PnL(D("10"), D("-1")),  # a Monday, in ISO week 2025-W01
        date(2025, 1, 1): PnL(D("5"), D("0"), D("-0.5")),  # also 2025-W01; month 2025-01
        date(2025, 1, 6): PnL(D("-2")),  # next Monday: 2025-W02
    }
    assert [(p.label, p.pnl.net) for p in by_day(days)] == [("2025-01-06", D("-2")), ("2025-01-01", D("4.5")),
                                                             ("2024-12-30", D("9"))]
    weeks = by_week(days)
    assert [(p.label, p.start, p.pnl.net) for p in weeks] == [
        ("2025-W02", date(2025, 1, 6), D("-2")),
        ("2025-W01", date(2024, 12, 30), D("13.5")),  # 9 + 4.5
    ]
    assert [(p.label, p.pnl.net) for p in by_month(days)] == [("2025-01", D("2.5")), ("2024-12", D("9"))]  # 4.5 − 2


def test_it_breaks_nothing_down_from_no_days():
    assert by_day({}) == by_week({}) == by_month({}) == []


# --- latency --------------------------------------------------------------------------------------------
def test_it_takes_nearest_rank_percentiles():
    values = [D(n) for n in range(1, 11)]  # 1 … 10
    assert percentile(values, 50) == D(5)  # rank ⌈0.5 × 10⌉ = 5
    assert percentile(values, 95) == D(10)  # rank ⌈9.5⌉ = 10
    assert percentile(values, 99) == D(10)
    assert percentile([D(7)], 50) == D(7)
    assert percentile([], 50) is None


def test_it_measures_latency_per_stage_leaving_skipped_stages_out():
    queue, exchange = LATENCY_STAGES[0], LATENCY_STAGES[3]
    # 20 queue gaps of 1 … 20 ms: p50 rank 10 → 10 ms, p95 rank 19 → 19 ms, p99 rank ⌈19.8⌉ = 20 → 20 ms.
    rows = latency([
        StageSamples(queue, [float(n) for n in range(20, 0, -1)]),
        StageSamples(exchange, [1.25, None, 2000.0]),
    ])
    assert (rows[0].count, rows[0].p50, rows[0].p95, rows[0].p99) == (20, D("10.0"), D("19.0"), D("20.0"))
    # Two values (1.25 ms, shown to 0.1 ms half-even: 1.2; 2000 ms): p50 rank 1, p95 and p99 rank 2.
    assert (rows[1].count, rows[1].p50, rows[1].p95, rows[1].p99) == (2, D("1.2"), D("2000.0"), D("2000.0"))


def test_it_has_no_latency_without_executions():
    rows = latency([StageSamples(stage, []) for stage in LATENCY_STAGES])
    assert [(row.stage.name, row.count, row.p50) for row in rows] == [
        ("queue", 0, None), ("dispatch", 0, None), ("prepare", 0, None), ("exchange", 0, None), ("total", 0, None)]
