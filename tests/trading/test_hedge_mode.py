"""Hedge mode end to end (issue #19): POST /webhook → worker → the Binance adapter → the fake exchange
over HTTP (and the paper exchange), on an account whose exchange says `dualSidePosition: true`.

A long and a short live side by side on one symbol: a buy opens or adds the long, a sell the short,
close_long / close_short close one side and close both; every order names its side and none is
reduce-only (Binance refuses that there with -1106, and a side that does not fit the mode with -4061)."""

from decimal import Decimal

import pytest
from binance.error import ClientError
from django.utils import timezone

from analytics.metrics import trades_from_fills
from analytics.performance import Scope, fills
from preferences.models import StrategyPreference
from tests.support.webhook import alert, strategy_create
from trading.exchange import OrderRequest, PermanentError, get_exchange, reset_exchange
from trading.models import Order, PaperPosition, PaperProtective, Position, ProtectiveOrder
from trading.protection import position_settle
from trading.upkeep import last_reconciliation, positions_reconcile
from trading.webhook import RATE_LIMITER

D = Decimal
REFUSED_IN_HEDGE_MODE = (-4061, -1106)


@pytest.fixture
def client(committed_client):
    RATE_LIMITER.reset()
    return committed_client


@pytest.fixture
def hedged(binance_settings, binance_fake):
    """The fake account in hedge mode; after the test, it never had to refuse an order for its mode."""
    binance_fake.hedge_mode = True
    yield binance_fake
    assert [code for _, _, code in binance_fake.refusals if code in REFUSED_IN_HEDGE_MODE] == []


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return strategy_create(allocation_pct=D(10), sizing="allocation")


@pytest.fixture
def protected(strategy) -> StrategyPreference:
    strategy.stop_loss, strategy.take_profit = D(2), D(3)
    strategy.save()
    return strategy


def sent(fake) -> list[tuple[str, str | None, str, str | None]]:
    return [(r.params["side"], r.params.get("positionSide"), r.params["quantity"], r.params.get("reduceOnly"))
            for r in fake.requests_to("/fapi/v1/order", "POST")]


def mirror() -> dict[str, Decimal]:
    return {p.position_side: p.amount for p in Position.objects.filter(symbol="BTCUSDT")}


def algos(fake) -> list[tuple[str, str, str, str]]:
    return sorted((o["positionSide"], o["orderType"], o["side"], o["triggerPrice"]) for o in fake.algo_orders.values())


# --- the Binance adapter against the fake ---------------------------------------------------------------
def test_it_holds_a_long_and_a_short_side_by_side(client, strategy, hedged):
    buy = alert(client, "buy")
    sell = alert(client, "sell")
    assert (buy.status, sell.status) == ("filled", "filled"), (buy.reason, sell.reason)
    assert sent(hedged) == [("BUY", "LONG", "0.111", None), ("SELL", "SHORT", "0.111", None)]
    assert (hedged.position("BTCUSDT", "LONG"), hedged.position("BTCUSDT", "SHORT")) == (D("0.111"), D("-0.111"))
    assert mirror() == {"LONG": D("0.111"), "SHORT": D("-0.111")}
    assert sell.reason == "open short 0.111; the long 0.111 stays open (hedge mode)"
    assert [(o.purpose, o.position_side, o.reduce_only) for o in sell.orders.all()] == [("open", "SHORT", False)]


def test_it_adds_to_each_side_on_its_own(client, strategy, hedged):
    alert(client, "buy")
    alert(client, "sell")
    add = alert(client, "buy", price=45001)
    assert add.status == "filled" and add.reason.startswith("add long 0.111")
    assert mirror() == {"LONG": D("0.222"), "SHORT": D("-0.111")}


def test_it_closes_each_side_on_its_own(client, strategy, hedged):
    alert(client, "buy")
    alert(client, "sell")
    hedged.set_price("BTCUSDT", "46000")
    close_long = alert(client, "close_long", price=46000)
    assert close_long.status == "filled" and mirror() == {"LONG": 0, "SHORT": D("-0.111")}
    assert hedged.position("BTCUSDT", "SHORT") == D("-0.111")
    close_short = alert(client, "close_short", price=46000)
    assert close_short.status == "filled" and mirror() == {"LONG": 0, "SHORT": 0}
    assert sent(hedged)[2:] == [("SELL", "LONG", "0.111", None), ("BUY", "SHORT", "0.111", None)]
    # P&L per side: the long made 1,000 × 0.111, the short lost as much.
    assert close_long.orders.get().realized_pnl == D("111") and close_short.orders.get().realized_pnl == D("-111")
    assert {p.position_side: p.realized_pnl for p in Position.objects.all()} == {"LONG": D("111"), "SHORT": D("-111")}


