"""analytics.replay on hand-computed cases: each trigger at its edge, the arithmetic beside each expectation."""

import time as clock
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from analytics.replay import (
    Alert,
    Bar,
    EquityPoint,
    FundingCharge,
    Settings,
    Trade,
    max_drawdown,
    simulate,
    stats_of,
)
from trading.engine import Intent, Preference
from trading.exchange.base import SymbolRules
from trading.stops import Level, Trailing

T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)
SYMBOL = "BTCUSDT"
RULES = {SYMBOL: SymbolRules(SYMBOL, step_size=D("0.001"), min_qty=D("0.001"), max_qty=D("1000"), tick_size=D("0.1"),
                             min_notional=D("5"))}
SIGNAL = Preference(sizing="signal")  # the alert's quantity, in contracts: hand-computable


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def bar(minute: int, o: str, h: str, low: str, c: str, symbol: str = SYMBOL) -> Bar:
    return Bar(symbol, at(minute), D(o), D(h), D(low), D(c))


def alert(minute: int, action: str, price: str | None = "100", quantity: str | None = "1", *, position: str = "",
          **kwargs) -> Alert:
    intent = Intent(action=action, price=D(price) if price else None, quantity=D(quantity) if quantity else None,
                    market_position=position)
    return Alert(time=at(minute), symbol=SYMBOL, intent=intent, **kwargs)


def settings(**kwargs) -> Settings:
    kwargs.setdefault("preference", SIGNAL)
    kwargs.setdefault("taker_fee", D(0))
    kwargs.setdefault("starting_equity", D(1000))
    return Settings(**kwargs)


def run(alerts, bars, **kwargs):
    return simulate(alerts, {SYMBOL: bars}, settings(**kwargs), RULES)


def summary(result) -> list[tuple[str, str, D, D]]:
    return [(trade.reason, trade.side, trade.quantity, trade.price) for trade in result.trades]


# --- stops and take-profits at their edges ------------------------------------------------------------


def test_a_longs_stop_exactly_at_the_bars_low_triggers_at_the_stop():
    # buy 1 at 100, stop 2 %: 98.0; the bar's low is 98.0.
    result = run([alert(0, "buy")], [bar(1, "100", "101", "98", "99")], stop_loss_pct=D(2))
    assert summary(result) == [("alert buy", "BUY", D(1), D(100)), ("stop-loss", "SELL", D(1), D(98))]
    assert result.trades[-1].realized_pnl == D(-2)
    assert result.open_positions == ()


def test_a_longs_stop_one_tick_below_the_low_does_not_trigger():
    result = run([alert(0, "buy")], [bar(1, "100", "101", "98.1", "99")], stop_loss_pct=D(2))
    assert [trade.reason for trade in result.trades] == ["alert buy"]
    assert result.open_positions[0].amount == D(1)


def test_a_shorts_stop_exactly_at_the_high_triggers():
    # sell 1 at 100, stop 2 %: 102.0.
    result = run([alert(0, "sell")], [bar(1, "100", "101.9", "99", "100"), bar(2, "100", "102", "99", "101")],
                 stop_loss_pct=D(2))
    assert summary(result)[-1] == ("stop-loss", "BUY", D(1), D(102))
    assert result.trades[-1].time == at(2)


def test_a_take_profit_exactly_at_the_high_triggers():
    # take-profit 3 %: 103.0; the first bar reaches 102.9 only.
    result = run([alert(0, "buy")], [bar(1, "100", "102.9", "99", "101"), bar(2, "101", "103", "100", "102")],
                 take_profit_pct=D(3))
    assert summary(result)[-1] == ("take-profit", "SELL", D(1), D(103))
    assert result.trades[-1].realized_pnl == D(3)


def test_a_stop_and_a_take_profit_inside_one_bar_the_stop_fills_first():
    result = run([alert(0, "buy")], [bar(1, "100", "104", "97", "100")], stop_loss_pct=D(2), take_profit_pct=D(3))
    assert summary(result)[1:] == [("stop-loss", "SELL", D(1), D(98))]
    assert result.open_positions == ()


def test_a_bar_that_opens_beyond_the_stop_fills_at_its_open():
    result = run([alert(0, "buy")], [bar(1, "97", "97.5", "96", "97")], stop_loss_pct=D(2))
    assert summary(result)[-1] == ("stop-loss", "SELL", D(1), D(97))


