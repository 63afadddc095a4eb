"""The Binance adapter through the real connector, over real HTTP, against the fake exchange."""

import logging
from decimal import Decimal

import pytest

from tests.fakes.binance_server import API_KEY
from trading.exchange import (
    NothingToReduce,
    OrderRequest,
    OutcomeUnknown,
    PermanentError,
    PrecisionRejected,
    RetryableError,
    SymbolSettings,
    UnknownSymbol,
)
from trading.exchange.binance import BinanceExchange

D = Decimal


def buy(quantity: str = "0.010", cid: str = "at-1-x-1", **changes) -> OrderRequest:
    return OrderRequest(**{"symbol": "BTCUSDT", "side": "BUY", "quantity": D(quantity), "client_order_id": cid, **changes})


def place(exchange: BinanceExchange, request: OrderRequest):
    return exchange.place_market_order(request, stamp=exchange.order_stamp())


def test_it_places_a_market_order_and_reads_the_fill_as_decimals(binance_exchange, binance_fake):
    result = place(binance_exchange, buy("0.010"))
    assert (result.state, result.executed_qty, result.avg_price) == ("FILLED", D("0.010"), D("45000"))
    assert result.client_order_id == "at-1-x-1" and result.exchange_order_id
    [sent] = binance_fake.requests_to("/fapi/v1/order", "POST")
    assert sent.params["quantity"] == "0.010" and sent.params["type"] == "MARKET"
    assert sent.params["newOrderRespType"] == "RESULT" and "reduceOnly" not in sent.params
    assert binance_fake.position("BTCUSDT") == D("0.010")


def test_it_sends_reduce_only_in_one_way_mode(binance_exchange, binance_fake):
    binance_fake.set_position("BTCUSDT", "0.02", "44000")
    place(binance_exchange, buy("0.02", side="SELL", reduce_only=True))
    assert binance_fake.requests_to("/fapi/v1/order", "POST")[0].params["reduceOnly"] == "true"
    assert binance_fake.position("BTCUSDT") == 0


def test_it_sends_the_position_side_and_no_reduce_only_in_hedge_mode(binance_exchange, binance_fake):
    binance_fake.hedge_mode = True
    assert binance_exchange.is_hedge_mode() and binance_exchange.is_hedge_mode()
    assert len(binance_fake.requests_to("/fapi/v1/positionSide/dual")) == 1  # read once
    place(binance_exchange, buy(position_side="LONG", reduce_only=True))
    params = binance_fake.requests_to("/fapi/v1/order", "POST")[0].params
    assert params["positionSide"] == "LONG" and "reduceOnly" not in params


def test_it_refuses_a_wrong_secret_without_repeating_it(binance_settings, binance_fake):
    exchange = BinanceExchange(api_key=API_KEY, api_secret="not-the-secret-4711", base_url=binance_fake.url,
                               timeout=1, recv_window=1000)
    with pytest.raises(PermanentError) as refused:
        place(exchange, buy())
    assert refused.value.code == "-1022" and "BINANCE_API_SECRET" in refused.value.reason
    assert "not-the-secret-4711" not in str(refused.value) and binance_fake.orders == []


def test_it_refuses_a_wrong_key(binance_settings, binance_fake):
    exchange = BinanceExchange(api_key="wrong-key", api_secret="x", base_url=binance_fake.url, timeout=1, recv_window=1000)
    with pytest.raises(PermanentError) as refused:
        exchange.get_balance()
    assert refused.value.code == "-2015" and "wrong-key" not in str(refused.value)


def test_it_corrects_for_a_clock_that_runs_behind_the_exchanges(binance_exchange, binance_fake):
    binance_exchange.measure_clock()
    binance_fake.clock_offset_ms = 3000  # Binance's clock is 3 s ahead: our timestamps look old
    with pytest.raises(RetryableError, match="receive window"):
        place(binance_exchange, buy())  # refused (-1021): nothing happened; the caller stamps anew
    result = place(binance_exchange, buy())
    assert result.state == "FILLED" and len(binance_fake.orders) == 1
    assert len(binance_fake.requests_to("/fapi/v1/order", "POST")) == 2
    assert abs(binance_exchange.client.offset_ms - 3000) < 200