def test_close_closes_both_sides(client, strategy, hedged):
    alert(client, "buy")
    alert(client, "sell")
    close = alert(client, "close")
    assert close.status == "filled" and close.reason == "close long 0.111 and short 0.111"
    assert sent(hedged)[2:] == [("SELL", "LONG", "0.111", None), ("BUY", "SHORT", "0.111", None)]
    assert mirror() == {"LONG": 0, "SHORT": 0} and not any(hedged.position("BTCUSDT", s) for s in ("LONG", "SHORT"))


def test_close_goes_on_to_the_short_when_the_long_was_already_closed_at_the_exchange(client, strategy, hedged):
    alert(client, "buy")
    alert(client, "sell")
    hedged.manual_order("BTCUSDT", "SELL", "0.111", position_side="LONG")  # closed by hand in Binance's app
    close = alert(client, "close")
    assert [(o.position_side, o.status) for o in close.orders.order_by("leg")] == [("LONG", "REJECTED"), ("SHORT", "FILLED")]
    assert close.status == "filled" and "found nothing to reduce" in close.reason
    assert hedged.position("BTCUSDT", "SHORT") == 0


def test_an_exit_alert_closes_the_side_it_exits(client, strategy, hedged):
    alert(client, "buy")
    alert(client, "sell")
    # TradingView's exit of a long: a sell whose market position is then flat. The short stays.
    exit_long = alert(client, "sell", market_position="flat")
    assert exit_long.reason == "close long 0.111"
    assert mirror() == {"LONG": 0, "SHORT": D("-0.111")}


def test_a_close_with_nothing_to_close_does_not_blame_the_other_sides_stop(client, strategy, hedged):
    alert(client, "sell")
    Order.objects.create(source=Order.Source.STOP_LOSS, purpose="close", client_order_id="x-sl", exchange_order_id="77",
                         symbol="BTCUSDT", side="BUY", position_side="SHORT", quantity=D("0.111"),
                         executed_qty=D("0.111"), avg_price=D("45900"), status=Order.Status.FILLED)
    Position.objects.filter(position_side="SHORT").update(amount=0)  # the short's stop closed it
    close_long = alert(client, "close_long")
    assert (close_long.status, close_long.reason) == ("nothing", "nothing to close: there is no long position open")
    close_short = alert(client, "close_short")
    assert close_short.reason.startswith("nothing to close: the stop-loss (order 77) closed the position")


def test_it_places_and_cancels_protection_per_side(client, protected, hedged):
    alert(client, "buy")
    alert(client, "sell")
    # Long: stop 44,100, target 46,350 (SELL LONG); short: stop 45,900, target 43,650 (BUY SHORT).
    assert algos(hedged) == [
        ("LONG", "STOP_MARKET", "SELL", "44100.0"), ("LONG", "TAKE_PROFIT_MARKET", "SELL", "46350.0"),
        ("SHORT", "STOP_MARKET", "BUY", "45900.0"), ("SHORT", "TAKE_PROFIT_MARKET", "BUY", "43650.0"),
    ]
    placed = [r.params for r in hedged.requests_to("/fapi/v1/algoOrder", "POST")]
    assert all(p["closePosition"] == "true" and "reduceOnly" not in p for p in placed)
    close_long = alert(client, "close_long")
    assert close_long.protection_alarm == ""
    assert [a[0] for a in algos(hedged)] == ["SHORT", "SHORT"]
    assert set(ProtectiveOrder.objects.filter(position_side="LONG").values_list("status", flat=True)) == {"cancelled"}
    assert set(ProtectiveOrder.objects.filter(position_side="SHORT").values_list("status", flat=True)) == {"active"}
    alert(client, "close_short")
    assert hedged.algo_orders == {} and not ProtectiveOrder.objects.filter(status="active").exists()


def test_an_entry_on_one_side_leaves_the_other_sides_protection(client, protected, hedged):
    alert(client, "sell")
    short_orders = set(hedged.algo_orders)
    alert(client, "buy", sl=44000, tp=47000)  # the alert's prices are the long's
    assert short_orders < set(hedged.algo_orders)
    assert algos(hedged)[:2] == [("LONG", "STOP_MARKET", "SELL", "44000.0"), ("LONG", "TAKE_PROFIT_MARKET", "SELL", "47000.0")]


def test_a_stop_that_closed_one_side_leaves_the_other_protected(client, protected, hedged):
    alert(client, "buy")
    alert(client, "sell")
    assert hedged.move_price("BTCUSDT", "44000")  # the long's stop at 44,100 triggers at the exchange
    assert hedged.position("BTCUSDT", "LONG") == 0 and hedged.position("BTCUSDT", "SHORT") == D("-0.111")
    positions_reconcile(get_exchange(), timezone.now())  # the periodic reconciliation, per side
    assert mirror() == {"LONG": 0, "SHORT": D("-0.111")}
    assert last_reconciliation()[1] == ["BTCUSDT LONG: ours 0.111, exchange 0"]
    assert position_settle("BTCUSDT", get_exchange()) == ""
    assert [a[:2] for a in algos(hedged)] == [("SHORT", "STOP_MARKET"), ("SHORT", "TAKE_PROFIT_MARKET")]