def test_bars_before_the_alert_are_not_played_against_its_position():
    # The minute-0 bar opens with the alert; the one before it (minute −1) dipped to 90.
    result = run([alert(0, "buy")], [bar(-1, "100", "100", "90", "100"), bar(0, "100", "100.5", "99", "100")],
                 stop_loss_pct=D(2))
    assert [trade.reason for trade in result.trades] == ["alert buy"]


def test_the_alerts_stop_loss_and_take_profit_prices_win_over_the_percents():
    result = run([alert(0, "buy", stop_loss=D("95"), take_profits=(D("101"),))],
                 [bar(1, "100", "100.9", "96", "100"), bar(2, "100", "101", "99", "100")],
                 stop_loss_pct=D(2), take_profit_pct=D(3))
    assert summary(result)[-1] == ("take-profit", "SELL", D(1), D(101))


# --- ladder, breakeven, trailing --------------------------------------------------------------------


def test_ladder_levels_close_their_shares_rounded_down_with_the_remainder_on_the_last():
    # 0.111 held: 30 % → 0.0333 → 0.033; 30 % → 0.033; the last takes 0.111 − 0.066 = 0.045.
    ladder = (Level(share=D(30), pct=D(1)), Level(share=D(30), pct=D(2)), Level(share=D(40), pct=D(3)))
    result = run([alert(0, "buy", "1000", "0.111")],
                 [bar(1, "1000", "1010", "1000", "1005"), bar(2, "1005", "1030", "1005", "1020")], ladder=ladder)
    assert summary(result)[1:] == [("take-profit 1", "SELL", D("0.033"), D(1010)),
                                   ("take-profit 2", "SELL", D("0.033"), D(1020)),
                                   ("take-profit 3", "SELL", D("0.045"), D(1030))]
    assert [trade.time for trade in result.trades[1:]] == [at(1), at(2), at(2)]
    assert result.open_positions == ()


def test_breakeven_after_level_1_moves_the_stop_to_the_entry_plus_fees_and_the_rest_closes_there():
    # buy 1 at 100, fee 0.05 %: 0.05. Level 1 (2 %, half) sells 0.5 at 102: fee 0.0255. The stop moves to
    # 100 + (0.05 + 0.0255) / 0.5 = 100.151, on the tick upwards: 100.2. Bar 2 stays a tick above; bar 3 reaches it.
    ladder = (Level(share=D(50), pct=D(2)), Level(share=D(50), pct=D(4)))
    result = run([alert(0, "buy")],
                 [bar(1, "100", "102", "100.5", "101.5"), bar(2, "101.5", "101.6", "100.3", "100.5"),
                  bar(3, "100.5", "100.6", "100.2", "100.4")],
                 ladder=ladder, stop_loss_pct=D(5), breakeven_after=1, taker_fee=D("0.0005"))
    assert summary(result)[1:] == [("take-profit 1", "SELL", D("0.5"), D(102)),
                                   ("breakeven stop", "SELL", D("0.5"), D("100.2"))]
    assert result.trades[-1].time == at(3)
    assert result.trades[-1].realized_pnl == D("0.1")  # (100.2 − 100) × 0.5


def test_breakeven_to_the_previous_level_after_level_2():
    # Levels at 101, 102, 103 (a third each of 0.3); after level 2 the stop goes to level 1's 101.
    ladder = (Level(share=D("33.3"), pct=D(1)), Level(share=D("33.3"), pct=D(2)), Level(share=D("33.4"), pct=D(3)))
    result = run([alert(0, "buy", quantity="0.3")],
                 [bar(1, "100", "101", "100", "100.5"), bar(2, "100.5", "102", "101.5", "101.5"),
                  bar(3, "101.5", "101.5", "101.1", "101.2"), bar(4, "101.2", "101.3", "101", "101")],
                 ladder=ladder, breakeven_after=2, breakeven_to="previous_tp")
    assert summary(result)[1:] == [("take-profit 1", "SELL", D("0.099"), D(101)),
                                   ("take-profit 2", "SELL", D("0.099"), D(102)),
                                   ("breakeven stop", "SELL", D("0.102"), D(101))]
    assert result.trades[-1].time == at(4)


