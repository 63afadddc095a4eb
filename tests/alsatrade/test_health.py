from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone

from trading.exchange import reset_exchange
from trading.models import Signal, WorkerHeartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_probe():
    cache.delete("health:exchange")
    yield
    cache.delete("health:exchange")


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
