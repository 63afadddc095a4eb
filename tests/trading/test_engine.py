"""engine.plan is pure: every case is values in, legs out, no database."""

from decimal import Decimal

import pytest

from trading.engine import Book, Intent, Leg, Outcome, Plan, Preference, plan
from trading.exchange.rules import bundled_rules_for

D = Decimal
BTC = bundled_rules_for("BTCUSDT")  # step 0.001, min notional 100


def run(action: str, *, book: Book = Book(), preference: Preference = Preference(), price: str | None = "45000",
        equity: str | None = "10000", quantity: str | None = None, market_position: str = "", rules=BTC,
        mark: str | None = None):
    intent = Intent(action=action, quantity=D(quantity) if quantity else None, price=D(price) if price else None,
                    market_position=market_position)
    return plan(intent=intent, preference=preference, book=book, rules=rules,
                mark=D(mark) if mark else None, equity=D(equity) if equity else None)


def test_it_sizes_the_seed_example_from_allocation_equity_and_leverage():
    # 10% of 10,000 USDT × 5x ÷ 45,000 = 0.1111… → 0.111 (rounded down to the 0.001 step)
    result = run("buy", preference=Preference(allocation_pct=D(10), leverage=5))
    assert result.outcome == "trade"
    assert result.legs == (Leg("open", "BUY", D("0.111"), False, "BOTH"),)
    assert result.sizing["quantity"] == "0.111" and result.sizing["equity"] == "10000"


def test_it_uses_the_signal_quantity_rounded_down_in_signal_mode():
    result = run("sell", preference=Preference(sizing="signal"), quantity="0.0279")
    assert result.legs == (Leg("open", "SELL", D("0.027"), False, "BOTH"),)


def test_it_refuses_signal_sizing_without_a_quantity():
    result = run("buy", preference=Preference(sizing="signal"))
    assert result.outcome == "refused" and "no quantity" in result.reason


def test_it_adds_to_a_position_in_the_same_direction():
    result = run("buy", book=Book(long=D("0.01")), preference=Preference(leverage=5))
    assert result.legs == (Leg("add", "BUY", D("0.111"), False, "BOTH"),)


@pytest.mark.parametrize("action", ["close", "close_long"])
def test_it_closes_the_whole_long_with_one_reduce_only_order(action):
    result = run(action, book=Book(long=D("0.123")))
    assert result.legs == (Leg("close", "SELL", D("0.123"), True, "BOTH"),)


def test_it_closes_a_short_on_a_flat_market_position_buy():
    result = run("buy", book=Book(short=D("0.5")), market_position="flat")
    assert result.legs == (Leg("close", "BUY", D("0.5"), True, "BOTH"),)


@pytest.mark.parametrize("action", ["close", "close_short"])
def test_it_has_nothing_to_do_when_closing_without_a_position(action):
    result = run(action)
    assert result.outcome == "nothing" and result.legs == ()
    assert "nothing to close" in result.reason


def test_it_reverses_a_long_into_a_short_when_both_directions_are_allowed():
    result = run("sell", book=Book(long=D("0.02")), preference=Preference(leverage=5))
    assert result.legs == (
        Leg("close", "SELL", D("0.02"), True, "BOTH"),
        Leg("open", "SELL", D("0.111"), False, "BOTH"),
    )
    assert result.reason.startswith("reverse to short")


def test_it_only_closes_on_an_opposite_signal_for_a_one_direction_strategy():
    result = run("sell", book=Book(long=D("0.02")), preference=Preference(direction="long"))
    assert result.legs == (Leg("close", "SELL", D("0.02"), True, "BOTH"),)
    assert "long only" in result.reason


def test_it_filters_a_sell_on_a_long_only_strategy_when_flat():
    result = run("sell", preference=Preference(direction="long"))
    assert result.outcome == "filtered" and result.legs == ()
    assert "long only" in result.reason


def test_it_filters_a_buy_on_a_short_only_strategy_when_flat():
    assert run("buy", preference=Preference(direction="short")).outcome == "filtered"


def test_it_refuses_an_order_below_the_minimum_notional_and_says_by_how_much():
    result = run("buy", preference=Preference(allocation_pct=D("0.5")))  # 50 USDT at 1x: 0.001 BTC = 45 USDT
    assert result.outcome == "refused" and result.legs == ()
    assert "below BTCUSDT's minimum of 100 USDT" in result.reason and "short by 55.00" in result.reason