def test_trailing_stop_activates_then_triggers_at_the_callback_from_the_best_price():
    # Activation 2 % from 100: 102. Callback 1 %. Bar 1 drops but is not active; bar 2 activates at its
    # high 105 (trigger 103.95 → 104.0 on the tick, upwards), closing at 104.5 above it; bar 3 checks
    # 104.0 (low 104.9: no), its high 106 moves the trigger to 104.94 → 105.0, and it closes at 105: filled.
    result = run([alert(0, "buy")],
                 [bar(1, "100", "101.9", "95", "100"), bar(2, "100", "105", "100", "104.5"),
                  bar(3, "104.5", "106", "104.9", "105")],
                 trailing=Trailing(callback=D(1), activation_pct=D(2)))
    assert summary(result)[1:] == [("trailing", "SELL", D(1), D(105))]
    assert result.trades[-1].time == at(3)


def test_trailing_stop_active_at_once_triggers_when_the_low_reaches_it():
    # Best from the fill, 100: trigger 99.0; bar 1 makes 101 (trigger 99.99 → 100.0), bar 2's low touches 100.0.
    result = run([alert(0, "buy")],
                 [bar(1, "100", "101", "100.1", "100.9"), bar(2, "100.9", "100.9", "100", "100.2")],
                 trailing=Trailing(callback=D(1)))
    assert summary(result)[1:] == [("trailing", "SELL", D(1), D(100))]
    assert result.trades[-1].time == at(2)


def test_a_shorts_ladder_and_trailing_stop_are_mirrored():
    # short 1 at 100: levels at 98 (half) and 96; trailing 1 % active at once from 100 (trigger 101.0).
    # Bar 1's low 98 fills level 1; the best goes to 98, trigger 98.98 → 98.9 (on the tick, downwards);
    # bar 2 checks 98.9: its high 99 passes it, and the rest (0.5) is bought back at 98.9.
    ladder = (Level(share=D(50), pct=D(2)), Level(share=D(50), pct=D(4)))
    result = run([alert(0, "sell")], [bar(1, "100", "100.5", "98", "98.5"), bar(2, "98.5", "99", "98.2", "98.8")],
                 ladder=ladder, trailing=Trailing(callback=D(1)))
    assert summary(result)[1:] == [("take-profit 1", "BUY", D("0.5"), D(98)), ("trailing", "BUY", D("0.5"), D("98.9"))]
    assert [trade.realized_pnl for trade in result.trades[1:]] == [D(1), D("0.55")]


def test_the_alerts_trail_callback_wins_with_the_settings_activation():
    # The alert's 2 % over the settings' 1 %, activation 1 % (101.0): bar 1 reaches 103 → trigger 100.94 → 101.0,
    # its close 101.5 stays above; bar 2's low 101 reaches it.
    result = run([alert(0, "buy", trail=D(2))], [bar(1, "100", "103", "100", "101.5"), bar(2, "101.5", "102", "101", "101")],
                 trailing=Trailing(callback=D(1), activation_pct=D(1)))
    assert summary(result)[1:] == [("trailing", "SELL", D(1), D(101))]
    assert result.trades[-1].time == at(2)


def test_a_take_profit_gapped_over_fills_at_the_open():
    result = run([alert(0, "buy")], [bar(1, "104", "105", "103.5", "104")], take_profit_pct=D(3))
    assert summary(result)[-1] == ("take-profit", "SELL", D(1), D(104))


def test_an_add_places_the_protection_again_from_the_new_entry():
    # 1 at 100 then 1 at 90: entry 95, the 2 % stop from 98 to 93.1; a low of 93.2 does not reach it.
    result = run([alert(0, "buy"), alert(2, "buy", "90")],
                 [bar(1, "100", "100", "98.1", "99"), bar(3, "93.5", "94", "93.2", "93.5"),
                  bar(4, "93.5", "93.6", "93.1", "93.2")],
                 stop_loss_pct=D(2))
    assert summary(result)[-1] == ("stop-loss", "SELL", D(2), D("93.1"))
    assert result.trades[-1].realized_pnl == D("-3.8")  # (93.1 − 95) × 2


# --- slippage, fees, sizing -------------------------------------------------------------------------


