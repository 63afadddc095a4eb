"""Limit and post-only entries (issue #20): `entry`, `entry_offset_pct`, `entry_timeout`, `on_timeout`
and the alert's `order_type` / `limit_price`. Through POST /webhook → worker → the Binance adapter →
the fake exchange (resting orders filled when its price crosses them, GTX refused when it would take),
and on the paper exchange; the order holds the symbol's lane while it rests, exactly once throughout."""

import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.db import connections

from tests.support.webhook import alert, strategy_create, webhook_client, webhook_send  # noqa: F401 (`client`)
from trading import engine, resting
from trading.exchange.base import SymbolRules
from trading.models import Execution, Order, Position, ProtectiveOrder, Signal
from trading.tasks import execute_signal

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)
BTC = SymbolRules(symbol="BTCUSDT", step_size=D("0.001"), min_qty=D("0.001"), max_qty=D("120"), tick_size=D("0.10"),
                  min_notional=D("100"))


@pytest.fixture
def later() -> Iterator[Callable[[float, Callable[[], object]], None]]:
    """Run something on another thread after a delay, as the market (or the next alert) would while an
    entry rests; joined before the test ends."""
    threads: list[threading.Thread] = []

    def run(delay: float, action: Callable[[], object]) -> None:
        def act() -> None:
            time.sleep(delay)
            try:
                action()
            finally:
                connections.close_all()

        thread = threading.Thread(target=act, daemon=True)
        threads.append(thread)
        thread.start()

    yield run
    for thread in threads:
        thread.join(10)


def limit_strategy(**fields: object) -> None:
    strategy_create(**{"sizing": "allocation", "allocation_pct": D(10), "entry": "limit", "entry_offset_pct": D(1),
                       "entry_timeout": 2, **fields})


# --- the pure price ------------------------------------------------------------------------------
@pytest.mark.parametrize(("side", "price", "offset", "expected"), [
    ("BUY", "45000", "1", "44550.0"),       # 1 % below, on the tick already
    ("SELL", "45000", "1", "45450.0"),      # 1 % above
    ("BUY", "45000.19", "0", "45000.1"),    # off the tick: a buy's rounded down
    ("SELL", "45000.11", "0", "45000.2"),   # a sell's up: never worse than asked
    ("BUY", "45000.10", "0", "45000.1"),    # exactly on the tick: unchanged, either side
    ("SELL", "45000.10", "0", "45000.1"),
])
def test_the_limit_price_is_the_offset_price_on_the_tick_never_worse_for_the_side(side, price, offset, expected):
    assert engine.limit_price(side, alert_limit=None, price=D(price), offset_pct=D(offset), rules=BTC) == D(expected)


def test_the_alerts_limit_price_wins_over_the_offset():
    assert engine.limit_price("BUY", alert_limit=D("44000.05"), price=D(45000), offset_pct=D(1), rules=BTC) == D("44000.0")


# --- through the webhook, against the fake exchange ----------------------------------------------
def test_a_limit_entry_rests_and_fills_when_the_market_comes_to_it(client, binance_fake, later):
    limit_strategy()
    later(0.5, lambda: binance_fake.set_price("BTCUSDT", "44500"))
    execution = alert(client)
    order = execution.orders.get()
    assert (order.order_type, order.time_in_force, order.price, order.status) == ("LIMIT", "GTC", D("44550"), "FILLED")
    assert (execution.status, execution.fill_price) == (Execution.Status.FILLED, D("44550"))
    assert "limit at 44550" in execution.reason
    assert execution.decision["entry"] == "limit entry filled at 44550"
    assert Position.objects.get(symbol="BTCUSDT").amount == order.quantity
    [sent] = binance_fake.requests_to("/fapi/v1/order", "POST")
    assert (sent.params["type"], sent.params["timeInForce"], sent.params["price"]) == ("LIMIT", "GTC", "44550.0")
    assert not binance_fake.open_orders


def test_at_the_timeout_what_is_left_is_cancelled_and_nothing_stays_at_the_exchange(client, binance_fake):
    limit_strategy(entry_timeout=1)
    started = time.monotonic()
    execution = alert(client)
    assert time.monotonic() - started >= 1.0  # it waited its timeout, holding the symbol's lane
    order = execution.orders.get()
    assert (order.status, order.executed_qty) == ("CANCELED", 0)
    assert execution.status == Execution.Status.NOTHING
    assert execution.reason.endswith("; limit entry at 44550 not filled within 1 s; the rest cancelled")
    assert len(binance_fake.requests_to("/fapi/v1/order", "DELETE")) == 1
    assert not binance_fake.open_orders and not Position.objects.exclude(amount=0).exists()


