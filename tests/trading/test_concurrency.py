"""Many orders in flight from one worker process (issue #18): across symbols at once, within a symbol in
receipt order, each order sent once — through the real webhook, the order threads and the fake
exchange 100 ms away."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.test import Client

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from tests.support.webhook import webhook_post
from trading import concurrency
from trading.concurrency import ORDER_THREADS, OrderThreads
from trading.models import Execution, Order, Signal
from trading.webhook import RATE_LIMITER

PRICES = {"BTCUSDT": "45000", "ETHUSDT": "3000", "BNBUSDT": "600", "SOLUSDT": "150", "XRPUSDT": "0.6",
          "DOGEUSDT": "0.15", "ADAUSDT": "0.5", "LINKUSDT": "15", "AVAXUSDT": "30", "LTCUSDT": "80"}


@pytest.fixture
def order_threads():
    ORDER_THREADS.start(16)
    yield ORDER_THREADS
    ORDER_THREADS.stop(timeout=60)


def post(client: Client, symbol: str, number: int) -> int:
    return webhook_post(client, symbol=symbol, price=PRICES[symbol], strategy="BURST", id=f"burst-{number}")


def wait_until_final(count: int, timeout: float = 60) -> None:
    """Until `count` signals are final and every order thread is done (a drain looks once more after)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (
            ORDER_THREADS.busy() or Signal.objects.filter(status__in=Signal.FINAL_STATUSES).count() < count):
        time.sleep(0.05)


def most_in_flight(orders: list[Order]) -> int:
    """The most orders sent and not yet answered at any one moment."""
    edges = sorted([(o.sent_at, 1) for o in orders] + [(o.acknowledged_at, -1) for o in orders])
    level = most = 0
    for _, step in edges:
        level += step
        most = max(most, level)
    return most


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_keeps_many_orders_in_flight_each_symbols_in_receipt_order_and_each_once(binance_settings, binance_fake,
                                                                                    order_threads):
    RATE_LIMITER.reset()
    StrategyPreference.objects.create(name="BURST", products=list(PRICES), leverage=5, allocation_pct=Decimal(2))
    for symbol, price in PRICES.items():
        binance_fake.set_price(symbol, price)
    binance_fake.latency = 0.1  # every request takes 100 ms there and back
    client = Client()
    signals = [post(client, list(PRICES)[number % 10], number) for number in range(30)]
    run_queued_jobs()  # each job hands its symbol to an order thread and returns at once
    wait_until_final(30)

    statuses = dict(Execution.objects.values_list("signal_id", "status"))
    assert [statuses.get(signal) for signal in signals] == ["filled"] * 30
    client_ids = [order["clientOrderId"] for order in binance_fake.orders]
    assert len(client_ids) == 30 and len(set(client_ids)) == 30  # every signal once, none twice
    by_client_id = dict(Order.objects.values_list("client_order_id", "execution__signal_id"))
    for symbol in PRICES:
        at_exchange = [by_client_id[order["clientOrderId"]] for order in binance_fake.orders if order["symbol"] == symbol]
        received = list(Signal.objects.filter(symbol=symbol).order_by("received_at", "id").values_list("id", flat=True))
        assert at_exchange == received, symbol  # within a symbol: receipt order, one after the other
    orders = list(Order.objects.all())
    assert most_in_flight(orders) >= 5  # across symbols: many at once (one at a time before)


def test_it_runs_work_for_a_key_again_rather_than_twice_at_once(db):
    threads = OrderThreads()
    threads.start(4)
    gate, runs, running, most = threading.Event(), [], [0], [0]

    def work() -> None:
        running[0] += 1
        most[0] = max(most[0], running[0])
        gate.wait(5)
        runs.append(time.monotonic())
        running[0] -= 1

    try:
        assert threads.submit("BTCUSDT", work) is True
        assert threads.submit("BTCUSDT", work) is False  # under way: it looks once more when it ends
        assert threads.submit("BTCUSDT", work) is False  # still the one more look
        gate.set()
        deadline = time.monotonic() + 5
        while threads.busy() and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        threads.stop(timeout=5)
    assert len(runs) == 2 and most[0] == 1


def test_it_runs_inline_until_started(db):
    threads = OrderThreads()
    assert threads.started is False
    threads.start(2)
    try:
        assert threads.started is True and threads.size == 2
    finally:
        threads.stop(timeout=5)
    assert threads.started is False


def test_it_ends_idle_threads_and_closes_their_connections(transactional_db, monkeypatch):
    monkeypatch.setattr(concurrency, "THREAD_IDLE", 0.1)
    threads = OrderThreads()
    threads.start(2)
    seen = []

    def work() -> None:
        connection.ensure_connection()
        seen.append(connections["default"])  # this thread's own wrapper, not the proxy

    try:
        threads.submit("ETHUSDT", work)
        deadline = time.monotonic() + 5
        while (threads.threads or not seen) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        threads.stop(timeout=5)
    assert not threads.threads and seen and seen[0].connection is None  # the thread's own, closed as it ended