def test_slippage_is_against_the_trader_buys_higher_sells_lower():
    # 10 bps: a buy at 100 fills at 100.1, a sell at 110 at 109.89; a short's entry at 99.9, its cover at 100.1.
    result = run([alert(0, "buy"), alert(1, "close", "110"), alert(2, "sell"), alert(3, "close", "100")], [],
                 slippage_bps=D(10))
    assert [trade.price for trade in result.trades] == [D("100.1"), D("109.89"), D("99.9"), D("100.1")]
    assert [trade.realized_pnl for trade in result.trades] == [D(0), D("9.79"), D(0), D("-0.2")]


def test_a_stop_fills_at_the_stop_less_slippage():
    result = run([alert(0, "buy")], [bar(1, "100", "101", "98", "99")], stop_loss_pct=D(2), slippage_bps=D(10))
    # The entry filled at 100.1: its stop 98.098 → 98.1 on the tick (upwards); the sell fills at 98.1 × 0.999.
    assert result.trades[0].price == D("100.1")
    assert result.trades[-1].price == D("98.0019")


def test_fees_are_the_fill_notional_times_the_taker_rate():
    # buy 2 at 100: 0.08; sell 2 at 110: 0.088. Realized 20; the closing fill's net 20 − 0.088 − 0.08.
    result = run([alert(0, "buy", quantity="2"), alert(1, "close", "110")], [], taker_fee=D("0.0004"))
    assert [trade.fee for trade in result.trades] == [D("0.08"), D("0.088")]
    assert result.trades[-1].net_pnl == D("19.832")
    assert result.stats.fees == D("0.168")
    assert result.stats.net_pnl == D("19.832")
    assert result.final_balance == D("1019.832")


def test_sizing_follows_the_equity_after_a_loss():
    # 10 % of 1000 at 100: 1.000. The 10 % stop loses 10: 990 → 10 % at 100 is 0.990.
    allocation = Preference(sizing="allocation", allocation_pct=D(10))
    result = run([alert(0, "buy", quantity=None), alert(5, "buy", quantity=None)],
                 [bar(1, "100", "100", "90", "95"), bar(4, "95", "100", "95", "100")],
                 preference=allocation, stop_loss_pct=D(10))
    assert summary(result) == [("alert buy", "BUY", D(1), D(100)), ("stop-loss", "SELL", D(1), D(90)),
                               ("alert buy", "BUY", D("0.99"), D(100))]


def test_sizing_counts_the_open_positions_unrealized_pnl():
    # Long 1 from 100 of ETH, whose last close is 150: equity 1000 + 50; 10 % at 100 on BTC → 1.050.
    allocation = Preference(sizing="allocation", allocation_pct=D(10))
    eth = SymbolRules("ETHUSDT", D("0.001"), D("0.001"), D(1000), D("0.1"), D(5))
    eth_alert = Alert(at(0), "ETHUSDT", Intent("buy", price=D(100)))  # 10 % of 1000 at 100: 1.000
    result = simulate([eth_alert, alert(3, "buy", quantity=None)],
                      {"ETHUSDT": [Bar("ETHUSDT", at(1), D(100), D(150), D(100), D(150))]},
                      settings(preference=allocation), {**RULES, "ETHUSDT": eth})
    assert [trade.quantity for trade in result.trades] == [D(1), D("1.05")]


def test_a_reversal_alert_closes_the_long_and_opens_the_short_and_protects_the_short():
    # long 1 at 100; a sell to short at 110: close 1 (+10), open 1 short; its 2 % stop: 112.2.
    result = run([alert(0, "buy"), alert(5, "sell", "110", position="short")],
                 [bar(6, "110", "112.1", "109", "111"), bar(7, "111", "112.2", "110", "112")], stop_loss_pct=D(2))
    assert summary(result) == [("alert buy", "BUY", D(1), D(100)), ("alert sell", "SELL", D(1), D(110)),
                               ("alert sell", "SELL", D(1), D(110)), ("stop-loss", "BUY", D(1), D("112.2"))]
    assert [trade.realized_pnl for trade in result.trades] == [D(0), D(10), D(0), D("-2.2")]
    assert [trade.amount_after for trade in result.trades] == [D(1), D(0), D(-1), D(0)]