def test_it_refuses_a_quantity_that_rounds_down_to_nothing():
    result = run("buy", preference=Preference(sizing="signal"), quantity="0.0009")
    assert result.outcome == "refused" and "below BTCUSDT's minimum of 0.001" in result.reason


def test_it_still_closes_when_the_reversal_leg_is_too_small():
    result = run("sell", book=Book(long=D("0.02")), preference=Preference(allocation_pct=D("0.1")))
    assert result.legs == (Leg("close", "SELL", D("0.02"), True, "BOTH"),)
    assert "was not opened" in result.reason


def test_it_closes_a_remainder_below_the_minimum_notional():
    # Binance exempts reduce-only orders from the minimum notional: a dust position can still close.
    assert run("close", book=Book(long=D("0.001"))).legs == (Leg("close", "SELL", D("0.001"), True, "BOTH"),)


def test_it_uses_position_sides_and_no_reduce_only_in_hedge_mode():
    # Hedge mode: a sell opens the short beside the long (issue #19), it does not reverse the long.
    result = run("sell", book=Book(long=D("0.02"), hedge_mode=True), preference=Preference(leverage=5))
    assert result.legs == (Leg("open", "SELL", D("0.111"), False, "SHORT"),)


def test_it_closes_both_sides_in_hedge_mode():
    result = run("close", book=Book(long=D("1"), short=D("2"), hedge_mode=True))
    assert [(leg.side, leg.position_side, leg.quantity) for leg in result.legs] == [
        ("SELL", "LONG", D("1")), ("BUY", "SHORT", D("2"))
    ]


def test_it_refuses_allocation_sizing_without_a_price():
    result = run("buy", price=None)
    assert result.outcome == "refused" and "no price" in result.reason


def test_it_rounds_down_on_coarse_steps():
    doge = bundled_rules_for("DOGEUSDT")  # step 1
    result = run("buy", rules=doge, price="0.1234", preference=Preference(allocation_pct=D("1")))  # 100 USDT / 0.1234
    assert result.legs[0].quantity == D("810")


# --- the price an entry is sized at (finding 9) ------------------------------------------------------
def test_it_sizes_at_the_alerts_price_within_the_tolerance_of_the_mark():
    result = run("buy", price="45900", mark="45000", preference=Preference(leverage=5))  # 2% off
    assert result.price == D("45900") and "mark price" not in result.reason


@pytest.mark.parametrize("alert", ["450000", "45", "45000000"])
def test_it_sizes_at_the_mark_price_when_the_alerts_price_is_mis_scaled(alert):
    result = run("buy", price=alert, mark="45000", preference=Preference(leverage=5))
    assert result.outcome == "trade" and result.price == D("45000")
    assert result.legs[0].quantity == D("0.111")  # 10% × 10,000 × 5 ÷ 45,000, not ÷ the alert's price
    assert f"the alert's price {alert} is" in result.reason and "sized at the mark price" in result.reason


def test_it_takes_each_strategys_own_price_tolerance():
    loose = Preference(price_tolerance_pct=D(20))
    assert run("buy", price="50000", mark="45000", preference=loose).price == D("50000")  # 11% off
    assert run("buy", price="50000", mark="45000").price == D("45000")


def test_it_sizes_at_the_mark_price_when_the_alert_has_none():
    assert run("buy", price=None, mark="45000").price == D("45000")


# --- boundaries (finding 11) ----------------------------------------------------------------------
def test_it_sends_an_order_at_exactly_the_minimum_notional():
    # signal sizing 0.002 BTC at 50,000 = exactly 100 USDT, BTCUSDT's minimum
    result = run("buy", price="50000", quantity="0.002", preference=Preference(sizing="signal"))
    assert result.outcome == "trade" and result.legs[0].quantity == D("0.002")


def test_it_refuses_an_order_a_step_below_the_minimum_notional():
    result = run("buy", price="49999.9", quantity="0.002", preference=Preference(sizing="signal"))
    assert result.outcome == "refused" and "below BTCUSDT's minimum of 100 USDT" in result.reason


def test_it_sends_an_order_at_exactly_the_market_lot_maximum():
    result = run("buy", quantity=str(BTC.max_qty), price="45000", equity="100000000", preference=Preference(sizing="signal"))
    assert result.outcome == "trade" and result.legs[0].quantity == BTC.max_qty


