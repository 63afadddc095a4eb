"""The front door's limits: one rate limit per deployment, bounded storage of refused attempts, and
an admin that never lists what senders typed."""

import time
import uuid
from datetime import timedelta

import pytest
import redis
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule, Task

from preferences.models import StrategyPreference
from trading.models import Execution, Signal
from trading.rate_limit import RATE_LIMITER, Admission, RateLimiter, rate_key
from trading.retention import prune, refused_prune, successes_prune

ON_REDIS = isinstance(caches["default"], RedisCache)


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    RATE_LIMITER.reset()
    yield
    RATE_LIMITER.reset()


@pytest.fixture
def limits(settings):
    settings.WEBHOOK_RATE_BURST, settings.WEBHOOK_RATE_PER_SECOND = 3, 1
    return settings


def two_processes() -> tuple[RateLimiter, RateLimiter]:
    """Two limiters as two web processes have them: separate objects over one cache."""
    namespace = f"test-rate-{uuid.uuid4().hex}"
    return RateLimiter(namespace=namespace), RateLimiter(namespace=namespace)


# --- rate limit ------------------------------------------------------------------------------------
def test_it_shares_one_limit_between_two_processes(limits):
    first, second = two_processes()
    assert [first.wait_needed("203.0.113.7") for _ in range(2)] == [0.0, 0.0]
    assert second.wait_needed("203.0.113.7") == 0.0
    wait = second.wait_needed("203.0.113.7")
    assert 0 < wait <= 3
    assert first.wait_needed("203.0.113.7") > 0


def test_it_counts_ipv4_addresses_one_by_one(limits):
    limiter, _ = two_processes()
    for _ in range(3):
        limiter.wait_needed("203.0.113.7")
    assert limiter.wait_needed("203.0.113.7") > 0
    assert limiter.wait_needed("203.0.113.8") == 0.0


def test_it_shares_one_limit_across_an_ipv6_64(limits):
    first, second = two_processes()
    for n in range(3):
        assert first.wait_needed(f"2001:db8:aa:bb::{n + 1:x}") == 0.0
    assert second.wait_needed("2001:db8:aa:bb:ffff:ffff:ffff:ffff") > 0
    assert second.wait_needed("2001:db8:aa:bc::1") == 0.0  # the next /64 is someone else


@pytest.mark.parametrize("address, key", [
    ("203.0.113.7", "203.0.113.7"),
    ("2001:db8:aa:bb:1:2:3:4", "2001:db8:aa:bb::/64"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
])
def test_it_keys_ipv4_by_address_and_ipv6_by_64(address, key):
    assert rate_key(address) == key


def test_it_keys_a_missing_address_without_its_text():
    key = rate_key("not an address\n")
    assert key.startswith("other-") and " " not in key and "\n" not in key


@pytest.mark.skipif(ON_REDIS, reason="Redis keeps its own time; the local-memory cache reads time.time")
def test_it_opens_a_new_window_when_the_old_one_ends(limits, monkeypatch):
    limiter, _ = two_processes()
    assert [limiter.wait_needed("203.0.113.9") for _ in range(3)] == [0.0] * 3
    wait = limiter.wait_needed("203.0.113.9")
    assert 0 < wait <= 3
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + wait + 0.01)
    assert limiter.wait_needed("203.0.113.9") == 0.0


def test_it_lets_requests_in_when_the_cache_is_down(limits, monkeypatch):
    limiter, _ = two_processes()

    def down(*args, **kwargs):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(limiter, "_hit", down)
    assert limiter.wait_needed("203.0.113.7") == 0.0


def test_it_forgets_counts_on_reset(limits):
    limiter, _ = two_processes()
    for _ in range(4):
        limiter.wait_needed("203.0.113.7")
    limiter.reset()
    assert limiter.wait_needed("203.0.113.7") == 0.0


