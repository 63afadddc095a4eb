"""The fake Binance's LIMIT orders, through the real connector over real HTTP, as Binance answers them:
placing (GTC, GTX post-only), resting, filling when the price crosses or in part, cancelling, and what
the user data stream says of it."""

import json
from decimal import Decimal

import pytest
from binance.error import ClientError
from binance.um_futures import UMFutures
from websockets.sync.client import connect

from tests.fakes.binance_server import API_KEY, API_SECRET, FakeBinance

D = Decimal


@pytest.fixture
def client(binance_fake: FakeBinance) -> UMFutures:
    return UMFutures(key=API_KEY, secret=API_SECRET, base_url=binance_fake.url, timeout=5)


def limit(client: UMFutures, side: str, price: str, quantity: str = "0.010", cid: str = "lim-1", **extra):
    params = {"quantity": quantity, "price": price, "timeInForce": "GTC", "newClientOrderId": cid,
              "newOrderRespType": "RESULT", **extra}
    return client.new_order("BTCUSDT", side, "LIMIT", **{k: v for k, v in params.items() if v is not None})


def refused(call) -> ClientError:  # noqa: ANN001 - a callable placing or cancelling
    with pytest.raises(ClientError) as error:
        call()
    return error.value


def query(client: UMFutures, cid: str = "lim-1") -> dict:
    return client.query_order("BTCUSDT", origClientOrderId=cid)


def test_a_marketable_gtc_order_fills_at_once_at_the_price_now_as_a_taker(client, binance_fake):
    answer = limit(client, "BUY", "45100.0")  # above the price (45000): it takes
    assert (answer["status"], answer["executedQty"], D(answer["avgPrice"])) == ("FILLED", "0.010", D("45000"))
    assert (answer["type"], answer["origType"], answer["timeInForce"], answer["price"]) == ("LIMIT", "LIMIT", "GTC", "45100.0")
    assert binance_fake.position("BTCUSDT") == D("0.010") and binance_fake.open_orders == {}
    [trade] = binance_fake.trades
    assert trade["maker"] is False and D(trade["commission"]) == D("0.010") * 45000 * D("0.0005")
    assert len(binance_fake.orders) == 1 and query(client)["status"] == "FILLED"


def test_a_resting_gtc_order_fills_at_its_own_price_when_the_price_crosses_it(client, binance_fake):
    answer = limit(client, "BUY", "44000.0")
    assert (answer["status"], answer["executedQty"], D(answer["avgPrice"])) == ("NEW", "0", 0)
    assert (answer["type"], answer["origType"], answer["timeInForce"], answer["price"]) == ("LIMIT", "LIMIT", "GTC", "44000.0")
    [open_order] = client.get_orders(symbol="BTCUSDT")
    assert open_order["clientOrderId"] == "lim-1" and open_order["status"] == "NEW"
    assert binance_fake.position("BTCUSDT") == 0 and binance_fake.trades == []

    binance_fake.set_price("BTCUSDT", "44500")  # not there yet
    assert query(client)["status"] == "NEW"
    binance_fake.set_price("BTCUSDT", "43900")  # through it: it fills at 44000, not 43900
    order = query(client)
    assert (order["status"], order["executedQty"], D(order["avgPrice"])) == ("FILLED", "0.010", D("44000"))
    assert order["updateTime"] >= answer["updateTime"]
    assert binance_fake.positions[("BTCUSDT", "BOTH")] == [D("0.010"), D("44000")]
    [trade] = binance_fake.trades
    assert trade["maker"] is True and D(trade["price"]) == D("44000") and trade["orderId"] == answer["orderId"]
    assert D(trade["commission"]) == D("0.010") * 44000 * D("0.0002")  # the maker rate
    assert client.get_orders(symbol="BTCUSDT") == [] and len(binance_fake.orders) == 1  # counted once


