"""The webhook keeps each strategy's checked fields per process while the deployment's strategy
generation (read with the rate limit, in one Redis round trip) is unchanged: no strategy SELECT per
request, and a change in force from the next request on, in every process."""

import json
import uuid
from datetime import UTC, datetime

import pytest
import redis
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from preferences.intake import STRATEGIES, IntakeStrategies, strategy_read
from preferences.models import StrategyPreference
from trading.models import Signal
from trading.rate_limit import RATE_LIMITER, strategies_changed

PASSPHRASE = "test-passphrase-0123456789"
REDIS = "redis://127.0.0.1:6379/11"


def redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def shared_cache(settings):
    """The deployment's cache is Redis (REDIS_URL set): the only case where strategies are kept."""
    if not redis_answers():
        pytest.skip("needs Redis on 127.0.0.1:6379")
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS,
                                   "KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}"}}
    RATE_LIMITER.reset()
    STRATEGIES.forget()
    yield
    STRATEGIES.forget()


def alert(**changes: object) -> str:
    data = {"action": "buy", "symbol": "BTCUSDT", "quantity": "0.001", "price": "45000", "strategy": "KEPT",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "passphrase": PASSPHRASE,
            "id": uuid.uuid4().hex}
    data.update(changes)
    return json.dumps(data)


def post(body: str) -> tuple[int, dict]:
    response = Client().post("/webhook", body, content_type="application/json")
    return response.status_code, response.json()


def strategy_selects(queries: CaptureQueriesContext) -> int:
    table = StrategyPreference._meta.db_table
    return sum(1 for query in queries.captured_queries if query["sql"].startswith("SELECT") and table in query["sql"])


# --- the cache alone -------------------------------------------------------------------------------
def test_it_reads_once_per_generation_and_again_when_it_changes():
    reads = []
    kept = IntakeStrategies(lambda name: reads.append(name))  # type: ignore[arg-type,func-returns-value]
    for _ in range(3):
        kept.get("A", "g1")
    kept.get("B", "g1")
    assert reads == ["A", "B"]
    kept.get("A", "g2")
    assert reads == ["A", "B", "A"]


def test_it_keeps_nothing_without_a_generation():
    reads = []
    kept = IntakeStrategies(lambda name: reads.append(name))  # type: ignore[arg-type,func-returns-value]
    kept.get("A", "g1")
    kept.get("A", None)  # the cache is away: read, and forget what was kept
    kept.get("A", None)
    kept.get("A", "g1")
    assert reads == ["A"] * 4


def test_it_reads_again_after_its_max_age(monkeypatch):
    reads = []
    kept = IntakeStrategies(lambda name: reads.append(name), max_age=60)  # type: ignore[arg-type,func-returns-value]
    clock = [1000.0]
    monkeypatch.setattr("preferences.intake.time.monotonic", lambda: clock[0])
    kept.get("A", "g1")
    clock[0] += 59
    kept.get("A", "g1")
    clock[0] += 2
    kept.get("A", "g1")
    assert reads == ["A", "A"]


def test_names_a_sender_chooses_do_not_grow_it_without_bound():
    kept = IntakeStrategies(lambda name: None, size=10)
    for n in range(1000):
        kept.get(f"made-up-{n}", "g1")
    assert len(kept.known) <= 10


# --- through the webhook, with Redis ---------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
def test_a_webhook_reads_its_strategy_once_then_keeps_it(shared_cache):
    StrategyPreference.objects.create(name="KEPT", products=["BTCUSDT"])
    with CaptureQueriesContext(connection) as first:
        assert post(alert())[0] == 202
    with CaptureQueriesContext(connection) as later:
        for _ in range(3):
            assert post(alert())[0] == 202
    assert (strategy_selects(first), strategy_selects(later)) == (1, 0)


@pytest.mark.django_db(transaction=True)
def test_a_change_is_in_force_at_the_next_request_of_every_process(shared_cache):
    strategy = StrategyPreference.objects.create(name="KEPT", products=["BTCUSDT"])
    other_process = IntakeStrategies(strategy_read)
    assert other_process.get("KEPT", RATE_LIMITER.admit("198.51.100.1").strategies).enabled
    assert post(alert())[0] == 202  # this process keeps it too

    strategy.enabled = False
    strategy.set_passphrase("a-new-phrase-for-kept")
    strategy.save()  # commits (no test transaction here), then bumps the generation

    kept = other_process.get("KEPT", RATE_LIMITER.admit("198.51.100.1").strategies)
    assert kept is not None and not kept.enabled
    status, body = post(alert())  # the old passphrase
    assert (status, body["error"]) == (401, "wrong or missing passphrase")
    status, body = post(alert(passphrase="a-new-phrase-for-kept"))
    assert (status, body["status"]) == (200, "filtered")


@pytest.mark.django_db(transaction=True)
def test_a_new_strategy_is_known_at_once_after_a_miss_was_kept(shared_cache):
    assert post(alert(strategy="LATER"))[1]["reason"] == "strategy 'LATER' is not configured (add it in the admin)"
    StrategyPreference.objects.create(name="LATER", products=["BTCUSDT"])
    assert post(alert(strategy="LATER"))[0] == 202


@pytest.mark.django_db(transaction=True)
def test_a_strategy_deleted_behind_the_cache_is_read_again_not_answered_as_a_duplicate(shared_cache):
    strategy = StrategyPreference.objects.create(name="KEPT", products=["BTCUSDT"])
    assert post(alert())[0] == 202
    Signal.objects.all().delete()
    StrategyPreference.objects.filter(pk=strategy.pk)._raw_delete(using="default")  # no signal, no new generation
    status, body = post(alert())
    assert (status, body["status"]) == (200, "filtered")
    assert body["reason"] == "strategy 'KEPT' is not configured (add it in the admin)"
    assert Signal.objects.get(pk=body["signal_id"]).preference_id is None


@pytest.mark.django_db(transaction=True)
def test_a_lost_generation_is_made_anew(shared_cache):
    before = RATE_LIMITER.admit("198.51.100.1").strategies
    strategies_changed()
    bumped = RATE_LIMITER.admit("198.51.100.1").strategies
    from django.core.cache import cache

    cache.delete("strategy-generation")  # as if Redis had restarted empty
    renewed = RATE_LIMITER.admit("198.51.100.1").strategies
    assert None not in (before, bumped, renewed) and len({before, bumped, renewed}) == 3
