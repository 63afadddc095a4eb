"""The deployment's order budget (issue #18): every sender asks one shared budget before an order goes out,
so a burst never earns a 429 from Binance; a burst larger than it waits, first come first served."""

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.test import Client

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from tests.support.webhook import webhook_post
from trading import order_budget
from trading.concurrency import ORDER_THREADS
from trading.exchange import RateLimits, RateUsage, binance as binance_adapter
from trading.models import Execution, OrderBudget, Signal
from trading.order_budget import ORDER_BUDGET, exchange_counted, next_grant, weight_hold
from trading.webhook import RATE_LIMITER

PRICES = {"BTCUSDT": "45000", "ETHUSDT": "3000", "BNBUSDT": "600", "SOLUSDT": "150", "XRPUSDT": "0.6",
          "DOGEUSDT": "0.15", "ADAUSDT": "0.5", "LINKUSDT": "15", "AVAXUSDT": "30", "LTCUSDT": "80"}


@dataclass
class Account:
    """An exchange as the budget sees it: its limits and what it last said it counted."""

    limits: RateLimits
    usage: RateUsage = field(default_factory=RateUsage)
    account_id: str = "budget-test-account"

    def rate_limits(self) -> RateLimits:
        return self.limits

    def rate_usage(self) -> RateUsage:
        return self.usage


def forget(account: str) -> None:
    """A clean budget for the account: the database's goes with the test; Redis's outlives it."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        cache._cache.get_client(write=True).delete(
            *[cache.make_and_validate_key(f"order-budget:{account}:{part}") for part in ("grants", "weight", "seq")])


def granted(account: str) -> list[float]:
    """The moments granted, oldest first, as the budget stored them (seconds, its own clock)."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        key = cache.make_and_validate_key(f"order-budget:{account}:grants")
        return [score / 1000 for _, score in cache._cache.get_client().zrange(key, 0, -1, withscores=True)]
    return OrderBudget.objects.get(account=account).grants


# --- the rule ------------------------------------------------------------------------------------------
def test_it_grants_now_until_a_window_is_full_then_when_its_oldest_leaves():
    windows = [(3, 1.0)]
    assert next_grant([10.0, 10.1], 10.2, windows) == 10.2  # two of three: now
    assert next_grant([10.0, 10.1, 10.2], 10.3, windows) == 11.0  # full: the oldest leaves at 11.0
    assert next_grant([10.0, 10.1, 10.2], 11.5, windows) == 11.5


def test_it_never_grants_before_the_last_grant():
    assert next_grant([10.0, 12.0], 11.0, [(3, 1.0)]) == 12.0  # first come, first served


def test_it_keeps_the_tighter_of_two_windows():
    grants = [float(second) for second in range(5)]  # one a second, 0..4
    assert next_grant(grants, 4.5, [(10, 1.0), (5, 60.0)]) == 60.0  # five a minute: the first leaves at 60


def test_it_counts_orders_the_exchange_saw_that_no_grant_accounts_for():
    grants = [10.0, 10.5]
    exchange_counted(grants, (5,), 10.8, [(5, 1.0)])
    assert grants == [10.0, 10.5, 10.8, 10.8, 10.8]  # three sent by someone else, counted at 10.8
    exchange_counted(grants, (5,), 10.8, [(5, 1.0)])
    assert len(grants) == 5  # the same word twice changes nothing


def test_it_holds_orders_while_the_minutes_weight_is_nearly_spent():
    assert weight_hold(2279, 70.0, 50.0, 2400) == 50.0  # below 95 %: now
    assert weight_hold(2280, 70.0, 50.0, 2400) == 70.0  # 95 %: until the minute ends
    assert weight_hold(2400, 49.0, 50.0, 2400) == 50.0  # that minute has ended
    assert weight_hold(5000, 70.0, 50.0, None) == 50.0


# --- the shared budget ------------------------------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_it_holds_across_senders_with_connections_of_their_own():
    account = Account(RateLimits(orders=((5, 1.0),)))
    forget(account.account_id)
    waits: list[float] = []

    def sender() -> None:
        try:
            for _ in range(10):
                waits.append(ORDER_BUDGET.take(account))
        finally:
            connection.close()

    senders = [threading.Thread(target=sender) for _ in range(2)]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    moments = granted(account.account_id)
    assert len(moments) == 20
    assert all(later - earlier >= 1.1 - 1e-3 for earlier, later in zip(moments, moments[5:], strict=False))
    assert max(waits) >= 3 * 1.1 - 0.2  # the last five wait out three windows, not sent at once
    forget(account.account_id)