def test_a_resting_sell_fills_when_move_price_reaches_it(client, binance_fake):
    binance_fake.set_position("BTCUSDT", "0.010", "44000")
    answer = limit(client, "SELL", "46000.0", reduceOnly="true")
    assert answer["status"] == "NEW" and answer["reduceOnly"] is True
    binance_fake.move_price("BTCUSDT", "46000")  # at its price: a SELL fills at or above
    assert query(client)["status"] == "FILLED" and binance_fake.position("BTCUSDT") == 0
    assert D(binance_fake.trades[-1]["realizedPnl"]) == D("20")


def test_a_marketable_post_only_order_is_refused_and_never_recorded(client, binance_fake):
    error = refused(lambda: limit(client, "BUY", "45000.0", timeInForce="GTX"))
    assert (error.status_code, error.error_code) == (400, -5022)
    assert error.error_message.startswith("Due to the order could not be executed as maker, the Post Only order")
    assert binance_fake.orders == [] and binance_fake.open_orders == {} and binance_fake.pushed == []
    assert refused(lambda: query(client)).error_code == -2013  # not in the order history


def test_a_post_only_order_that_would_not_take_rests(client, binance_fake):
    answer = limit(client, "SELL", "45500.0", timeInForce="GTX")
    assert (answer["status"], answer["timeInForce"]) == ("NEW", "GTX")
    assert [o["clientOrderId"] for o in client.get_orders()] == ["lim-1"]
    binance_fake.set_price("BTCUSDT", "45600")
    order = query(client)
    assert (order["status"], D(order["avgPrice"]), order["timeInForce"]) == ("FILLED", D("45500"), "GTX")
    assert binance_fake.position("BTCUSDT") == D("-0.010")


def test_a_partly_filled_order_cancelled_keeps_what_it_executed(client, binance_fake):
    limit(client, "BUY", "44000.0", quantity="0.030")
    partly = binance_fake.fill_resting("lim-1", "0.010")
    assert (partly["status"], partly["executedQty"]) == ("PARTIALLY_FILLED", "0.010")
    order = query(client)
    assert (order["status"], order["executedQty"], D(order["avgPrice"])) == ("PARTIALLY_FILLED", "0.010", D("44000"))
    assert binance_fake.position("BTCUSDT") == D("0.010")

    cancelled = client.cancel_order("BTCUSDT", origClientOrderId="lim-1")
    assert (cancelled["status"], cancelled["executedQty"], cancelled["origQty"]) == ("CANCELED", "0.010", "0.030")
    assert query(client)["status"] == "CANCELED" and client.get_orders(symbol="BTCUSDT") == []
    binance_fake.set_price("BTCUSDT", "43000")  # off the book: nothing more fills
    assert binance_fake.position("BTCUSDT") == D("0.010") and len(binance_fake.trades) == 1
    again = refused(lambda: client.cancel_order("BTCUSDT", origClientOrderId="lim-1"))
    assert (again.status_code, again.error_code, again.error_message) == (400, -2011, "Unknown order sent.")


def test_fill_resting_fills_the_rest(client, binance_fake):
    answer = limit(client, "SELL", "46000.0", quantity="0.020")
    binance_fake.fill_resting("lim-1", "0.005")
    assert binance_fake.fill_resting("lim-1", "0.015")["status"] == "FILLED"
    assert query(client)["executedQty"] == "0.020" and binance_fake.open_orders == {}
    assert [t["qty"] for t in binance_fake.trades if t["orderId"] == answer["orderId"]] == ["0.005", "0.015"]


def test_a_cancel_by_order_id(client, binance_fake):
    answer = limit(client, "BUY", "44000.0")
    assert client.cancel_order("BTCUSDT", orderId=answer["orderId"])["status"] == "CANCELED"


def test_cancelling_a_filled_or_unknown_order_is_refused(client, binance_fake):
    limit(client, "BUY", "45100.0")  # filled at once
    for cid in ("lim-1", "never-sent"):
        error = refused(lambda cid=cid: client.cancel_order("BTCUSDT", origClientOrderId=cid))
        assert (error.status_code, error.error_code, error.error_message) == (400, -2011, "Unknown order sent.")
    market = client.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.010", newClientOrderId="mkt-1")
    assert market["status"] == "FILLED"
    assert refused(lambda: client.cancel_order("BTCUSDT", origClientOrderId="mkt-1")).error_code == -2011