def test_a_close_alert_when_flat_does_nothing():
    result = run([alert(0, "close")], [bar(0, "100", "100", "100", "100")])
    assert result.trades == ()
    assert result.decisions[0].outcome == "nothing"
    assert result.final_balance == D(1000)


def test_an_alert_without_a_price_fills_at_the_last_closed_bar():
    result = run([alert(2, "buy", None)], [bar(0, "99", "99", "99", "99.5"), bar(1, "99", "101", "99", "100.5"),
                                           bar(2, "100", "200", "100", "150")])
    assert result.trades[0].price == D("100.5")  # the minute-1 bar ended at the alert; minute 2's is the future


def test_hedge_mode_holds_both_sides_each_with_its_own_stop():
    result = run([alert(0, "buy"), alert(0, "sell")], [bar(1, "100", "102", "99", "101")], hedge_mode=True,
                 stop_loss_pct=D(2))
    assert [(trade.position_side, trade.reason, trade.price) for trade in result.trades] == [
        ("LONG", "alert buy", D(100)), ("SHORT", "alert sell", D(100)), ("SHORT", "stop-loss", D(102))]
    assert [(p.position_side, p.amount) for p in result.open_positions] == [("LONG", D(1))]


def test_funding_charges_the_long_at_the_rate():
    # long 1 at 100; funding 0.01 % at the minute-2 open 110: pays 0.011.
    result = simulate([alert(0, "buy")], {SYMBOL: [bar(2, "110", "110", "110", "110")]}, settings(), RULES,
                      [FundingCharge(SYMBOL, at(2), D("0.0001"))])
    assert result.stats.funding == D("-0.011")
    assert result.stats.net_pnl == D("-0.011")
    assert result.equity_curve[-1] == EquityPoint(at(2), D("999.989"))


def test_funding_pays_a_short_at_a_positive_rate_at_the_charges_mark_price():
    result = simulate([alert(0, "sell")], {SYMBOL: []}, settings(), RULES,
                      [FundingCharge(SYMBOL, at(480), D("0.0001"), mark_price=D(120))])
    assert result.stats.funding == D("0.012")  # −(−1) × 120 × 0.0001


def test_an_alert_for_a_symbol_without_rules_is_refused_up_front():
    try:
        simulate([Alert(T0, "XRPUSDT", Intent("buy", price=D(1)))], {}, settings(), RULES)
    except ValueError as error:
        assert "XRPUSDT" in str(error)
    else:
        raise AssertionError("no ValueError")


# --- stats ------------------------------------------------------------------------------------------


def closing(net: str) -> Trade:
    return Trade(time=T0, symbol=SYMBOL, position_side="BOTH", side="SELL", quantity=D(1), price=D(100), fee=D(0),
                 realized_pnl=D(net), net_pnl=D(net), reason="alert sell", closes=True, amount_after=D(0))


def test_win_rate_and_profit_factor():
    stats = stats_of([closing("30"), closing("10"), closing("-20")], [])
    assert (stats.trades, stats.wins, stats.losses) == (3, 2, 1)
    assert stats.win_rate == D(2) / D(3) * 100
    assert stats.profit_factor == D(2)  # 40 ÷ 20
    assert (stats.gross_profit, stats.gross_loss, stats.net_pnl) == (D(40), D(-20), D(20))


def test_profit_factor_is_none_without_a_loss():
    stats = stats_of([closing("5")], [])
    assert stats.profit_factor is None
    assert stats.win_rate == D(100)


def test_max_drawdown_on_a_known_curve():
    # Peak 120 → 90: 30 (25 %); the later peak 130 → 117: 13 (10 %).
    assert max_drawdown([D(100), D(120), D(90), D(130), D(117)]) == (D(30), D(25))
    assert max_drawdown([D(100), D(110)]) == (D(0), D(0))
    curve = [EquityPoint(T0, D(v)) for v in (100, 120, 90)]
    stats = stats_of([], curve)
    assert (stats.max_drawdown, stats.max_drawdown_pct) == (D(30), D(25))


# --- a whole sequence, by hand ----------------------------------------------------------------------