def test_it_counts_trades_per_side(client, strategy, hedged):
    alert(client, "buy")
    alert(client, "sell")
    hedged.set_price("BTCUSDT", "46000")
    alert(client, "close", price=46000)
    trades = trades_from_fills(fills(Scope(account="", exchange="binance")))
    assert sorted((t.side, t.realized_pnl, t.is_open) for t in trades) == [("long", D("111"), False),
                                                                          ("short", D("-111"), False)]


def test_the_fake_refuses_what_binance_refuses_in_hedge_mode(binance_exchange, hedged):
    with pytest.raises(PermanentError) as wrong_side:
        binance_exchange.place_market_order(OrderRequest("BTCUSDT", "BUY", D("0.01"), "x-1"),
                                            stamp=binance_exchange.order_stamp())
    assert wrong_side.value.code == "-4061"
    with pytest.raises(ClientError) as reduce_only:
        binance_exchange.client.new_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.01",
                                          positionSide="LONG", reduceOnly="true")
    assert reduce_only.value.error_code == -1106
    hedged.refusals.clear()  # asked for here: the fixture's check is for the trading path


def test_a_one_way_account_still_reverses_with_reduce_only(client, strategy, binance_settings, binance_fake):
    alert(client, "buy")
    alert(client, "sell")
    assert sent(binance_fake) == [("BUY", None, "0.111", None), ("SELL", None, "0.111", "true"), ("SELL", None, "0.111", None)]
    assert mirror() == {"BOTH": D("-0.111")}


# --- the paper exchange ------------------------------------------------------------------------------------
@pytest.fixture
def paper(settings):
    settings.EXCHANGE, settings.PAPER_HEDGE_MODE = "paper", True
    reset_exchange()
    yield get_exchange()
    reset_exchange()


def paper_positions() -> dict[str, Decimal]:
    return {p.position_side: p.amount for p in PaperPosition.objects.filter(symbol="BTCUSDT").exclude(position_side="BOTH")}


def test_the_paper_exchange_holds_and_closes_both_sides(client, protected, paper):
    assert paper.is_hedge_mode()
    alert(client, "buy")
    alert(client, "sell")
    assert paper_positions() == {"LONG": D("0.111"), "SHORT": D("-0.111")}
    assert mirror() == {"LONG": D("0.111"), "SHORT": D("-0.111")}
    assert PaperPosition.objects.get(position_side="LONG").leverage == 5  # the symbol's, set for the first entry
    assert sorted(PaperProtective.objects.filter(status="open").values_list("position_side", "kind")) == [
        ("LONG", "stop_loss"), ("LONG", "take_profit"), ("SHORT", "stop_loss"), ("SHORT", "take_profit")]
    close_short = alert(client, "close_short")
    assert close_short.status == "filled" and paper_positions() == {"LONG": D("0.111"), "SHORT": 0}
    assert set(PaperProtective.objects.filter(status="open").values_list("position_side", flat=True)) == {"LONG"}
    close = alert(client, "close")
    assert close.status == "filled" and close.reason == "close long 0.111"
    assert paper_positions() == {"LONG": 0, "SHORT": 0} and not PaperProtective.objects.filter(status="open").exists()


def test_the_paper_stop_closes_only_its_side(client, protected, paper):
    alert(client, "buy")
    alert(client, "sell")
    paper.observe_price("BTCUSDT", D("44000"))  # the long's stop at 44,100
    assert paper_positions() == {"LONG": 0, "SHORT": D("-0.111")}
    assert PaperProtective.objects.get(position_side="LONG", kind="stop_loss").status == "triggered"
    positions_reconcile(paper, timezone.now())
    assert position_settle("BTCUSDT", paper) == ""  # the long's take-profit is not needed any more
    assert set(PaperProtective.objects.filter(status="open").values_list("position_side", flat=True)) == {"SHORT"}


def test_the_paper_exchange_refuses_what_binance_refuses_in_hedge_mode(db, paper):
    paper.observe_price("BTCUSDT", D("45000"))
    for request, code in ((OrderRequest("BTCUSDT", "BUY", D("0.01"), "p-1"), "-4061"),
                          (OrderRequest("BTCUSDT", "BUY", D("0.01"), "p-2", reduce_only=True, position_side="LONG"), "-1106"),
                          (OrderRequest("BTCUSDT", "SELL", D("0.01"), "p-3", position_side="LONG"), "-2022")):
        with pytest.raises(PermanentError) as refused:
            paper.place_market_order(request, stamp=paper.order_stamp())
        assert refused.value.code == code