def test_a_partial_fill_counts_and_the_rest_goes_at_market_when_the_strategy_says_so(client, binance_fake, later):
    limit_strategy(entry_timeout=1, on_timeout="market", stop_loss=D(2))
    later(0.3, lambda: binance_fake.fill_resting(Order.objects.get().client_order_id, "0.040"))
    execution = alert(client)
    entry, rest = execution.orders.order_by("leg")
    assert (entry.status, entry.executed_qty, entry.quantity) == ("CANCELED", D("0.040"), D("0.111"))
    assert (rest.order_type, rest.leg, rest.quantity, rest.status) == ("MARKET", 11, D("0.071"), "FILLED")
    assert execution.status == Execution.Status.FILLED
    assert execution.reason.endswith("limit entry at 44550 filled 0.04 of 0.111 within 1 s; the rest (0.071) sent at "
                                     "market: filled")
    # The fill price is both parts' average; the stop protects the whole position.
    average = (D("0.040") * D("44550") + D("0.071") * D("45000")) / D("0.111")
    assert execution.fill_price == average.quantize(D("1e-10"))  # the column's decimals
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.111")
    assert ProtectiveOrder.objects.filter(kind="stop_loss", status="active").exists()
    posted = [r.params["type"] for r in binance_fake.requests_to("/fapi/v1/order", "POST")]
    assert posted == ["LIMIT", "MARKET"]


def test_a_partial_fill_then_cancel_is_partly_done_and_protected(client, binance_fake, later):
    limit_strategy(entry_timeout=1, stop_loss=D(2))
    later(0.3, lambda: binance_fake.fill_resting(Order.objects.get().client_order_id, "0.040"))
    execution = alert(client)
    assert execution.status == Execution.Status.PARTIAL
    assert "filled 0.04 of 0.111 within 1 s; the rest cancelled" in execution.reason
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.040")
    assert ProtectiveOrder.objects.filter(kind="stop_loss", status="active").exists()


def test_a_post_only_entry_that_would_take_is_refused_saying_why(client, binance_fake):
    strategy_create(sizing="allocation", allocation_pct=D(10))
    execution = alert(client, order_type="post_only", limit_price=45100)  # a buy above the market takes
    order = execution.orders.get()
    assert (order.status, order.error_code, order.time_in_force) == ("REJECTED", "-5022", "GTX")
    assert execution.status == Execution.Status.REJECTED
    assert "post-only: the order would have taken liquidity at once" in execution.reason
    assert not binance_fake.open_orders and not binance_fake.requests_to("/fapi/v1/order", "DELETE")


def test_a_post_only_entry_below_the_market_rests_as_a_maker(client, binance_fake, later):
    limit_strategy(entry="post_only")
    later(0.4, lambda: binance_fake.move_price("BTCUSDT", "44400"))
    execution = alert(client)
    order = execution.orders.get()
    assert (order.time_in_force, order.status, execution.status) == ("GTX", "FILLED", Execution.Status.FILLED)
    assert "post-only at 44550" in execution.reason


def test_the_alert_says_limit_with_its_own_price_over_a_market_strategy(client, binance_fake, later):
    strategy_create(sizing="allocation", allocation_pct=D(10), entry_timeout=1)
    later(0.3, lambda: binance_fake.set_price("BTCUSDT", "43999"))
    execution = alert(client, limit_price="44000.04")  # a limit price alone asks for a limit order
    order = execution.orders.get()
    assert (order.order_type, order.price, order.status) == ("LIMIT", D("44000.0"), "FILLED")


def test_the_alert_says_market_over_a_limit_strategy(client, binance_fake):
    limit_strategy()
    execution = alert(client, order_type="market")
    assert (execution.orders.get().order_type, execution.status) == ("MARKET", Execution.Status.FILLED)


@pytest.mark.parametrize(("field", "value", "said"), [
    ("order_type", "stop", "'stop' is not one of market, limit, post_only"),
    ("order_type", 5, "must be one of market, limit, post_only, not a number"),
    ("limit_price", "abc", ""),
    ("limit_price", -1, ""),
])
def test_a_bad_order_type_or_limit_price_answers_400_naming_it(client, binance_fake, field, value, said):
    strategy_create()
    response = webhook_send(client, **{field: value})
    assert response.status_code == 400
    assert field in response.json()["fields"] and said in response.json()["fields"][field]
    assert not binance_fake.requests_to("/fapi/v1/order")


def test_a_limit_entry_below_the_minimum_notional_at_its_price_is_refused_before_sending(client, binance_fake):
    # 0.003 BTC at 45,000 is 135 USDT; at a limit of 33,000 it is 99: below BTCUSDT's 100.
    strategy_create(sizing="signal")
    execution = alert(client, quantity="0.003", limit_price=33000)
    assert execution.status == Execution.Status.SKIPPED
    assert "limit entry at 33000" in execution.reason and "below BTCUSDT's minimum of 100 USDT" in execution.reason
    assert not binance_fake.requests_to("/fapi/v1/order")


def test_at_exactly_the_minimum_notional_the_limit_entry_goes(client, binance_fake):
    strategy_create(sizing="signal", entry_timeout=1)
    execution = alert(client, quantity="0.004", limit_price=25000)  # 0.004 × 25,000 = 100 USDT exactly
    assert execution.orders.get().price == D(25000)