@pytest.mark.django_db(transaction=True)
def test_it_waits_for_orders_someone_else_sent():
    account = Account(RateLimits(orders=((5, 1.0),)), RateUsage(orders=(5,), orders_at=time.time()))
    forget(account.account_id)
    assert ORDER_BUDGET.take(account) >= 0.9  # the exchange counted five already: the window is full
    forget(account.account_id)


@pytest.mark.django_db(transaction=True)
def test_it_holds_orders_until_the_minute_that_spent_the_weight_ends():
    account = Account(RateLimits(weight_per_minute=2400), RateUsage(weight=2390, weight_until=time.time() + 2))
    forget(account.account_id)
    assert 1.5 <= ORDER_BUDGET.take(account) <= 2.1
    account.usage = RateUsage(weight=100, weight_until=time.time() + 2)
    assert 1.5 <= ORDER_BUDGET.take(account) <= 2.1  # a lower figure for the same minute is an older answer
    forget(account.account_id)
    other = Account(RateLimits(weight_per_minute=2400), RateUsage(weight=2390, weight_until=time.time() + 2),
                    account_id="budget-test-other")
    forget(other.account_id)
    other.usage = RateUsage(weight=100, weight_until=time.time() + 62)
    assert ORDER_BUDGET.take(other) <= 0.05  # the word of the next minute: the weight is back
    forget(other.account_id)


def test_it_costs_nothing_without_limits(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert ORDER_BUDGET.take(Account(RateLimits())) == 0.0


# --- a burst larger than the budget, through the webhook and the order threads ------------------------------
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_it_sends_a_burst_larger_than_the_budget_without_a_429(binance_settings, binance_fake, monkeypatch):
    monkeypatch.setattr(binance_adapter, "ORDER_LIMITS", ((5, 1.0),))  # Binance's 300 per 10 s, scaled down
    monkeypatch.setattr(binance_adapter, "ORDER_COUNT_HEADERS", ("X-MBX-ORDER-COUNT-1S",))
    binance_fake.order_limits = [(5, 1.0)]
    binance_fake.latency = 0.05
    forget(binance_adapter_account())
    RATE_LIMITER.reset()
    StrategyPreference.objects.create(name="BURST", products=list(PRICES), leverage=5, allocation_pct=Decimal(2))
    for symbol, price in PRICES.items():
        binance_fake.set_price(symbol, price)
    client = Client()
    signals = [post(client, list(PRICES)[number % 10], number) for number in range(20)]
    ORDER_THREADS.start(16)
    try:
        run_queued_jobs()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
                ORDER_THREADS.busy() or Signal.objects.filter(status__in=Signal.FINAL_STATUSES).count() < 20):
            time.sleep(0.05)
    finally:
        ORDER_THREADS.stop(timeout=60)

    assert binance_fake.rate_limited == 0  # no 429: the budget spread the burst out
    statuses = dict(Execution.objects.values_list("signal_id", "status"))
    assert [statuses.get(signal) for signal in signals] == ["filled"] * 20  # queued, not failed
    notes = [e.decision.get("order_budget", "") for e in Execution.objects.all()]
    assert sum(note.startswith("waited ") and note.endswith(" s for the order budget") for note in notes) >= 10
    arrivals = sorted(r.at for r in binance_fake.requests_to("/fapi/v1/order", "POST"))
    assert arrivals[-1] - arrivals[0] >= 3 * 1.0  # 20 orders at 5 a second: four windows at least
    forget(binance_adapter_account())


def binance_adapter_account() -> str:
    from trading.exchange import get_exchange

    return get_exchange().account_id


def post(client: Client, symbol: str, number: int) -> int:
    return webhook_post(client, symbol=symbol, price=PRICES[symbol], strategy="BURST", id=f"budget-{number}")


def test_the_windows_are_kept_longer_than_the_exchanges():
    assert order_budget._kept(RateLimits(orders=((300, 10.0), (1200, 60.0)))) == [(300, 11.0), (1200, 66.0)]