def test_it_signs_an_order_with_the_stamp_it_was_given(binance_exchange, binance_fake):
    stamp = binance_exchange.order_stamp()
    binance_exchange.place_market_order(buy(), stamp=stamp)
    assert binance_fake.requests_to("/fapi/v1/order", "POST")[0].params["timestamp"] == str(stamp)


def test_it_maps_rate_limits_to_retryable_with_retry_after(binance_exchange, binance_fake):
    binance_fake.rate_limit_next("/fapi/v1/order", retry_after=2)
    with pytest.raises(RetryableError) as limited:
        place(binance_exchange, buy())
    assert limited.value.retry_after == 2 and binance_fake.orders == []


def test_it_reports_a_503_after_filling_as_outcome_unknown_and_finds_the_order(binance_exchange, binance_fake):
    binance_fake.fail_next("/fapi/v1/order", after_fill=True)
    with pytest.raises(OutcomeUnknown):
        place(binance_exchange, buy(cid="at-9-y-1"))
    found = binance_exchange.get_order("BTCUSDT", "at-9-y-1", stamp=None)
    assert found is not None and found.state == "FILLED" and found.executed_qty == D("0.010")


def test_it_reports_a_stall_past_the_timeout_as_outcome_unknown(binance_exchange, binance_fake):
    binance_exchange.measure_clock()
    binance_fake.stall_next("/fapi/v1/order", 1.5)
    with pytest.raises(OutcomeUnknown, match="did not answer within 1 s"):
        place(binance_exchange, buy())


def test_it_treats_5xx_on_reads_as_retryable(binance_exchange, binance_fake):
    binance_fake.fail_next("/fapi/v1/premiumIndex", method="GET", status=502)
    with pytest.raises(RetryableError):
        binance_exchange.get_mark_price("BTCUSDT")
    assert binance_exchange.get_mark_price("BTCUSDT") == D("45000")


def test_it_treats_a_refused_connection_as_retryable(binance_settings):
    exchange = BinanceExchange(api_key="k", api_secret="s", base_url="http://127.0.0.1:9", timeout=0.5, recv_window=1000)
    with pytest.raises(RetryableError, match="could not connect"):
        exchange.server_time_ms()


def test_it_answers_none_for_an_order_that_does_not_exist(binance_exchange):
    assert binance_exchange.get_order("BTCUSDT", "never-sent", stamp=None) is None


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        (buy("0.0015"), "-1111", "does not fit BTCUSDT's step"),
        (buy("0.001"), "-4164", "minimum notional"),
        (buy("0.010", side="SELL", reduce_only=True), "-2022", "no position to reduce"),
        (buy("100"), "-2019", "not enough margin"),
        (buy(symbol="NOPEUSDT"), "-1121", "not a USDⓈ-M perpetual"),
    ],
)
def test_it_maps_refusals_to_permanent_errors_with_plain_reasons(binance_exchange, binance_fake, request_, code, words):
    with pytest.raises(PermanentError) as refused:
        place(binance_exchange, request_)
    assert refused.value.code == code and words in refused.value.reason
    assert binance_fake.orders == []


def test_it_treats_margin_type_already_set_as_success(binance_exchange, binance_fake):
    binance_exchange.set_margin_type("BTCUSDT", "isolated")
    binance_exchange.set_margin_type("BTCUSDT", "isolated")  # -4046 "No need to change margin type."
    assert binance_fake.margin_type["BTCUSDT"] == "ISOLATED"
    binance_exchange.set_leverage("BTCUSDT", 7)
    assert binance_fake.leverage["BTCUSDT"] == 7


def test_it_fetches_symbol_rules_once(binance_exchange, binance_fake):
    rules = binance_exchange.get_symbol_rules("BTCUSDT")
    assert (rules.step_size, rules.min_qty, rules.max_qty, rules.min_notional) == (D("0.001"), D("0.001"), D("120"), D("100"))
    assert binance_exchange.get_symbol_rules("ETHUSDT").tick_size == D("0.01")
    assert len(binance_fake.requests_to("/fapi/v1/exchangeInfo")) == 1


