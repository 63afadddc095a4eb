from datetime import timedelta
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from tests.api.records import T0, make_execution
from trading.models import Execution, Order, Signal

pytestmark = pytest.mark.django_db

READ_ENDPOINTS = ["/executions", "/signals", "/orders", "/positions", "/account/summary", "/preferences/current"]


@pytest.mark.parametrize("url", READ_ENDPOINTS)
def test_it_refuses_an_anonymous_read(url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_it_refuses_an_anonymous_change():
    response = APIClient().post("/preferences/leverage", {"strategy": "ALSAPRO 1", "value": 5}, format="json")
    assert response.status_code == 401


def test_it_refuses_a_wrong_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/executions").status_code == 401


@pytest.mark.parametrize("url", READ_ENDPOINTS)
def test_it_answers_a_token(api, url):
    assert api.get(url).status_code == 200


def test_it_answers_a_logged_in_session(client, reader):
    client.force_login(reader)
    response = client.get("/executions", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_it_lists_executions_newest_first_with_nested_orders(api):
    older = make_execution(1, received_at=T0)
    newer = make_execution(2, received_at=T0 + timedelta(minutes=1), orders=2)
    response = api.get("/executions")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert [item["id"] for item in body["results"]] == [newer.pk, older.pk]
    first = body["results"][0]
    assert [order["leg"] for order in first["orders"]] == [1, 2]
    assert first["orders"][0]["quantity"] == "0.111"
    assert first["orders"][0]["avg_price"] == "45000.5"
    assert first["signal_price"] == "45000"
    assert first["reason"] == "Opened long 0.111 BTCUSDT."
    assert first["decision"] == {"legs": [{"purpose": "open"}]}
    assert first["latency_ms"] == "40"
    assert first["stage_ms"] == {"queue": "2", "dispatch": "8", "prepare": "2", "exchange": "28", "total": "45"}
    assert first["fill_price"] is None


@pytest.mark.parametrize(
    "query, expected",
    [
        ("status=rejected", [3]),
        ("strategy=ALSAPRO 2", [2]),
        ("symbol=ETHUSDT", [3, 2]),
        ("symbol=ETHUSDT&status=filled", [2]),
        ("received_after=2024-01-01T12:01:00Z", [3, 2]),
        ("received_before=2024-01-01T12:01:00Z", [1]),
        ("received_after=2024-01-01T12:00:30%2B00:00&received_before=2024-01-01T12:01:30", [2]),
    ],
)
def test_it_filters_executions(api, query, expected):
    executions = {
        1: make_execution(1, received_at=T0),
        2: make_execution(2, received_at=T0 + timedelta(minutes=1), strategy="ALSAPRO 2", symbol="ETHUSDT"),
        3: make_execution(3, received_at=T0 + timedelta(minutes=2), symbol="ETHUSDT", status="rejected"),
    }
    response = api.get(f"/executions?{query}")
    assert response.status_code == 200, response.json()
    assert [item["id"] for item in response.json()["results"]] == [executions[n].pk for n in expected]


@pytest.mark.parametrize("query, field", [("status=bogus", "status"), ("received_after=yesterday", "received_after")])
def test_it_refuses_a_bad_filter_naming_it(api, query, field):
    response = api.get(f"/executions?{query}")
    assert response.status_code == 400
    assert field in response.json()


def test_it_pages_200_executions_with_a_bounded_number_of_queries(api, django_assert_max_num_queries):
    signals = Signal.objects.bulk_create(Signal(idempotency_key=f"k{n}", received_at=T0) for n in range(200))
    executions = Execution.objects.bulk_create(
        Execution(signal=signal, strategy="s", symbol="BTCUSDT", exchange="paper", received_at=T0 + timedelta(seconds=n))
        for n, signal in enumerate(signals)
    )
    Order.objects.bulk_create(
        Order(execution=execution, leg=leg, purpose="open", client_order_id=f"at-{execution.pk}-{leg}", symbol="BTCUSDT",
              side="BUY", quantity=Decimal("1"))
        for execution in executions for leg in (1, 2)
    )
    # The token, the count, the page of executions, and their orders in one more.
    with django_assert_max_num_queries(4):
        response = api.get("/executions?page=2")
    body = response.json()
    assert body["count"] == 200
    assert len(body["results"]) == 50
    assert all(len(item["orders"]) == 2 for item in body["results"])
    assert body["results"][0]["id"] == executions[149].pk
    assert body["next"].endswith("/executions?page=3")


def test_it_lists_every_signal_with_refused_ones_and_never_a_passphrase(api):
    Signal.objects.create(status="rejected", reason="bad passphrase", http_status=401, received_at=T0)
    # Stored payloads never carry the passphrase; the API would strip one if a bug ever stored it.
    accepted = Signal.objects.create(
        status="done", symbol="BTCUSDT", strategy="ALSAPRO 1", quantity=Decimal("0.0010"), idempotency_key="k",
        payload={"symbol": "BTCUSDT", "passphrase": "leaked-secret", "nested": {"Passphrase": "x"}},
        received_at=T0 + timedelta(seconds=1),
    )
    response = api.get("/signals")
    assert response.status_code == 200
    assert "leaked-secret" not in response.content.decode()
    results = response.json()["results"]
    assert [item["status"] for item in results] == ["done", "rejected"]
    assert results[0]["payload"] == {"symbol": "BTCUSDT", "nested": {}}
    assert results[0]["quantity"] == "0.001"
    assert results[1]["reason"] == "bad passphrase"
    assert api.get("/signals?status=rejected").json()["count"] == 1
    assert api.get("/signals?strategy=ALSAPRO 1").json()["results"][0]["id"] == accepted.pk
    assert api.get("/signals?symbol=ETHUSDT").json()["count"] == 0


def test_it_lists_orders_newest_first(api):
    execution = make_execution(1, orders=2)
    response = api.get("/orders")
    assert response.status_code == 200
    results = response.json()["results"]
    assert [item["client_order_id"] for item in results] == ["at-1-2", "at-1-1"]
    assert results[0]["execution"] == execution.pk
    assert results[0]["executed_qty"] == "0.111"
    assert "raw_response" not in results[0]
    assert api.get("/orders?status=FILLED&symbol=BTCUSDT").json()["count"] == 2
