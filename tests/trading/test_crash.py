"""Fault tests with real time and real processes (issue #7's "done when"): a Retry-After longer than the
lease, and a worker cluster SIGKILLed with orders in flight. Slow: CI runs them once per broker."""

import json
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from preferences.models import StrategyPreference
from tests.support.cluster import Worker, wait_for_worker, worker_env
from trading.models import Execution, Signal
from trading.tasks import execute_signal
from trading.webhook import RATE_LIMITER

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PASSPHRASE = "test-passphrase-0123456789"
PRICES = {"BTCUSDT": "45000", "ETHUSDT": "3000", "SOLUSDT": "150", "XRPUSDT": "0.6"}


@pytest.fixture(autouse=True)
def _setup(binance_settings):
    RATE_LIMITER.reset()


def post(client: Client, symbol: str = "BTCUSDT", action: str = "buy", **fields: object) -> Signal:
    data = {"action": action, "symbol": symbol, "price": PRICES[symbol], "strategy": "CRASH", "passphrase": PASSPHRASE,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
    response = client.post("/webhook", json.dumps(data), content_type="application/json")
    assert response.status_code == 202, response.content
    return Signal.objects.get(pk=response.json()["signal_id"])


def test_it_fills_twice_when_a_retry_after_outlasts_the_lease_and_a_second_signal_arrives(binance_fake):
    StrategyPreference.objects.create(name="CRASH", products=["BTCUSDT"], leverage=5)
    binance_fake.rate_limit_next("/fapi/v1/order", retry_after=25)
    client = Client()
    first = post(client)
    holder = threading.Thread(target=lambda: (execute_signal(first.pk), connection.close()))
    holder.start()  # answered 429 Retry-After 25: sleeps, holding the lane, renewing it every second
    time.sleep(max(0.0, 22 - (time.time() - first.received_at.timestamp())))
    second = post(client, price="45001")  # 22 s later: its own task finds the lane held
    assert execute_signal(second.pk) == "BTCUSDT: lane busy or nothing pending"
    holder.join(timeout=40)

    client_ids = [order["clientOrderId"] for order in binance_fake.orders]
    assert len(client_ids) == 2 and len(set(client_ids)) == 2  # two fills, neither doubled
    assert len(binance_fake.requests_to("/fapi/v1/order", "POST")) == 3  # the 429, then one each
    assert set(Execution.objects.values_list("status", flat=True)) == {"filled"}
    assert set(Signal.objects.values_list("status", flat=True)) == {"done"}


def test_it_fills_every_signal_once_when_the_worker_is_killed_with_orders_in_flight(binance_fake, binance_settings):
    StrategyPreference.objects.create(name="CRASH", products=list(PRICES), leverage=5, allocation_pct=Decimal(2))
    for symbol, price in PRICES.items():
        binance_fake.set_price(symbol, price)
    binance_fake.order_delay = 0.3  # every order is in flight for 0.3 s
    env = worker_env(binance_fake)
    worker = Worker(env)
    try:
        wait_for_worker(worker.started_at)
        client, killed_at = Client(), None
        signals = []
        for index in range(20):
            signals.append(post(client, list(PRICES)[index % 4]))
            if killed_at is None and len(binance_fake.requests_to("/fapi/v1/order", "POST")) >= 3:
                in_flight = len(binance_fake.requests_to("/fapi/v1/order", "POST")) - len(binance_fake.orders)
                worker.kill()
                killed_at = time.time()
                worker = Worker(env)  # restarted at once, as systemd's Restart=always would
            time.sleep(0.1)
        assert killed_at is not None, "the worker was never killed: no order reached the exchange in time"
        assert in_flight >= 1, "no order was in flight when the worker was killed"
        deadline = time.time() + 60
        while Signal.objects.exclude(status__in=Signal.FINAL_STATUSES).exists() and time.time() < deadline:
            time.sleep(0.2)
    finally:
        worker.stop()

    assert not Signal.objects.exclude(status__in=Signal.FINAL_STATUSES).exists(), worker.output()
    client_ids = [order["clientOrderId"] for order in binance_fake.orders]
    assert len(client_ids) == 20 and len(set(client_ids)) == 20, (in_flight, client_ids)  # 20 fills, none doubled
    statuses = dict(Execution.objects.values_list("signal_id", "status"))
    assert [statuses.get(signal.pk) for signal in signals] == ["filled"] * 20  # none skipped
