import logging
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client, override_settings
from django.utils import timezone

from trading.exchange import reset_exchange
from trading.models import Signal, WorkerHeartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_probe():
    cache.delete("health:exchange")
    yield
    cache.delete("health:exchange")


@pytest.fixture
def client(admin_client):
    """The detail is for staff: these tests read it through a staff session."""
    return admin_client


def beat(age: timedelta = timedelta(0)) -> None:
    WorkerHeartbeat.objects.update_or_create(name="worker", defaults={"beat_at": timezone.now() - age, "host": "h"})


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
    assert "no worker has reported yet" in response.json()["queue"]["error"]


def test_it_is_unhealthy_when_the_heartbeat_is_old(client):
    beat(timedelta(minutes=5))
    response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["queue"]["error"] == "the worker's last heartbeat is too old"


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