def test_it_refuses_an_order_a_step_above_the_market_lot_maximum():
    result = run("buy", quantity=str(BTC.max_qty + BTC.step_size), preference=Preference(sizing="signal"))
    assert result.outcome == "refused" and "market-order maximum" in result.reason


def test_it_refuses_zero_equity_with_its_own_reason():
    result = run("buy", equity="0")
    assert result.outcome == "refused" and "account equity is 0 USDT: nothing to allocate" in result.reason


def test_it_refuses_unknown_equity_with_its_own_reason():
    result = run("buy", equity=None)
    assert result.outcome == "refused" and "equity is not known" in result.reason


# --- closes beyond the market-lot maximum, rounding, the stored plan (finding 10) ------------------
def test_it_splits_a_close_larger_than_the_market_lot_maximum():
    held = BTC.max_qty * 2 + D("0.5")
    result = run("close", book=Book(long=held))
    assert [leg.quantity for leg in result.legs] == [BTC.max_qty, BTC.max_qty, D("0.5")]
    assert all(leg.reduce_only and leg.side == "SELL" and leg.purpose == "close" for leg in result.legs)


def test_it_never_rounds_a_quantity_of_many_digits_up():
    huge = D("12345678901234567890.123456789")  # 29 significant digits: past Decimal's default precision
    assert BTC.round_quantity(huge) == D("12345678901234567890.123")
    assert BTC.round_quantity(D("0.99999999999999999999999999999")) == D("0.999")


def test_it_formats_a_quantity_to_the_symbols_step_for_the_wire():
    assert BTC.format_quantity(D("0.1110000000")) == "0.111"
    assert bundled_rules_for("DOGEUSDT").format_quantity(D("40518.0000000000")) == "40518"


def test_it_reads_a_stored_plan_back_as_the_same_plan():
    result = run("sell", book=Book(long=D("0.2")), mark="45000", preference=Preference(leverage=5))
    again = Plan.from_dict(result.as_dict())
    assert again == result and again.outcome is Outcome.TRADE and again.opens


# --- missed alerts (issue #10) -------------------------------------------------------------------------
def test_it_flags_an_alert_whose_previous_position_disagrees_with_ours():
    intent_book = Book(long=D("0.111"))
    result = plan(intent=Intent(action="buy", price=D("45000"), prev_market_position="flat"), preference=Preference(),
                  book=intent_book, rules=BTC, mark=None, equity=D("10000"))
    assert result.mismatch == ("the alert says the strategy was flat before this order, but our position is long 0.111: "
                               "an earlier alert may have been missed")
    assert result.outcome == "trade" and result.legs[0].purpose == "add"  # without sync_to_alert: the delta


def test_it_does_not_flag_an_alert_that_agrees_or_says_nothing():
    for prev, book in (("long", Book(long=D("0.1"))), ("flat", Book()), ("", Book(long=D("0.1")))):
        result = plan(intent=Intent(action="buy", price=D("45000"), prev_market_position=prev), preference=Preference(),
                      book=book, rules=BTC, mark=None, equity=D("10000"))
        assert result.mismatch == "", prev


def test_it_trades_to_the_alerts_position_with_sync_to_alert():
    result = plan(intent=Intent(action="buy", price=D("45000"), prev_market_position="flat"),
                  preference=Preference(sync_to_alert=True), book=Book(long=D("0.111")), rules=BTC, mark=None,
                  equity=D("10000"))
    assert result.outcome == "nothing" and result.legs == ()
    assert "the alert's position (long) is reached" in result.reason and result.mismatch


SYNC = Preference(sync_to_alert=True, sizing="signal")


def synced(book: Book, *, action: str = "buy", position_size: str, prev: str = "flat", quantity: str = "0.01",
           preference: Preference = SYNC) -> Plan:
    intent = Intent(action=action, quantity=D(quantity), price=D("45000"), prev_market_position=prev,
                    position_size=D(position_size))
    return plan(intent=intent, preference=preference, book=book, rules=BTC, mark=None, equity=D("10000"))


