import logging
import subprocess
import sys
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.cache.backends import base, locmem
from django.test import Client, override_settings
from django.utils import timezone

from alsatrade import health
from alsatrade.health import PUBLIC_CACHE_KEY
from trading.exchange import reset_exchange
from trading.lanes import HOST
from trading.models import Signal, WorkerHeartbeat
from trading.recovery import heartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_probe():
    cache.delete_many(["health:exchange", PUBLIC_CACHE_KEY])
    yield
    cache.delete_many(["health:exchange", PUBLIC_CACHE_KEY])


@pytest.fixture
def client(admin_client):
    """The detail is for staff: these tests read it through a staff session."""
    return admin_client


def beat(age: timedelta = timedelta(0)) -> None:
    """A beat of this (live) process, as a worker process writes it."""
    heartbeat()
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - age)


def test_it_is_healthy_with_a_live_worker_and_the_paper_exchange(client):
    beat()
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == {"ok": True}
    assert body["queue"]["ok"] and body["queue"]["stuck_signals"] == 0
    assert body["exchange"]["ok"] and body["exchange"]["name"] == "paper"
    assert abs(body["exchange"]["clock_offset_ms"]) < 1000


def test_it_is_unhealthy_before_any_worker_reported(client):
    response = client.get("/health")
    assert response.status_code == 503
    assert "no live worker has beaten in the last 45 s" in response.json()["queue"]["error"]


def test_it_is_unhealthy_when_the_heartbeat_is_old(client):
    beat(timedelta(minutes=1))
    response = client.get("/health")
    assert response.status_code == 503
    assert "no live worker has beaten" in response.json()["queue"]["error"]