def test_a_sequence_reproduces_the_hand_computed_numbers_exactly():
    # fee 0.05 %, no slippage, stop 5 %, take-profit 10 %.
    # m0 buy 1 at 100 (fee 0.05): stop 95, tp 110. m2 add 1 at 110 (fee 0.055): entry 105, stop 99.75 →
    # 99.8 on the tick (upwards), tp 115.5. m4's high 115.5: sell 2 at 115.5, realized 21, fee 0.1155.
    # m6 short 1 at 120 (fee 0.06): stop 126, tp 108. m8 close at 118 (fee 0.059): realized 2.
    alerts = [alert(0, "buy"), alert(2, "buy", "110"), alert(6, "sell", "120"), alert(8, "close", "118")]
    bars = [bar(1, "100", "109.9", "95.1", "105"), bar(3, "110", "115.4", "99.9", "112"),
            bar(4, "112", "115.5", "111", "115"), bar(5, "115", "200", "1", "120"), bar(7, "120", "125.9", "108.1", "119")]
    result = run(alerts, bars, stop_loss_pct=D(5), take_profit_pct=D(10), taker_fee=D("0.0005"))
    assert summary(result) == [("alert buy", "BUY", D(1), D(100)), ("alert buy", "BUY", D(1), D(110)),
                               ("take-profit", "SELL", D(2), D("115.5")), ("alert sell", "SELL", D(1), D(120)),
                               ("alert buy", "BUY", D(1), D(118))]
    assert [trade.fee for trade in result.trades] == [D("0.05"), D("0.055"), D("0.1155"), D("0.06"), D("0.059")]
    assert [trade.realized_pnl for trade in result.trades] == [D(0), D(0), D(21), D(0), D(2)]
    assert [trade.net_pnl for trade in result.trades] == [D(0), D(0), D("20.7795"), D(0), D("1.881")]
    assert [point.equity for point in result.equity_curve] == [
        D(1000), D("999.95"), D("999.895"), D("1020.7795"), D("1020.7195"), D("1022.6605")]
    stats = result.stats
    assert (stats.net_pnl, stats.fees, stats.trades, stats.wins, stats.losses) == (D("22.6605"), D("0.3395"), 2, 2, 0)
    assert stats.win_rate == D(100) and stats.profit_factor is None
    assert (stats.max_drawdown, stats.max_drawdown_pct) == (D("0.105"), D("0.0105"))
    assert result.open_positions == ()


# --- performance ------------------------------------------------------------------------------------


def test_a_month_of_bars_for_ten_symbols_and_a_thousand_alerts_runs_quickly():
    minutes = 30 * 24 * 60
    symbols = [f"S{n}USDT" for n in range(10)]
    rules = {s: SymbolRules(s, D("0.001"), D("0.001"), D(100000), D("0.01"), D(5)) for s in symbols}
    prices = [D(1000 + (i % 600) - 300 if (i // 600) % 2 == 0 else 1000 + 300 - (i % 600)) for i in range(minutes)]
    one, two = D(1), D(2)
    bars = {s: [Bar(s, at(i), p, p + one, p - two, p) for i, p in enumerate(prices)] for s in symbols}
    alerts = []
    for n in range(1000):  # 100 per symbol, every 432 minutes: buys and sells in turn, each reversing the last
        s = symbols[n % 10]
        minute = (n // 10) * 432 + n % 10
        alerts.append(Alert(at(minute), s, Intent("buy" if (n // 10) % 2 == 0 else "sell", price=prices[minute])))
    # Every bar in a position is played: a stop and a take-profit rest all along, and a trailing stop
    # active from the fill moves with every bar and triggers on the way back (the wave spans 698–1301).
    chosen = Settings(preference=Preference(sizing="allocation"), stop_loss_pct=D(50), take_profit_pct=D(100),
                      trailing=Trailing(callback=D(10)), slippage_bps=D(2), taker_fee=D("0.0004"),
                      starting_equity=D(10000))
    started = clock.perf_counter()
    result = simulate(alerts, bars, chosen, rules)
    elapsed = clock.perf_counter() - started
    print(f"replay: 1000 alerts, 10 × {minutes} bars, {len(result.trades)} fills in {elapsed:.2f} s")
    assert len([trade for trade in result.trades if trade.reason.startswith("alert")]) >= 1000
    assert any(trade.reason == "trailing" for trade in result.trades)
    assert elapsed < 20