@pytest.mark.parametrize(("book", "position_size", "legs"), [
    # A missed entry: the alert's buy of 0.01 leads to long 0.03; we are flat → buy 0.03, not 0.01.
    (Book(), "0.03", [("open", "BUY", "0.03", False)]),
    # We hold long 0.01 (an add was missed): trade the difference to 0.03.
    (Book(long=D("0.01")), "0.03", [("add", "BUY", "0.02", False)]),
    # A missed exit left us long 0.05 against the alert's 0.03: reduce, reduce-only.
    (Book(long=D("0.05")), "0.03", [("close", "SELL", "0.02", True)]),
    # A missed reversal left us short: close it all, then open the stated long.
    (Book(short=D("0.02")), "0.03", [("close", "BUY", "0.02", True), ("open", "BUY", "0.03", False)]),
    # A sell to short 0.04 while we are long 0.01.
    (Book(long=D("0.01")), "-0.04", [("close", "SELL", "0.01", True), ("open", "SELL", "0.04", False)]),
])
def test_with_sync_to_alert_the_order_reaches_the_alerts_stated_position(book, position_size, legs):
    action = "sell" if position_size.startswith("-") else "buy"
    result = synced(book, action=action, position_size=position_size)
    assert result.outcome == "trade", result.reason
    assert [(leg.purpose, leg.side, format(leg.quantity.normalize(), "f"), leg.reduce_only) for leg in result.legs] == legs
    assert "sync to alert" in result.reason


def test_sync_to_alert_at_the_stated_position_sends_nothing():
    result = synced(Book(long=D("0.03")), position_size="0.03", prev="long")
    assert result.outcome == "nothing" and "already long 0.03" in result.reason


def test_sync_to_alert_still_obeys_the_limits_for_what_it_opens():
    limited = Preference(sync_to_alert=True, sizing="signal", opens_refused="trading is halted")
    result = synced(Book(short=D("0.02")), position_size="0.03", preference=limited)
    assert [leg.purpose for leg in result.legs] == ["close"] and "trading is halted" in result.reason


def test_without_sync_to_alert_the_delta_is_traded():
    result = synced(Book(long=D("0.01")), position_size="0.03", preference=Preference(sizing="signal"))
    assert [(leg.purpose, leg.quantity) for leg in result.legs] == [("add", D("0.01"))]


# --- protective orders' trigger prices (issue #10) ---------------------------------------------------
def test_it_sets_triggers_from_percents_rounded_towards_the_price():
    from trading.stops import Protection, protections_for

    long = protections_for(amount=D("0.1"), entry=D("45000.05"), tick=BTC.tick_size, stop_loss_pct=D("2"),
                           take_profit_pct=D("3"))
    # 45000.05 × 0.98 = 44100.049 → up to 44100.1; × 1.03 = 46350.0515 → down to 46350.0
    assert long.protections == (Protection("stop_loss", "SELL", D("44100.1")), Protection("take_profit", "SELL", D("46350.0")))
    short = protections_for(amount=D("-0.1"), entry=D("45000.05"), tick=BTC.tick_size, stop_loss_pct=D("2"),
                            take_profit_pct=D("3"))
    # × 1.02 = 45900.051 → down to 45900.0; × 0.97 = 43650.0485 → up to 43650.1
    assert short.protections == (Protection("stop_loss", "BUY", D("45900.0")), Protection("take_profit", "BUY", D("43650.1")))


def test_the_alerts_prices_win_and_a_wrong_side_price_is_refused():
    from trading.stops import protections_for

    wanted = protections_for(amount=D("0.1"), entry=D("45000"), tick=BTC.tick_size, stop_loss_pct=D("2"),
                             take_profit_pct=None, sl_price=D("44000.04"), tp_price=D("44000"))
    assert [(p.kind, p.trigger) for p in wanted.protections] == [("stop_loss", D("44000.1"))]
    assert wanted.problems == ("no take-profit placed: its trigger 44000 is not above the long's entry 45000",)
    assert protections_for(amount=D("0"), entry=D("45000"), tick=BTC.tick_size, stop_loss_pct=D("2"),
                           take_profit_pct=D("2")).protections == ()


# --- hedge mode (issue #19) ------------------------------------------------------------------------
HEDGED = Book(long=D("0.2"), short=D("0.3"), hedge_mode=True)


def hedged(action: str, *, book: Book = HEDGED, preference: Preference = Preference(leverage=5),
           market_position: str = "", prev_market_position: str = ""):
    intent = Intent(action=action, price=D("45000"), market_position=market_position,
                    prev_market_position=prev_market_position)
    return plan(intent=intent, preference=preference, book=book, rules=BTC, mark=None, equity=D("10000"))