@pytest.mark.skipif(not ON_REDIS, reason="needs REDIS_URL (the Redis cache)")
def test_it_costs_one_redis_round_trip_per_request(limits, monkeypatch):
    calls = []
    real_execute, real_command = redis.client.Pipeline.execute, redis.Redis.execute_command

    def execute(self, *args, **kwargs):
        calls.append("pipeline")
        return real_execute(self, *args, **kwargs)

    def command(self, *args, **kwargs):
        calls.append(args[0])
        return real_command(self, *args, **kwargs)

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute)
    monkeypatch.setattr(redis.Redis, "execute_command", command)
    limiter, _ = two_processes()
    for _ in range(5):
        limiter.wait_needed("203.0.113.7")
    assert calls == ["EVALSHA"] * 5  # one script counts and reads the strategy generation


@pytest.fixture
def guarded(settings):
    settings.WEBHOOK_AUTH_FAILURES, settings.WEBHOOK_AUTH_WINDOW, settings.WEBHOOK_AUTH_BLOCK = 3, 60, 120
    return settings


def test_it_starts_one_block_for_wrong_passphrases_counted_by_two_processes(guarded):
    first, second = two_processes()
    assert [first.passphrase_failed("203.0.113.7"), second.passphrase_failed("203.0.113.7")] == [False, False]
    assert first.admit("203.0.113.7").blocked == 0
    assert second.passphrase_failed("203.0.113.7") is True
    assert 119 < first.admit("203.0.113.7").blocked <= 120
    assert [first.passphrase_failed("203.0.113.7") for _ in range(3)] == [False] * 3  # blocked already: told once
    assert second.admit("203.0.113.8").blocked == 0


@pytest.mark.skipif(ON_REDIS, reason="Redis keeps its own time; the local-memory cache reads time.time")
def test_it_forgets_wrong_passphrases_once_their_window_ends(guarded, monkeypatch):
    limiter, _ = two_processes()
    assert [limiter.passphrase_failed("203.0.113.7") for _ in range(2)] == [False, False]
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + 61)
    assert [limiter.passphrase_failed("203.0.113.7") for _ in range(2)] == [False, False]
    assert limiter.passphrase_failed("203.0.113.7") is True


def test_it_neither_blocks_nor_fails_when_the_cache_is_down(guarded, monkeypatch):
    limiter, _ = two_processes()

    def down(*args, **kwargs):
        raise redis.ConnectionError("refused")

    monkeypatch.setattr(RateLimiter, "_cache", property(down))
    assert [limiter.passphrase_failed("203.0.113.7") for _ in range(4)] == [False] * 4
    assert limiter.admit("203.0.113.7") == Admission(0.0)


@pytest.mark.django_db
def test_it_answers_429_to_a_second_address_in_the_same_ipv6_64(limits):
    client = Client()
    answers = [client.post("/webhook", "{}", content_type="application/json", REMOTE_ADDR=f"2001:db8::{n}").status_code
               for n in range(1, 4)]
    assert 429 not in answers
    refused = client.post("/webhook", "{}", content_type="application/json", REMOTE_ADDR="2001:db8::ffff")
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 3
    assert Signal.objects.count() == 3  # a rate-limited attempt is not stored


# --- retention of refused attempts -------------------------------------------------------------------
def refused(http_status: int, **fields) -> Signal:
    return Signal.objects.create(status=Signal.Status.REJECTED, http_status=http_status, reason="x", **fields)


@pytest.mark.django_db
def test_it_keeps_only_the_newest_unauthenticated_attempts():
    old = [refused(401, strategy="<script>") for _ in range(3)] + [refused(403), refused(413), refused(400), refused(429)]
    kept = [refused(401), refused(403)]
    authenticated_400 = refused(400, payload={"action": "buy", "quantity": "x"})
    accepted = Signal.objects.create(status=Signal.Status.DONE, http_status=202, idempotency_key="k1")
    filtered = Signal.objects.create(status=Signal.Status.FILTERED, http_status=200, idempotency_key="k2")

    assert refused_prune(keep=2) == len(old)
    assert set(Signal.objects.values_list("pk", flat=True)) == {s.pk for s in [*kept, authenticated_400, accepted, filtered]}