def test_a_price_off_the_tick_is_refused(client, binance_fake):
    error = refused(lambda: limit(client, "BUY", "44000.05"))  # BTCUSDT's tick is 0.10
    assert (error.status_code, error.error_code, error.error_message) == (400, -4014, "Price not increased by tick size.")
    assert refused(lambda: limit(client, "BUY", "44000.123")).error_code == -1111  # past pricePrecision (2)
    assert binance_fake.orders == []


def test_a_limit_order_needs_its_time_in_force_and_price(client, binance_fake):
    error = refused(lambda: limit(client, "BUY", "44000.0", timeInForce=None))
    assert (error.status_code, error.error_code) == (400, -1102)
    assert error.error_message.startswith("Mandatory parameter 'timeInForce' was not sent")
    assert refused(lambda: limit(client, "BUY", None)).error_code == -1102
    assert binance_fake.orders == []


def test_quantity_notional_and_mode_are_checked_as_for_a_market_order(client, binance_fake):
    assert refused(lambda: limit(client, "BUY", "44000.0", quantity="0.0101")).error_code == -1111
    assert refused(lambda: limit(client, "BUY", "40000.0", quantity="0.001")).error_code == -4164  # 40 < 100 at its price
    assert refused(lambda: limit(client, "SELL", "46000.0", reduceOnly="true")).error_code == -2022  # no position
    binance_fake.hedge_mode = True
    assert refused(lambda: limit(client, "BUY", "44000.0")).error_code == -4061
    answer = limit(client, "BUY", "44000.0", positionSide="LONG")
    assert answer["positionSide"] == "LONG" and answer["status"] == "NEW"
    binance_fake.set_price("BTCUSDT", "44000")
    assert binance_fake.position("BTCUSDT", "LONG") == D("0.010")


def test_a_resting_client_order_id_cannot_be_reused(client, binance_fake):
    limit(client, "BUY", "44000.0")
    assert refused(lambda: limit(client, "BUY", "43000.0")).error_code == -4116
    assert len(binance_fake.orders) == 1


def test_the_user_stream_tells_new_fills_and_cancels(client, binance_fake):
    key = client.new_listen_key()["listenKey"]
    with connect(f"{binance_fake.ws_url}/{key}", open_timeout=5) as stream:
        binance_fake.wait_for_stream()

        def updates(count: int) -> list[dict]:
            events = [json.loads(stream.recv(timeout=5)) for _ in range(count)]
            return [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE"]

        limit(client, "BUY", "44000.0", quantity="0.020")
        [new] = updates(1)
        assert (new["c"], new["x"], new["X"], new["o"], new["f"], new["p"], new["z"]) == (
            "lim-1", "NEW", "NEW", "LIMIT", "GTC", "44000.0", "0")

        binance_fake.fill_resting("lim-1", "0.005")  # ACCOUNT_UPDATE, then the trade
        [part] = updates(2)
        assert (part["x"], part["X"], part["l"], part["z"], part["L"], part["m"]) == (
            "TRADE", "PARTIALLY_FILLED", "0.005", "0.005", "44000.0", True)

        client.cancel_order("BTCUSDT", origClientOrderId="lim-1")
        [cancel] = updates(1)
        assert (cancel["x"], cancel["X"], cancel["l"], cancel["z"], D(cancel["ap"])) == (
            "CANCELED", "CANCELED", "0", "0.005", D("44000"))

        limit(client, "SELL", "45500.0", quantity="0.010", cid="lim-2", timeInForce="GTX")
        assert updates(1)[0]["X"] == "NEW"
        binance_fake.move_price("BTCUSDT", "45600")
        [filled] = updates(2)
        assert (filled["c"], filled["x"], filled["X"], filled["z"], D(filled["ap"]), filled["f"]) == (
            "lim-2", "TRADE", "FILLED", "0.010", D("45500"), "GTX")
