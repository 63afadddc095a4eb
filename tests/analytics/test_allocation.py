"""analytics.allocation: open notional per strategy, hand-computed."""

from decimal import Decimal as D

from analytics.allocation import UNATTRIBUTED, Allocation, Holding, allocation_by_strategy


def test_it_sums_absolute_notional_per_strategy_largest_first():
    rows = allocation_by_strategy([
        Holding("BTCUSDT", D("0.1"), D("45000"), "TREND"),  # 4500
        Holding("ETHUSDT", D("-2"), D("2500"), "ALSAPRO 1"),  # a short counts by its size: 5000
        Holding("SOLUSDT", D("10"), D("150"), "TREND"),  # 1500
    ])
    assert rows == [
        Allocation("TREND", D("6000.0"), D("54.5"), ("BTCUSDT", "SOLUSDT")),  # 6000 ÷ 11000
        Allocation("ALSAPRO 1", D("5000"), D("45.5"), ("ETHUSDT",)),
    ]


def test_it_puts_a_position_no_strategy_traded_apart():
    rows = allocation_by_strategy([Holding("BTCUSDT", D("1"), D("100"), ""), Holding("ETHUSDT", D("1"), D("300"), "S1")])
    assert [(row.strategy, row.share_pct) for row in rows] == [("S1", D("75.0")), (UNATTRIBUTED, D("25.0"))]


def test_it_counts_both_sides_of_a_hedged_symbol_once_in_its_symbols():
    [row] = allocation_by_strategy([Holding("BTCUSDT", D("1"), D("10"), "S1"), Holding("BTCUSDT", D("-1"), D("10"), "S1")])
    assert (row.notional, row.share_pct, row.symbols) == (D("20"), D("100.0"), ("BTCUSDT",))


def test_it_is_empty_without_open_notional():
    assert allocation_by_strategy([]) == []
    assert allocation_by_strategy([Holding("BTCUSDT", D("1"), None, "S1")]) == []