def test_it_reads_balance_positions_and_server_time(binance_exchange, binance_fake):
    binance_fake.set_position("ETHUSDT", "-2", "3100")
    balance = binance_exchange.get_balance()
    assert balance.wallet_balance == D("10000") and balance.unrealized_pnl == D("200")
    assert balance.equity == D("10200")
    [position] = binance_exchange.get_positions()
    assert (position.symbol, position.amount, position.entry_price, position.unrealized_pnl) == (
        "ETHUSDT", D("-2"), D("3100"), D("200")
    )
    assert abs(binance_exchange.server_time_ms() - binance_fake.server_ms()) < 1000


# --- symbol rules (finding 3) ------------------------------------------------------------------------
def test_it_loads_symbol_rules_on_first_use_on_a_freshly_booted_host(binance_exchange, binance_fake, monkeypatch):
    # time.monotonic() counts from boot: on a host up 2 minutes it is ~120, never "600 s after 0".
    monkeypatch.setattr("trading.exchange.binance.time.monotonic", lambda: 120.0)
    assert binance_exchange.get_symbol_rules("BTCUSDT").step_size == D("0.001")


def test_it_refreshes_symbol_rules_after_an_hour(binance_exchange, binance_fake, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("trading.exchange.binance.time.monotonic", lambda: clock[0])
    binance_exchange.get_symbol_rules("BTCUSDT")
    clock[0] += 3601
    binance_exchange.get_symbol_rules("BTCUSDT")
    assert len(binance_fake.requests_to("/fapi/v1/exchangeInfo")) == 2


def test_it_refreshes_symbol_rules_when_the_exchange_says_they_changed(binance_exchange, binance_fake):
    with pytest.raises(UnknownSymbol):
        place(binance_exchange, buy(symbol="NOPEUSDT"))
    binance_fake.fail_next("/fapi/v1/order", status=400, code=-1111, msg="Precision is over the maximum")
    with pytest.raises(PrecisionRejected):
        place(binance_exchange, buy())
    binance_exchange.get_symbol_rules("BTCUSDT")
    assert len(binance_fake.requests_to("/fapi/v1/exchangeInfo")) == 2


# --- the wire format of quantities (finding 4) --------------------------------------------------------
def test_it_sends_a_quantity_read_back_from_the_database_with_the_steps_decimals(binance_exchange, binance_fake):
    result = place(binance_exchange, buy("0.1110000000"))  # as a DecimalField(decimal_places=10) reads it
    assert result.state == "FILLED"
    assert binance_fake.requests_to("/fapi/v1/order", "POST")[0].params["quantity"] == "0.111"


def test_the_fake_refuses_more_decimals_than_the_step_as_binance_does(binance_exchange, binance_fake):
    binance_exchange.get_symbol_rules("BTCUSDT")
    signed = binance_exchange.client.new_order  # around the adapter, as a careless caller would send it
    from binance.error import ClientError
    with pytest.raises(ClientError) as refused:
        signed("BTCUSDT", "BUY", "MARKET", quantity="0.1110000000", recvWindow=5000)
    assert refused.value.error_code == -1111


# --- outcome-unknown codes, lookups, bans (findings 8, 10) ---------------------------------------------
@pytest.mark.parametrize("code", [-1000, -1001, -1006, -1007, -1008])
def test_it_reports_an_order_answered_with_an_unknown_status_code_as_outcome_unknown(binance_exchange, binance_fake, code):
    binance_fake.fail_next("/fapi/v1/order", status=400 if code != -1001 else 503, code=code)
    with pytest.raises(OutcomeUnknown):
        place(binance_exchange, buy())


@pytest.mark.parametrize("code", [-1000, -1007])
def test_it_treats_an_unknown_status_code_on_a_read_as_retryable(binance_exchange, binance_fake, code):
    binance_fake.fail_next("/fapi/v3/account", method="GET", status=400, code=code)
    with pytest.raises(RetryableError):
        binance_exchange.get_balance()


def test_it_calls_an_absent_order_conclusive_only_after_its_receive_window(binance_exchange, binance_fake):
    stamp = binance_exchange.order_stamp()
    with pytest.raises(OutcomeUnknown) as early:
        binance_exchange.get_order("BTCUSDT", "at-never-1", stamp=stamp)
    # recvWindow 1000 ms (the fixture) + the 2000 ms settle margin
    assert 2.5 < early.value.retry_after <= 3.0
    assert binance_exchange.get_order("BTCUSDT", "at-never-1", stamp=stamp - 3100) is None


def test_it_maps_a_reduce_only_refusal_to_nothing_to_reduce(binance_exchange, binance_fake):
    with pytest.raises(NothingToReduce):
        place(binance_exchange, buy(side="SELL", reduce_only=True))


def test_it_holds_every_request_back_after_a_ban(binance_exchange, binance_fake):
    binance_exchange.measure_clock()
    binance_fake.rate_limit_next("/fapi/v1/order", retry_after=30, status=418)
    with pytest.raises(RetryableError):
        place(binance_exchange, buy())
    before = len(binance_fake.requests)
    with pytest.raises(RetryableError, match="holding back") as held:
        binance_exchange.get_balance()
    assert len(binance_fake.requests) == before and 29 < held.value.retry_after <= 30


def test_it_reads_the_position_mode_again_after_a_mismatch(binance_exchange, binance_fake):
    assert binance_exchange.is_hedge_mode() is False
    binance_fake.hedge_mode = True  # switched in Binance's own UI
    with pytest.raises(PermanentError):
        place(binance_exchange, buy())  # -4061
    assert binance_exchange.is_hedge_mode() is True


# --- leverage and margin type as Binance has them (issue #17) ------------------------------------------
def test_it_reads_leverage_and_margin_type_per_symbol(binance_exchange, binance_fake):
    binance_fake.leverage["BTCUSDT"] = 25
    binance_fake.change_margin_type_in_app("ETHUSDT", "ISOLATED")
    one = binance_exchange.get_symbol_settings(["BTCUSDT"])
    assert one == {"BTCUSDT": SymbolSettings("BTCUSDT", 25, "cross")}
    assert binance_fake.requests_to("/fapi/v1/symbolConfig")[0].params["symbol"] == "BTCUSDT"
    several = binance_exchange.get_symbol_settings(["BTCUSDT", "ETHUSDT", "NOTLISTED"])
    assert several == {"BTCUSDT": SymbolSettings("BTCUSDT", 25, "cross"), "ETHUSDT": SymbolSettings("ETHUSDT", 20, "isolated")}
    assert "symbol" not in binance_fake.requests_to("/fapi/v1/symbolConfig")[1].params  # one request for all
    assert binance_exchange.get_symbol_settings([]) == {}


def test_positions_come_with_the_leverage_and_margin_type_in_force(binance_exchange, binance_fake):
    binance_fake.set_position("BTCUSDT", "0.010", "45000")
    binance_fake.leverage["BTCUSDT"] = 7
    binance_fake.change_margin_type_in_app("BTCUSDT", "ISOLATED")
    [position] = binance_exchange.get_positions()
    assert (position.leverage, position.margin_type) == (7, "isolated")


# --- nothing secret reaches the log, at any level -----------------------------------------------------
def test_no_listen_key_signature_or_raw_account_answer_reaches_the_log(binance_settings, binance_fake, caplog):
    import threading

    from trading.exchange import StreamConnected, get_exchange

    binance_settings.BINANCE_STREAM_URL = binance_fake.ws_url
    for name in ("", "urllib3", "websocket", "binance", "trading"):
        caplog.set_level(logging.DEBUG, logger=name or None)
    exchange = get_exchange()
    binance_fake.set_position("BTCUSDT", "0.010", "45000")
    exchange.get_balance()
    exchange.get_positions()
    stream = exchange.user_stream()
    stop = threading.Event()
    events = stream.events(stop)
    assert isinstance(next(events), StreamConnected)
    [key] = binance_fake.listen_keys
    stream.keepalive(key)  # PUT /fapi/v1/listenKey?listenKey=…
    stop.set()
    events.close()
    # The fake's own websocket server (`websockets`) logs its side; the adapter's client is websocket-client.
    ours = [record for record in caplog.records if not record.name.startswith("websockets")]
    assert any(record.name.startswith("urllib3") for record in ours)  # it did speak, query strings left out
    text = "\n".join(f"{record.name} {record.getMessage()}" for record in ours)
    assert key not in text and "signature=" not in text
    assert "totalWalletBalance" not in text and "positionAmt" not in text and "listenKey\"" not in text
    assert API_KEY not in text
