from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import AccountSnapshot
from trading.models import Position

pytestmark = pytest.mark.django_db


def snapshot(taken_at, equity: str) -> AccountSnapshot:
    return AccountSnapshot.objects.create(
        taken_at=taken_at, exchange="paper", account="paper", wallet_balance=Decimal("10000.0000000000"),
        available_balance=Decimal("9500.25"), equity=Decimal(equity), unrealized_pnl=Decimal("-12.5000"),
    )


@pytest.fixture
def positions() -> dict[str, Position]:
    return {
        "long": Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.002"), entry_price=Decimal("45000"), leverage=5),
        "short": Position.objects.create(symbol="ETHUSDT", amount=Decimal("-0.5"), entry_price=Decimal("2500.10")),
        "flat": Position.objects.create(symbol="SOLUSDT", amount=Decimal("0")),
    }


def test_it_summarises_the_latest_snapshot_with_open_positions(api, positions):
    now = timezone.now()
    snapshot(now - timedelta(hours=1), "9000")
    latest = snapshot(now - timedelta(seconds=30), "9987.5")
    response = api.get("/account/summary")
    assert response.status_code == 200
    body = response.json()
    assert body["balance"] == "10000"
    assert body["equity"] == "9987.5"
    assert body["available"] == "9500.25"
    assert body["unrealized_pnl"] == "-12.5"
    assert body["asset"] == "USDT"
    assert body["snapshot_at"] == latest.taken_at.isoformat().replace("+00:00", "Z")
    assert 30 <= body["snapshot_age_seconds"] < 60
    assert body["message"] == ""
    assert [(p["symbol"], p["side"], p["amount"]) for p in body["positions"]] == [
        ("BTCUSDT", "long", "0.002"), ("ETHUSDT", "short", "-0.5"),
    ]


def test_it_answers_a_new_install_without_a_snapshot_with_nulls_and_why(api):
    response = api.get("/account/summary")
    assert response.status_code == 200
    body = response.json()
    for key in ("balance", "equity", "available", "unrealized_pnl", "snapshot_at", "snapshot_age_seconds"):
        assert body[key] is None, key
    assert "No account snapshot yet" in body["message"]
    assert body["positions"] == []


def test_it_lists_open_positions_unless_asked_for_all(api, positions):
    open_only = api.get("/positions").json()
    assert [p["symbol"] for p in open_only["results"]] == ["BTCUSDT", "ETHUSDT"]
    assert open_only["results"][1]["entry_price"] == "2500.1"
    every = api.get("/positions?all=1").json()
    assert [p["symbol"] for p in every["results"]] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
    assert every["results"][2]["side"] == "flat"
    assert every["results"][2]["amount"] == "0"
    assert api.get("/positions?all=0").json()["count"] == 2


def test_it_summarises_the_account_this_deployment_trades_not_another(api, positions):
    snapshot(timezone.now(), "10200")
    AccountSnapshot.objects.create(taken_at=timezone.now() + timedelta(seconds=1), exchange="binance",
                                   account="binance-testnet-0123456789", wallet_balance=1, available_balance=1, equity=1,
                                   unrealized_pnl=0)
    assert api.get("/account/summary").json()["equity"] == "10200"