def test_the_next_alert_ends_the_wait_and_goes_next(client, binance_fake, later):
    limit_strategy(entry_timeout=30)
    later(0.5, lambda: webhook_send(client, "close"))
    started = time.monotonic()
    execution = alert(client)
    assert time.monotonic() - started < 10  # not the 30 s timeout
    assert execution.status == Execution.Status.NOTHING
    assert execution.reason.endswith("limit entry at 44550 not filled; the rest cancelled for the symbol's next alert")
    assert not binance_fake.open_orders


def test_a_worker_that_dies_while_the_entry_rests_is_resumed_without_a_second_order(client, binance_fake, monkeypatch):
    limit_strategy(entry_timeout=1)
    real_pause = resting._pause

    def die_once(mandate, seconds):  # the worker is killed mid-wait: its lane is lost, its order rests
        monkeypatch.setattr(resting, "_pause", real_pause)
        raise SystemExit("killed")

    monkeypatch.setattr(resting, "_pause", die_once)
    with pytest.raises(SystemExit):
        alert(client)
    signal = Signal.objects.get()
    assert signal.status == Signal.Status.EXECUTING and Order.objects.get().status == "NEW"
    from trading.models import SymbolLane

    SymbolLane.objects.update(holder="", lease_until=None)  # recovery frees a dead holder's lane
    execute_signal(signal.pk, "BTCUSDT")
    execution = Execution.objects.get()
    assert execution.attempts == 2 and execution.status == Execution.Status.NOTHING
    assert Order.objects.get().status == "CANCELED"
    assert len(binance_fake.requests_to("/fapi/v1/order", "POST")) == 1  # exactly once
    assert not binance_fake.open_orders


def test_an_entry_whose_cancel_never_got_through_is_cancelled_by_the_sweep(client, binance_fake, monkeypatch):
    """Every cancel of the resting entry fails (the exchange away): the execution ends saying so, and the
    minute's sweep takes the order off the book rather than leave it to fill hours later."""
    from trading.exchange import RetryableError
    from trading.exchange.binance import BinanceExchange
    from trading.recovery import orders_resolve

    limit_strategy(entry_timeout=1)
    real_cancel = BinanceExchange.cancel_order

    def away(self, symbol, client_order_id):
        raise RetryableError("Binance answered HTTP 503", code="503")

    monkeypatch.setattr(resting, "_pause", lambda mandate, seconds: None)
    monkeypatch.setattr(BinanceExchange, "cancel_order", away)
    execution = alert(client)
    assert execution.status == Execution.Status.FAILED
    assert execution.reason.endswith("limit entry at 44550: still open at the exchange, its cancel unconfirmed "
                                     "(the sweep cancels it)")
    assert list(binance_fake.open_orders) == [execution.orders.get().client_order_id]

    monkeypatch.setattr(BinanceExchange, "cancel_order", real_cancel)
    assert orders_resolve() == 1
    assert execution.orders.get().status == "CANCELED" and not binance_fake.open_orders


def test_in_hedge_mode_the_limit_entry_names_its_side(client, binance_fake, later):
    binance_fake.hedge_mode = True
    limit_strategy()
    later(0.4, lambda: binance_fake.set_price("BTCUSDT", "45500"))
    execution = alert(client, "sell")  # opens the SHORT at 45450
    [sent] = binance_fake.requests_to("/fapi/v1/order", "POST")
    assert (sent.params["positionSide"], sent.params["price"], "reduceOnly" in sent.params) == ("SHORT", "45450.0", False)
    assert execution.status == Execution.Status.FILLED
    assert Position.objects.get(symbol="BTCUSDT", position_side="SHORT").amount == -execution.orders.get().quantity


# --- on the paper exchange -------------------------------------------------------------------------
@pytest.fixture
def paper(client, settings) -> Iterator[None]:
    """The webhook's client, with the paper exchange in place of the fake."""
    from trading.exchange import reset_exchange

    settings.EXCHANGE = "paper"
    reset_exchange()
    yield
    reset_exchange()


def test_on_paper_a_resting_entry_fills_when_the_paper_market_crosses_it(client, paper, later):
    from trading.exchange import get_exchange

    limit_strategy()
    later(0.5, lambda: get_exchange().observe_price("BTCUSDT", D("44500")))
    execution = alert(client)
    order = execution.orders.get()
    assert (order.status, order.avg_price, execution.status) == ("FILLED", D("44550"), Execution.Status.FILLED)
    assert Position.objects.get(symbol="BTCUSDT").amount == order.quantity


def test_on_paper_a_post_only_entry_that_would_take_is_refused(client, paper):
    strategy_create(sizing="allocation", allocation_pct=D(10))
    execution = alert(client, order_type="post_only", limit_price=45100)
    assert execution.orders.get().error_code == "-5022" and execution.status == Execution.Status.REJECTED


def test_on_paper_an_entry_not_filled_in_time_is_cancelled(client, paper):
    limit_strategy(entry_timeout=1)
    execution = alert(client)
    assert (execution.orders.get().status, execution.status) == ("CANCELED", Execution.Status.NOTHING)
