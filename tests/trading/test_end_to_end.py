"""The real path: POST /webhook → queued job → worker task → Binance adapter → fake exchange over HTTP."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from preferences.models import StrategyPreference
from tests.support.cluster import database_url
from tests.support.queue import queued_jobs, run_queued_jobs
from tests.support.webhook import strategy_create, webhook_post
from trading.exchange import reset_exchange
from trading.models import Execution, Order, Position, Signal, SymbolLane
from trading.tasks import execute_signal
from trading.webhook import RATE_LIMITER

D = Decimal


@pytest.fixture(autouse=True)
def _setup(binance_settings):
    RATE_LIMITER.reset()


@pytest.fixture
def client(committed_client):
    return committed_client


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT", "DOGEUSDT"], leverage=5,
                                             allocation_pct=D(10), sizing="allocation")


def alert(client, action="buy", symbol="BTCUSDT", *, execute=True, **fields) -> Signal:
    signal_id = webhook_post(client, action, symbol=symbol, accepted=(200, 202), **fields)
    if execute:
        run_queued_jobs()
    return Signal.objects.get(pk=signal_id)


def sent(fake) -> list[dict]:
    return [
        {k: r.params.get(k) for k in ("symbol", "side", "quantity", "reduceOnly")}
        for r in fake.requests_to("/fapi/v1/order", "POST")
    ]


def test_it_fills_the_seed_example_sized_from_equity(client, strategy, binance_fake):
    signal = alert(client, quantity=0.001)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == "filled", execution.reason
    # allocation sizing: 10% × 10,000 USDT equity × 5x ÷ 45,000 = 0.1111… → 0.111 (step 0.001, rounded down)
    assert [o["executedQty"] for o in binance_fake.orders] == ["0.111"]
    assert binance_fake.leverage["BTCUSDT"] == 5
    order = execution.orders.get()
    assert (order.status, order.executed_qty, order.avg_price) == ("FILLED", D("0.111"), D("45000"))
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.111")
    assert Signal.objects.get(pk=signal.pk).status == "done"
    assert all(execution.stage_ms[stage] is not None for stage in ("queue", "dispatch", "prepare", "exchange", "total"))


def test_it_uses_the_signal_quantity_in_signal_sizing_rounded_down(client, strategy, binance_fake):
    strategy.sizing = "signal"
    strategy.save()
    alert(client, quantity="0.0279")
    assert sent(binance_fake) == [{"symbol": "BTCUSDT", "side": "BUY", "quantity": "0.027", "reduceOnly": None}]


@pytest.mark.parametrize("ticker", ["btcusdt", "BTCUSDT.P", "BINANCE:BTCUSDT.P", "BTCUSDTPERP"])
def test_it_trades_every_ticker_form_on_the_right_symbol(client, strategy, binance_fake, ticker):
    alert(client, symbol=ticker)
    assert [o["symbol"] for o in binance_fake.orders] == ["BTCUSDT"]


def test_it_closes_the_whole_position_with_one_reduce_only_order(client, strategy, binance_fake):
    alert(client)
    binance_fake.set_price("BTCUSDT", "46000")
    close = alert(client, "exit", price=46000)
    assert sent(binance_fake)[1] == {"symbol": "BTCUSDT", "side": "SELL", "quantity": "0.111", "reduceOnly": "true"}
    assert binance_fake.position("BTCUSDT") == 0
    order = Execution.objects.get(signal=close).orders.get()
    assert order.realized_pnl == D("111")
    assert Position.objects.get(symbol="BTCUSDT").amount == 0


def test_it_reverses_a_long_into_a_short(client, strategy, binance_fake):
    alert(client)
    reverse = alert(client, "sell")
    assert [(o["side"], o["quantity"], o["reduceOnly"]) for o in sent(binance_fake)[1:]] == [
        ("SELL", "0.111", "true"), ("SELL", "0.111", None)
    ]
    assert binance_fake.position("BTCUSDT") == D("-0.111")
    assert Execution.objects.get(signal=reverse).orders.count() == 2


def test_it_sends_nothing_for_a_sell_on_a_long_only_strategy_when_flat(client, strategy, binance_fake):
    strategy.direction = "long"
    strategy.save()
    signal = alert(client, "sell")
    assert binance_fake.orders == [] and sent(binance_fake) == []
    assert Signal.objects.get(pk=signal.pk).status == "filtered"
    assert "filtered by direction" in Execution.objects.get(signal=signal).reason


def test_it_sends_nothing_below_the_minimum_notional(client, strategy, binance_fake):
    strategy.allocation_pct, strategy.leverage = D("0.1"), 1
    strategy.save()
    signal = alert(client)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == "skipped" and "minimum" in execution.reason
    assert sent(binance_fake) == []


def test_it_rounds_quantities_down_to_coarse_steps(client, strategy, binance_fake):
    binance_fake.set_price("DOGEUSDT", "0.1234")
    alert(client, symbol="DOGEUSDT", price="0.1234")
    # 10% × 10,000 × 5 ÷ 0.1234 = 40,518.6… → 40,518 (step 1)
    assert sent(binance_fake)[0]["quantity"] == "40518"


def test_it_records_insufficient_margin_as_a_rejection_without_retrying(client, strategy, binance_fake):
    strategy.sizing = "signal"
    strategy.save()
    signal = alert(client, quantity="50")  # 2.25M USDT at 5x
    execution = Execution.objects.get(signal=signal)
    assert execution.status == "rejected" and execution.error_code == "-2019"
    assert "not enough margin" in execution.reason
    assert len(sent(binance_fake)) == 1 and binance_fake.orders == []


def test_it_sends_leverage_and_margin_type_only_when_they_change(client, strategy, binance_fake):
    alert(client)
    alert(client, price=45001)
    assert len(binance_fake.requests_to("/fapi/v1/symbolConfig")) == 1  # read once, then remembered
    assert len(binance_fake.requests_to("/fapi/v1/leverage")) == 1  # 20 at the exchange, 5 wanted
    assert len(binance_fake.requests_to("/fapi/v1/marginType")) == 0  # already cross
    strategy.leverage, strategy.margin_type = 3, "isolated"
    strategy.save()
    alert(client, price=45002)
    assert [r.params["leverage"] for r in binance_fake.requests_to("/fapi/v1/leverage")] == ["5", "3"]
    assert binance_fake.margin_type["BTCUSDT"] == "ISOLATED"


def test_it_costs_only_the_order_request_in_steady_state(client, strategy, binance_fake):
    alert(client)  # warms the caches: clock, rules, position mode, leverage, margin, equity snapshot
    before = len(binance_fake.requests)
    alert(client, price=45001)
    assert [r.path for r in binance_fake.requests[before:]] == ["/fapi/v1/order"]


# --- faults ----------------------------------------------------------------------------------------
def test_it_finds_the_order_after_a_503_that_followed_the_fill(client, strategy, binance_fake):
    binance_fake.fail_next("/fapi/v1/order", after_fill=True)
    signal = alert(client)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == "filled" and len(binance_fake.orders) == 1
    assert len(binance_fake.requests_to("/fapi/v1/order", "GET")) >= 1
    assert execution.orders.get().executed_qty == D("0.111")


def test_it_finds_an_order_that_filled_after_the_request_timed_out(client, strategy, binance_fake, settings):
    settings.BINANCE_TIMEOUT = 0.4
    reset_exchange()
    binance_fake.stall_next("/fapi/v1/order", 0.7)  # fills at 0.7 s, inside the 1 s receive window
    signal = alert(client)
    assert Execution.objects.get(signal=signal).status == "filled"
    assert len(binance_fake.orders) == 1 and len(sent(binance_fake)) == 1


def test_it_resends_once_a_timed_out_request_can_no_longer_be_accepted(client, strategy, binance_fake, settings):
    settings.BINANCE_TIMEOUT = 0.4
    reset_exchange()
    binance_fake.stall_next("/fapi/v1/order", 1.3)  # arrives after its receive window: refused, never filled
    signal = alert(client)
    assert Execution.objects.get(signal=signal).status == "filled"
    assert len(binance_fake.orders) == 1 and len(sent(binance_fake)) == 2


def test_it_recovers_from_clock_drift(client, strategy, binance_fake):
    alert(client)
    binance_fake.clock_offset_ms = -2500  # Binance's clock falls behind: our timestamps are "in the future"
    signal = alert(client, price=45001)
    assert Execution.objects.get(signal=signal).status == "filled" and len(binance_fake.orders) == 2


def test_it_waits_out_a_rate_limit(client, strategy, binance_fake):
    binance_fake.rate_limit_next("/fapi/v1/order", retry_after=1)
    signal = alert(client)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == "filled" and len(binance_fake.orders) == 1 and len(sent(binance_fake)) == 2


def test_it_acts_once_when_the_task_runs_twice(client, strategy, binance_fake):
    signal = alert(client, execute=False)
    [job] = queued_jobs()
    run_queued_jobs()
    execute_signal(*job["args"])
    assert len(binance_fake.orders) == 1 and Order.objects.count() == 1
    assert Execution.objects.get(signal=signal).status == "filled"


def test_it_looks_up_instead_of_resending_after_a_worker_died_mid_order(client, strategy, binance_fake):
    signal = alert(client)
    execution = Execution.objects.get(signal=signal)
    # Rewind our records to the instant after the request left and before its answer was saved.
    Order.objects.filter(execution=execution).update(
        status="sent", exchange_order_id="", executed_qty=0, applied_qty=0, avg_price=None
    )
    Execution.objects.filter(pk=execution.pk).update(status="running", finished_at=None)
    Signal.objects.filter(pk=signal.pk).update(status="executing")
    Position.objects.all().delete()
    SymbolLane.objects.filter(symbol="BTCUSDT").update(holder="dead", lease_until=timezone.now() - timedelta(seconds=1))
    execute_signal(signal.pk)
    execution.refresh_from_db()
    assert execution.status == "filled" and len(binance_fake.orders) == 1
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.111")


@pytest.mark.django_db(transaction=True)
def test_it_places_one_order_when_two_workers_take_the_same_signal(binance_fake):
    strategy_create()
    signal = alert(Client(), execute=False)
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        execute_signal(signal.pk)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(binance_fake.orders) == 1
    assert Execution.objects.get(signal=signal).status == "filled"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_places_one_order_when_a_worker_is_killed_while_its_order_is_in_flight(binance_fake, binance_settings):
    import os
    import signal as signals
    import subprocess
    import sys
    import time

    strategy_create()
    signal = alert(Client(), execute=False)
    binance_fake.stall_next("/fapi/v1/order", 1.0)  # the order fills 1 s after it arrives
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
           "EXCHANGE": "binance", "BINANCE_BASE_URL": binance_fake.url, "BINANCE_API_KEY": binance_settings.BINANCE_API_KEY,
           "BINANCE_API_SECRET": binance_settings.BINANCE_API_SECRET, "BINANCE_RECV_WINDOW": "5000", "BINANCE_TIMEOUT": "5"}
    code = f"import django; django.setup(); from trading.tasks import execute_signal; execute_signal({signal.pk})"
    worker = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 20
    while not binance_fake.requests_to("/fapi/v1/order", "POST") and time.monotonic() < deadline:
        time.sleep(0.02)
    worker.send_signal(signals.SIGKILL)  # dies with the order in flight, before it hears the answer
    worker.wait()
    time.sleep(1.2)  # the exchange fills it anyway
    assert len(binance_fake.orders) == 1
    order = Order.objects.get(execution__signal=signal)
    assert order.status == "sent"  # what the dead worker committed before sending

    # Later: the dead worker's lease has lapsed; the sweeper queues the signal again.
    SymbolLane.objects.filter(symbol="BTCUSDT").update(lease_until=timezone.now() - timedelta(seconds=1))
    execute_signal(signal.pk)
    order.refresh_from_db()
    assert (order.status, order.executed_qty) == ("FILLED", D("0.111"))
    assert len(binance_fake.orders) == 1 and len(binance_fake.requests_to("/fapi/v1/order", "POST")) == 1
    assert Execution.objects.get(signal=signal).status == "filled"
    assert Signal.objects.get(pk=signal.pk).status == "done"


@pytest.mark.django_db(transaction=True)
def test_it_keeps_a_symbols_order_across_concurrent_workers(binance_fake):
    strategy_create()
    binance_fake.set_position("BTCUSDT", "0.2", "44000")
    Position.objects.create(symbol="BTCUSDT", amount=D("0.2"), entry_price=D("44000"))
    client = Client()
    close = alert(client, "close", execute=False)
    opening = alert(client, "buy", execute=False, price=45001)
    barrier = threading.Barrier(2)

    def worker(signal_id: int) -> None:
        barrier.wait()
        execute_signal(signal_id)
        connection.close()

    # The open's task starts first: whoever gets the lane still executes the close first.
    threads = [threading.Thread(target=worker, args=(pk,)) for pk in (opening.pk, close.pk)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [(o["side"], o["reduceOnly"]) for o in sent(binance_fake)] == [("SELL", "true"), ("BUY", None)]
    assert binance_fake.position("BTCUSDT") == Order.objects.get(execution__signal=opening).executed_qty
    assert set(Signal.objects.values_list("status", flat=True)) == {"done"}