def test_in_hedge_mode_a_buy_adds_to_the_long_and_leaves_the_short_open():
    result = hedged("buy")
    assert result.legs == (Leg("add", "BUY", D("0.111"), False, "LONG"),)
    assert result.reason == "add long 0.111; the short 0.3 stays open (hedge mode)"


def test_in_hedge_mode_a_sell_opens_the_short_beside_the_long():
    result = hedged("sell", book=Book(long=D("0.2"), hedge_mode=True))
    assert result.legs == (Leg("open", "SELL", D("0.111"), False, "SHORT"),)
    assert result.reason == "open short 0.111; the long 0.2 stays open (hedge mode)"


def test_in_hedge_mode_an_entry_with_the_other_side_flat_says_nothing_of_it():
    assert hedged("sell", book=Book(hedge_mode=True)).reason == "open short 0.111"


@pytest.mark.parametrize("action, legs", [
    ("close_long", [("SELL", "LONG", D("0.2"))]),
    ("close_short", [("BUY", "SHORT", D("0.3"))]),
    ("close", [("SELL", "LONG", D("0.2")), ("BUY", "SHORT", D("0.3"))]),
])
def test_in_hedge_mode_each_side_closes_on_its_own_without_reduce_only(action, legs):
    result = hedged(action)
    assert [(leg.side, leg.position_side, leg.quantity) for leg in result.legs] == legs
    assert all(leg.purpose == "close" and not leg.reduce_only for leg in result.legs)


@pytest.mark.parametrize("action, closed", [("sell", ("SELL", "LONG", D("0.2"))), ("buy", ("BUY", "SHORT", D("0.3")))])
def test_in_hedge_mode_a_flat_market_position_closes_the_side_the_alert_exits(action, closed):
    # TradingView's exit of a long is a sell reporting market_position flat: it closes the long only.
    result = hedged(action, market_position="flat")
    assert [(leg.side, leg.position_side, leg.quantity) for leg in result.legs] == [closed]


def test_in_hedge_mode_a_flat_sell_with_no_long_has_nothing_to_close_and_keeps_the_short():
    result = hedged("sell", book=Book(short=D("0.3"), hedge_mode=True), market_position="flat")
    assert result.outcome == "nothing" and result.reason == "nothing to close: there is no long position open"


def test_in_hedge_mode_an_alert_that_was_on_the_other_side_reverses():
    # The strategy was long before this sell (TradingView holds one position): its long is over.
    result = hedged("sell", prev_market_position="long")
    assert result.legs == (Leg("close", "SELL", D("0.2"), False, "LONG"), Leg("add", "SELL", D("0.111"), False, "SHORT"))


def test_in_hedge_mode_an_alert_that_was_flat_before_leaves_the_other_side():
    result = hedged("sell", book=Book(long=D("0.2"), hedge_mode=True), prev_market_position="flat")
    assert result.legs == (Leg("open", "SELL", D("0.111"), False, "SHORT"),)


def test_in_hedge_mode_a_one_direction_strategy_exits_with_its_opposite_signal():
    result = hedged("sell", preference=Preference(direction="long"))
    assert result.legs == (Leg("close", "SELL", D("0.2"), False, "LONG"),)
    assert hedged("sell", book=Book(hedge_mode=True), preference=Preference(direction="long")).outcome == "filtered"


def test_in_hedge_mode_a_refused_open_does_not_touch_the_other_side():
    result = hedged("sell", preference=Preference(opens_refused="the kill switch is on"))
    assert result.outcome == "refused" and result.legs == ()


def test_in_hedge_mode_the_position_cap_counts_the_sides_own_size():
    # 0.111 more long at 45,000 = 4,995 USDT: the short's 0.3 (13,500 USDT) is another position.
    assert hedged("buy", book=Book(short=D("0.3"), hedge_mode=True),
                  preference=Preference(leverage=5, max_position_usdt=D("4995"))).outcome == "trade"
    assert hedged("buy", book=Book(long=D("0.001"), short=D("0.3"), hedge_mode=True),
                  preference=Preference(leverage=5, max_position_usdt=D("4995"))).outcome == "refused"


def test_in_hedge_mode_an_alert_from_either_held_side_is_no_mismatch():
    assert hedged("buy", prev_market_position="long").mismatch == ""
    assert "long and short" in hedged("buy", prev_market_position="flat").mismatch