@pytest.mark.django_db
def test_it_prunes_nothing_under_the_limit():
    rows = [refused(401) for _ in range(3)]
    assert refused_prune(keep=3) == 0
    assert Signal.objects.count() == len(rows)


@pytest.mark.django_db
def test_it_prunes_a_backlog_bigger_than_one_batch(monkeypatch):
    monkeypatch.setattr("trading.retention.BATCH", 4)
    Signal.objects.bulk_create(
        [Signal(status=Signal.Status.REJECTED, http_status=401, reason="x") for _ in range(11)]
    )
    newest = Signal.objects.order_by("-id").values_list("pk", flat=True)[0]
    assert refused_prune(keep=1) == 10
    assert list(Signal.objects.values_list("pk", flat=True)) == [newest]


@pytest.mark.django_db
def test_it_never_prunes_a_signal_with_an_execution():
    signal = refused(401)
    Execution.objects.create(signal=signal, strategy="", symbol="BTCUSDT", exchange="paper", received_at=timezone.now())
    assert refused_prune(keep=0) == 0
    assert Signal.objects.filter(pk=signal.pk).exists()


def job(stopped_ago: timedelta, *, success: bool = True) -> Task:
    stopped = timezone.now() - stopped_ago
    return Task.objects.create(id=uuid.uuid4().hex, name="t", func="f", started=stopped, stopped=stopped, success=success)


@pytest.mark.django_db
def test_it_deletes_old_success_records_but_keeps_failures():
    old, recent, failure = job(timedelta(days=8)), job(timedelta(days=6)), job(timedelta(days=30), success=False)
    assert successes_prune(older_than=timedelta(days=7)) == 1
    assert set(Task.objects.values_list("id", flat=True)) == {recent.id, failure.id}
    assert not Task.objects.filter(id=old.id).exists()


@pytest.mark.django_db
def test_it_prunes_both_with_the_configured_limits(settings):
    settings.WEBHOOK_REFUSED_KEEP, settings.Q_SUCCESS_KEEP_DAYS = 1, 2
    refused(401), refused(401)
    job(timedelta(days=3)), job(timedelta(days=1))
    assert prune() == "deleted 1 refused attempt(s) and 1 job record(s)"


@pytest.mark.django_db
def test_it_schedules_the_pruning_every_ten_minutes():
    schedule = Schedule.objects.get(func="trading.retention.prune")
    assert (schedule.schedule_type, schedule.minutes, schedule.repeats) == ("I", 10, -1)


# --- admin -------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_it_lists_only_configured_strategies_as_admin_filters(admin_client):
    StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"])
    refused(401, strategy="EVIL-FILTER-TEXT")
    mine = Signal.objects.create(status=Signal.Status.DONE, strategy="ALSAPRO 1", symbol="BTCUSDT", idempotency_key="k")
    page = admin_client.get(reverse("admin:trading_signal_changelist")).content.decode()
    assert "?strategy=ALSAPRO+1" in page
    assert "EVIL-FILTER-TEXT" in page  # in its row, where it belongs
    assert "strategy=EVIL-FILTER-TEXT" not in page  # but never offered as a filter
    filtered = admin_client.get(reverse("admin:trading_signal_changelist") + "?strategy=ALSAPRO+1")
    assert [row.pk for row in filtered.context["cl"].result_list] == [mine.pk]


@pytest.mark.django_db
def test_it_filters_signals_by_http_status(admin_client):
    refused(401)
    accepted = Signal.objects.create(status=Signal.Status.QUEUED, http_status=202, idempotency_key="k")
    response = admin_client.get(reverse("admin:trading_signal_changelist") + "?http_status=202")
    assert [row.pk for row in response.context["cl"].result_list] == [accepted.pk]