def test_a_fresh_beat_left_by_a_process_that_has_gone_does_not_count(client):
    """After a restart, the previous run's last beat (seconds old) must not read as a live worker."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    WorkerHeartbeat.objects.create(name=f"worker:{gone.pid}:{HOST}", host=HOST, beat_at=timezone.now())
    response = client.get("/health")
    assert response.status_code == 503 and response.json()["queue"]["heartbeat_age_s"] is None
    beat()  # this run's worker
    assert client.get("/health").status_code == 200


def test_a_beat_from_another_host_counts_until_it_is_too_old(client):
    WorkerHeartbeat.objects.create(name="worker:1:elsewhere", host="elsewhere", beat_at=timezone.now())
    assert client.get("/health").status_code == 200


def test_it_reports_the_queue_backlog(client):
    beat()
    Signal.objects.create(status=Signal.Status.QUEUED, received_at=timezone.now() - timedelta(seconds=3),
                          idempotency_key="waiting")
    body = client.get("/health").json()
    assert body["queue"]["queued_signals"] == 1 and 2 < body["queue"]["oldest_queued_s"] < 30


def test_it_is_unhealthy_when_signals_wait_in_the_queue(client):
    beat()
    Signal.objects.create(status=Signal.Status.QUEUED, received_at=timezone.now() - timedelta(minutes=1), idempotency_key="old")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["queue"]["stuck_signals"] == 1


def test_it_reports_an_unreachable_exchange_without_leaking_keys(client):
    beat()
    with override_settings(EXCHANGE="binance", BINANCE_BASE_URL="http://127.0.0.1:9", BINANCE_API_KEY="key-abcdef-123456",
                           BINANCE_API_SECRET="secret-abcdef-123456", BINANCE_TIMEOUT=0.5):
        reset_exchange()
        try:
            response = client.get("/health")
        finally:
            reset_exchange()
    assert response.status_code == 503
    body = response.json()
    assert body["exchange"]["ok"] is False and body["exchange"]["name"] == "binance"
    assert "abcdef-123456" not in response.content.decode()


HEALTH_TOKEN = "health-token-0123456789abcdef"


def test_it_answers_anyone_with_the_status_only(db):
    beat()
    response = Client().get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_it_answers_anyone_503_when_unhealthy_without_saying_why(db):
    response = Client().get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy"}


def test_it_shows_the_detail_to_the_health_token(db, settings):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    beat()
    body = Client().get("/health", HTTP_AUTHORIZATION=f"Bearer {HEALTH_TOKEN}").json()
    assert body["status"] == "ok" and body["database"] == {"ok": True} and body["exchange_mode"] == "paper"
    assert body["queue"]["unfinished_signals"] == 0


@pytest.mark.parametrize("header", ["Bearer wrong-token-0123456789abc", f"Token {HEALTH_TOKEN}", "Bearer", ""])
def test_it_keeps_the_detail_from_a_wrong_token(db, settings, header):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    beat()
    assert Client().get("/health", HTTP_AUTHORIZATION=header).json() == {"status": "ok"}


def test_it_accepts_no_token_when_none_is_configured(db, settings):
    settings.HEALTH_TOKEN = ""
    beat()
    assert Client().get("/health", HTTP_AUTHORIZATION="Bearer ").json() == {"status": "ok"}


def test_it_keeps_the_detail_from_a_user_who_is_not_staff(db):
    beat()
    client = Client()
    client.force_login(get_user_model().objects.create_user("trader", password="pw-0123456789"))
    assert client.get("/health").json() == {"status": "ok"}


def test_it_logs_a_failing_check_instead_of_answering_its_text(client, caplog, monkeypatch):
    def broken() -> dict:
        raise RuntimeError("password=hunter2 at db.internal:5432")

    beat()
    monkeypatch.setattr("alsatrade.health.check_database", broken)
    caplog.set_level(logging.ERROR, logger="alsatrade.health")
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["database"]["ok"] is False
    assert "hunter2" not in response.content.decode() and "RuntimeError" not in response.content.decode()
    assert "hunter2" in caplog.text


def test_it_is_never_cached(db):
    assert "no-store" in Client().get("/health")["Cache-Control"]


def test_it_reports_binances_request_weight_used_this_minute(client, binance_settings, binance_fake):
    exchange = client.get("/health").json()["exchange"]
    assert exchange["name"] == "binance" and exchange["request_weight_limit"] == 2400
    assert exchange["request_weight_used"] == len(binance_fake.requests)  # what the fake's header said


def test_it_reports_the_drift_the_last_reconciliation_corrected(client, binance_settings, binance_fake):
    from analytics.tasks import take_snapshot
    from trading.models import Position

    Position.objects.create(symbol="ETHUSDT", amount=Decimal("1.5"), entry_price=Decimal(3000))
    binance_fake.set_position("BTCUSDT", "0.020", "45000")  # opened by hand; ETHUSDT closed by hand
    take_snapshot()
    positions = client.get("/health").json()["positions"]
    assert sorted(positions["drift"]) == ["BTCUSDT: ours 0, exchange 0.02", "ETHUSDT: ours 1.5, exchange 0"]
    take_snapshot()  # in line now: the next reconciliation finds nothing
    assert client.get("/health").json()["positions"]["drift"] == []


@pytest.fixture
def checks_run(monkeypatch) -> list[str]:
    """One entry per round of checks: the database check is each round's first."""
    rounds: list[str] = []
    real = health.check_database
    monkeypatch.setattr(health, "check_database", lambda: rounds.append("checked") or real())
    return rounds


def test_it_checks_once_for_a_flood_of_anonymous_probes(db, checks_run):
    beat()
    answers = {Client().get("/health").status_code for _ in range(50)}
    assert answers == {200} and len(checks_run) == 1


def test_it_answers_anonymous_probes_from_its_cache_for_5_seconds(db, settings, monkeypatch, checks_run):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "health"}}
    start = 1_000_000.0
    now = [start]
    clock = SimpleNamespace(time=lambda: now[0])
    monkeypatch.setattr(base, "time", clock)  # the cache's clock only: where it sets expiries and reads them
    monkeypatch.setattr(locmem, "time", clock)
    assert Client().get("/health").status_code == 503  # no worker yet
    beat()
    now[0] = start + 4.99
    assert Client().get("/health").status_code == 503  # still the cached answer
    now[0] = start + 5
    assert Client().get("/health").status_code == 200  # 5 s old: checked again
    assert len(checks_run) == 2


def test_it_never_caches_the_detailed_answer(db, settings, client, checks_run):
    settings.HEALTH_TOKEN = HEALTH_TOKEN
    assert Client().get("/health").status_code == 503  # an anonymous answer is now cached
    assert client.get("/health").status_code == 503
    beat()
    assert client.get("/health").json()["status"] == "ok"  # staff: checked again at once
    token = Client().get("/health", HTTP_AUTHORIZATION=f"Bearer {HEALTH_TOKEN}")
    assert token.status_code == 200 and token.json()["queue"]["ok"]
    assert Client().get("/health").json() == {"status": "unhealthy"}  # anyone else: the cached status
    assert len(checks_run) == 4
