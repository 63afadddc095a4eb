"""Sizing a trader can predict: auto, allocation, signal and risk sizing, the alert's quantity type, and
the position cap. Pure cases first (engine.plan, no database), then the same through the real webhook
against the fake Binance server."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from trading.engine import Book, Intent, Leg, Preference, needs_equity, plan
from trading.exchange.rules import bundled_rules_for
from trading.models import Execution, Signal
from trading.webhook import RATE_LIMITER

D = Decimal
BTC = bundled_rules_for("BTCUSDT")  # step 0.001, min qty 0.001, min notional 100
PASSPHRASE = "test-passphrase-0123456789"


def run(action: str = "buy", *, preference: Preference = Preference(), book: Book = Book(), price: str = "50000",
        equity: str | None = "10000", quantity: str | None = None, quantity_type: str = "", sl: str | None = None):
    intent = Intent(action=action, quantity=D(quantity) if quantity else None, quantity_type=quantity_type,
                    price=D(price), stop_loss=D(sl) if sl else None)
    return plan(intent=intent, preference=preference, book=book, rules=BTC, mark=None,
                equity=D(equity) if equity else None)


# --- auto ----------------------------------------------------------------------------------------------
def test_it_trades_the_alerts_quantity_in_auto_sizing():
    result = run(quantity="0.002")
    assert result.legs == (Leg("open", "BUY", D("0.002"), False, "BOTH"),)
    assert result.sizing["mode"] == "auto: the alert's quantity" and result.sizing["quantity"] == "0.002"


def test_it_sizes_by_allocation_in_auto_sizing_when_the_alert_has_no_quantity():
    # 10 % of 10,000 × 1× ÷ 50,000 = 0.02
    result = run(preference=Preference(allocation_pct=D(10)))
    assert result.legs[0].quantity == D("0.02") and result.sizing["mode"] == "allocation"


def test_it_is_the_default_sizing():
    assert Preference().sizing == "auto"
    assert StrategyPreference(name="new").sizing == "auto"


def test_it_says_the_alerts_quantity_was_not_used_in_allocation_sizing():
    result = run(preference=Preference(sizing="allocation"), quantity="0.001")
    assert result.legs[0].quantity == D("0.02")
    assert "alert quantity 0.001 not used: this strategy sizes by allocation" in result.reason


def test_it_says_nothing_of_a_quantity_the_alert_did_not_carry():
    assert "not used" not in run(preference=Preference(sizing="allocation")).reason


# --- quantity types --------------------------------------------------------------------------------
def test_it_reads_a_usdt_quantity_as_notional_rounded_down():
    # 150 USDT ÷ 50,000 = 0.003
    assert run(quantity="150", quantity_type="usdt").legs[0].quantity == D("0.003")
    # 149.99 USDT ÷ 50,000 = 0.0029998 → 0.002 (down to the step)
    assert run(quantity="149.99", quantity_type="usdt").legs[0].quantity == D("0.002")


def test_it_reads_a_percent_quantity_as_margin_times_leverage():
    # 10 % of 10,000 = 1,000 USDT of margin × 5× = 5,000 USDT ÷ 50,000 = 0.1
    result = run(quantity="10", quantity_type="percent", preference=Preference(leverage=5))
    assert result.legs[0].quantity == D("0.1") and result.sizing["quantity_type"] == "percent"


def test_it_reads_equity_only_when_the_sizing_needs_it():
    assert not needs_equity(Intent("buy", quantity=D(1)), Preference())
    assert needs_equity(Intent("buy", quantity=D(1), quantity_type="percent"), Preference())
    assert needs_equity(Intent("buy"), Preference())
    assert needs_equity(Intent("buy", quantity=D(1)), Preference(sizing="allocation"))
    assert not needs_equity(Intent("buy", quantity=D(1), quantity_type="usdt"), Preference(sizing="signal"))


def test_it_refuses_a_percent_quantity_without_equity():
    result = run(quantity="10", quantity_type="percent", equity=None)
    assert result.outcome == "refused" and "equity is not known" in result.reason


# --- risk ------------------------------------------------------------------------------------------
def test_it_sizes_by_risk_from_the_alerts_stop():
    # 1 % of 10,000 = 100 USDT lost over 50,000 − 49,000 = 1,000 per BTC → 0.1 BTC
    result = run(preference=Preference(sizing="risk", risk_pct=D(1)), sl="49000")
    assert result.legs[0].quantity == D("0.1")
    assert (result.sizing["at_risk"], result.sizing["stop"]) == ("100", "49000")


def test_it_sizes_a_short_by_risk_from_the_stop_loss_percent():
    # stop 2 % above 50,000 = 51,000: 100 USDT ÷ 1,000 = 0.1
    result = run("sell", preference=Preference(sizing="risk", risk_pct=D(1), stop_loss_pct=D(2)))
    assert result.legs == (Leg("open", "SELL", D("0.1"), False, "BOTH"),)


def test_it_prefers_the_alerts_stop_over_the_percent():
    result = run(preference=Preference(sizing="risk", risk_pct=D(1), stop_loss_pct=D(10)), sl="49500")
    assert result.legs[0].quantity == D("0.2")


def test_it_refuses_risk_sizing_without_a_stop():
    result = run(preference=Preference(sizing="risk", risk_pct=D(1)))
    assert result.outcome == "refused" and "risk sizing needs a stop" in result.reason


def test_it_refuses_risk_sizing_without_a_risk_percent():
    result = run(preference=Preference(sizing="risk"), sl="49000")
    assert result.outcome == "refused" and "needs a risk %" in result.reason


@pytest.mark.parametrize(("action", "sl"), [("buy", "50000"), ("buy", "50001"), ("sell", "50000"), ("sell", "49999")])
def test_it_refuses_a_stop_on_the_wrong_side_of_the_entry(action, sl):
    result = run(action, preference=Preference(sizing="risk", risk_pct=D(1)), sl=sl)
    assert result.outcome == "refused" and "no risk to size by" in result.reason


def test_it_takes_a_stop_one_tick_inside_the_entry():
    # 100 USDT ÷ 0.1 = 1,000 BTC: above the market-order maximum, refused for that, not for the stop
    result = run(preference=Preference(sizing="risk", risk_pct=D(1)), sl="49999.9")
    assert "no risk to size by" not in result.reason


# --- the cap -----------------------------------------------------------------------------------------
def test_it_opens_a_position_exactly_at_the_cap():
    # 0.002 × 50,000 = 100 USDT
    assert run(quantity="0.002", preference=Preference(max_position_usdt=D(100))).outcome == "trade"


def test_it_refuses_an_order_one_step_past_the_cap_and_never_shrinks_it():
    result = run(quantity="0.003", preference=Preference(max_position_usdt=D("149.99")))
    assert result.outcome == "refused" and result.legs == ()
    assert "the position would be 150 USDT after this order, over the strategy's max position of 149.99" in result.reason


def test_it_counts_the_position_already_held_against_the_cap():
    preference = Preference(max_position_usdt=D(200))
    assert run(quantity="0.002", book=Book(long=D("0.002")), preference=preference).outcome == "trade"
    refused = run(quantity="0.002", book=Book(long=D("0.003")), preference=preference)
    assert refused.outcome == "refused" and "250 USDT" in refused.reason


def test_it_still_closes_the_other_side_when_the_cap_refuses_the_reversal():
    result = run("buy", quantity="0.01", book=Book(short=D("0.005")), preference=Preference(max_position_usdt=D(100)))
    assert result.outcome == "trade" and [leg.purpose for leg in result.legs] == ["close"]
    assert "the long was not opened" in result.reason


# --- through the webhook -----------------------------------------------------------------------------
@pytest.fixture
def webhook(committed_client, binance_settings, binance_fake):
    RATE_LIMITER.reset()

    def send(**fields: object) -> Execution:
        # 45,000: the fake's mark price (an alert price further than 5 % from it is not trusted)
        data = {"action": "buy", "symbol": "BTCUSDT", "price": 45000, "strategy": "SIZED", "passphrase": PASSPHRASE,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        response = committed_client.post("/webhook", json.dumps(data), content_type="application/json")
        assert response.status_code == 202, response.content
        run_queued_jobs()
        return Execution.objects.get(signal_id=response.json()["signal_id"])

    return send


def strategy(**settings: object) -> StrategyPreference:
    return StrategyPreference.objects.create(name="SIZED", products=["BTCUSDT"], leverage=5, **settings)


def quantities(fake) -> list[str]:
    return [request.params["quantity"] for request in fake.requests_to("/fapi/v1/order", "POST")]


def test_it_trades_an_alerts_quantity_as_sent_through_the_webhook(db, webhook, binance_fake):
    strategy()  # auto, the default
    execution = webhook(quantity="0.003")
    assert execution.status == "filled", execution.reason
    assert quantities(binance_fake) == ["0.003"]


def test_it_trades_usdt_and_percent_quantities_as_stated_through_the_webhook(db, webhook, binance_fake):
    strategy()
    webhook(quantity="150", quantity_type="usdt")  # 150 ÷ 45,000 = 0.00333… → 0.003
    webhook(quantity="10", quantity_type="PERCENT")  # 10 % of 10,000 × 5× ÷ 45,000 = 0.1111… → 0.111
    assert quantities(binance_fake) == ["0.003", "0.111"]


def test_it_loses_the_stated_risk_at_the_stop_through_the_webhook(db, webhook, binance_fake):
    strategy(sizing="risk", risk_pct=D(1))
    execution = webhook(sl=44000)
    assert execution.status == "filled", execution.reason
    filled = execution.orders.get()
    assert (filled.executed_qty * (filled.avg_price - D(44000))).normalize() == D(100)  # 1 % of 10,000 USDT


def test_it_refuses_past_the_cap_through_the_webhook(db, webhook, binance_fake):
    strategy(max_position_usdt=D(100))
    execution = webhook(quantity="0.003")
    assert execution.status == "skipped" and "over the strategy's max position of 100 USDT" in execution.reason
    assert quantities(binance_fake) == []


def test_it_names_the_ignored_quantity_in_an_allocation_strategys_decision(db, webhook, binance_fake):
    strategy(sizing="allocation")
    execution = webhook(quantity="0.001")
    assert execution.status == "filled", execution.reason
    assert "alert quantity 0.001 not used: this strategy sizes by allocation" in execution.reason
    assert quantities(binance_fake) == ["0.111"]  # 10 % × 10,000 × 5 ÷ 45,000, rounded down


def test_it_answers_400_naming_a_bad_quantity_type(db, committed_client, binance_settings):
    RATE_LIMITER.reset()
    strategy()
    data = {"action": "buy", "symbol": "BTCUSDT", "quantity": 1, "quantity_type": "lots", "strategy": "SIZED",
            "passphrase": PASSPHRASE, "time": datetime.now(UTC).isoformat()}
    response = committed_client.post("/webhook", json.dumps(data), content_type="application/json")
    assert response.status_code == 400 and "quantity_type" in response.json()["fields"]
    assert Signal.objects.get().status == "rejected"


def test_it_says_the_sizing_in_force_on_the_strategy_page():
    assert StrategyPreference(leverage=5).sizing_summary() == (
        "The alert's quantity when it carries one, otherwise 10 % of equity × 5× leverage.")
    allocation = StrategyPreference(sizing="allocation", allocation_pct=D("12.5"), max_position_usdt=D(500))
    assert allocation.sizing_summary() == (
        "12.5 % of equity × 1× leverage; an alert's quantity is ignored; positions capped at 500 USDT.")
    assert "every open is refused" in StrategyPreference(sizing="risk").sizing_summary()


# --- partial exits: a sell that leaves the strategy long reduces, never reverses ---------------------
def exit_part(action: str = "sell", *, held: Book, market_position: str = "long", quantity: str | None = "0.05",
              position_size: str | None = "0.05", preference: Preference = Preference()):
    intent = Intent(action=action, quantity=D(quantity) if quantity else None, market_position=market_position,
                    position_size=D(position_size) if position_size is not None else None, price=D(50000))
    return plan(intent=intent, preference=preference, book=held, rules=BTC, mark=None, equity=D(10000))


def test_it_reduces_our_position_by_the_strategys_share_on_a_partial_exit():
    # the strategy sold 0.05 of its 0.1 (half): we sell half of our 0.111, rounded down
    result = exit_part(held=Book(long=D("0.111")))
    assert result.legs == (Leg("close", "SELL", D("0.055"), True, "BOTH"),)
    assert result.reason.startswith("reduce long 0.111 by 0.055: partial exit")


def test_it_reduces_a_short_on_a_buy_that_leaves_the_strategy_short():
    result = exit_part("buy", held=Book(short=D("0.2")), market_position="short", quantity="0.1", position_size="-0.3")
    assert result.legs == (Leg("close", "BUY", D("0.05"), True, "BOTH"),)


def test_it_closes_all_when_the_share_rounds_to_the_whole_position():
    result = exit_part(held=Book(long=D("0.002")), quantity="0.0999", position_size="0.0001")
    assert result.legs[0].quantity == D("0.001") and result.reason.startswith("reduce")
    everything = exit_part(held=Book(long=D("0.002")), quantity="0.1", position_size="0")
    assert everything.legs[0].quantity == D("0.002") and everything.reason.startswith("close long")


def test_it_sends_nothing_for_a_share_below_one_step():
    result = exit_part(held=Book(long=D("0.001")), quantity="0.01", position_size="0.09")
    assert result.outcome == "nothing" and "less than one step" in result.reason


def test_it_reduces_by_the_alerts_quantity_without_its_position_size_when_it_trades_the_alerts_quantities():
    result = exit_part(held=Book(long=D("0.1")), quantity="0.03", position_size=None)
    assert result.legs[0].quantity == D("0.03")


def test_it_refuses_a_partial_exit_it_cannot_size_rather_than_guess():
    result = exit_part(held=Book(long=D("0.1")), position_size=None, preference=Preference(sizing="allocation"))
    assert result.outcome == "refused" and "strategy.position_size" in result.reason


def test_it_has_nothing_to_reduce_when_flat():
    result = exit_part(held=Book())
    assert result.outcome == "nothing" and "no long position open" in result.reason


def test_it_reduces_one_side_in_hedge_mode():
    result = exit_part(held=Book(long=D("0.1"), short=D("0.3"), hedge_mode=True))
    assert result.legs == (Leg("close", "SELL", D("0.05"), False, "LONG"),)


def test_it_partially_exits_through_the_webhook_without_opening_a_short(db, webhook, binance_fake):
    strategy()
    webhook(quantity="0.004", market_position="long", position_size="0.004")
    execution = webhook(action="sell", quantity="0.002", market_position="long", position_size="0.002")
    assert execution.status == "filled", execution.reason
    sent = [(r.params["side"], r.params["quantity"], r.params.get("reduceOnly"))
            for r in binance_fake.requests_to("/fapi/v1/order", "POST")]
    assert sent == [("BUY", "0.004", None), ("SELL", "0.002", "true")]
