"""TradingView alerts posted to /webhook as the tests send them, and the client that posts them."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest
from django.test import Client
from django.utils import timezone

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from trading.models import Execution, Signal
from trading.webhook import RATE_LIMITER

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

PASSPHRASE = "test-passphrase-0123456789"


@pytest.fixture(name="client")
def webhook_client(committed_client: Client, binance_settings: object) -> Client:
    """Django's test client against the fake exchange, running on-commit hooks, with a fresh rate limit.
    A test module takes it as `client` by importing it."""
    RATE_LIMITER.reset()
    return committed_client


def webhook_send(client: Client, action: str = "buy", *, symbol: str = "BTCUSDT", price: object = 45000,
                 strategy: str = "ALSAPRO 1", **fields: Any) -> "_MonkeyPatchedWSGIResponse":
    """POST one alert, stamped now; `fields` add to or override the alert's."""
    data = {"action": action, "symbol": symbol, "price": price, "strategy": strategy, "passphrase": PASSPHRASE,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
    return client.post("/webhook", json.dumps(data), content_type="application/json")


def webhook_post(client: Client, action: str = "buy", *, accepted: tuple[int, ...] = (202,), **fields: Any) -> int:
    """POST one alert that must be answered with a status in `accepted`; returns its signal's id."""
    response = webhook_send(client, action, **fields)
    assert response.status_code in accepted, response.content
    return response.json()["signal_id"]


def alert(client: Client, action: str = "buy", **fields: Any) -> Execution:
    """POST one alert and run the jobs it queued, as a worker would; returns its execution."""
    signal_id = webhook_post(client, action, **fields)
    run_queued_jobs()
    return Execution.objects.get(signal_id=signal_id)


def strategy_create(**fields: object) -> StrategyPreference:
    """The strategy the alerts name: ALSAPRO 1 on BTCUSDT at 5x, with `fields` added or overriding."""
    return StrategyPreference.objects.create(**{"name": "ALSAPRO 1", "products": ["BTCUSDT"], "leverage": 5, **fields})


def signal_queued(preference: StrategyPreference, key: str) -> Signal:
    """A buy of BTCUSDT at 45,000 for `preference`, saved and queued as the webhook leaves it for a worker."""
    now = timezone.now()
    return Signal.objects.create(action="buy", symbol="BTCUSDT", strategy=preference.name, preference=preference,
                                 price=Decimal(45000), status="queued", received_at=now, queued_at=now,
                                 idempotency_key=key)
