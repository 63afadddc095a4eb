"""The webhook under a bar close (issue #18): every strategy's alert in the same second, from TradingView's
four addresses or from one, all accepted by the default rate limit."""

import json
from datetime import UTC, datetime

import pytest
from django.conf import settings

from preferences.models import StrategyPreference
from trading.models import Signal
from trading.webhook import RATE_LIMITER

PASSPHRASE = "test-passphrase-0123456789"
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "BNBUSDT"]


@pytest.fixture(autouse=True)
def _strategy(db):
    RATE_LIMITER.reset()
    StrategyPreference.objects.create(name="BAR CLOSE", products=SYMBOLS)
    yield
    RATE_LIMITER.reset()


def alert(client, number: int, address: str) -> int:
    data = {"action": "buy", "symbol": SYMBOLS[number % len(SYMBOLS)], "strategy": "BAR CLOSE", "quantity": "0.01",
            "passphrase": PASSPHRASE, "id": f"bar-close-{number}", "time": datetime.now(UTC).isoformat()}
    response = client.post("/webhook", json.dumps(data), content_type="application/json", REMOTE_ADDR=address)
    return response.status_code


def test_it_accepts_150_alerts_of_a_bar_close_from_tradingviews_four_addresses(client):
    addresses = settings.TRADINGVIEW_IPS
    answers = [alert(client, number, addresses[number % 4]) for number in range(150)]
    assert answers == [202] * 150
    assert Signal.objects.filter(status=Signal.Status.QUEUED).count() == 150


def test_it_accepts_300_at_once_from_one_address_and_answers_the_next_429(client):
    answers = [alert(client, number, "52.89.214.238") for number in range(301)]
    assert answers[:300] == [202] * 300  # a bar close sent from one of the four: 200 used to be the most
    assert answers[300] == 429
    assert alert(client, 301, "34.212.75.30") == 202  # each address has its own
