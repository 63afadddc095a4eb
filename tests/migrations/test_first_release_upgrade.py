"""A deployment of the first release (2026-11-24, commit 17d61fa) with an open position, upgraded
to the newest schema: its records read as before, and the next alert closes the old position."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from analytics.models import AccountSnapshot
from tests.migrations.conftest import FIRST_RELEASE, newest, schema_at, schema_now
from tests.migrations.records import assert_kept, book_old, rows_all
from tests.support.queue import run_queued_jobs
from trading.models import Execution, Position, Signal
from trading.rate_limit import strategies_changed
from trading.webhook import RATE_LIMITER

D = Decimal
PASSPHRASE = "test-passphrase-0123456789"


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    RATE_LIMITER.reset()
    yield
    RATE_LIMITER.reset()


def alert(action: str, **fields) -> dict:
    data = {"action": action, "symbol": "BTCUSDT", "price": 45500, "strategy": "ALSAPRO 1", "passphrase": PASSPHRASE,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
    response = Client().post("/webhook", json.dumps(data), content_type="application/json")
    assert response.status_code in (200, 202), response.content
    return response.json()


def test_it_closes_a_position_opened_by_the_first_release_after_the_upgrade(migrator):
    old = schema_at(migrator, FIRST_RELEASE)
    book = book_old(old)
    before = rows_all(old)
    migrator.apply_tested_migration(newest())
    strategies_changed()  # as a deploy's restart would: no process keeps the old release's strategies

    assert_kept(before, rows_all(schema_now()),
                renamed={"trading.SymbolSetting.exchange": "account"})
    assert Signal.objects.get(pk=book["signal"]).quantity_type == ""  # trading/0011: read as contracts
    # An old alert sent again is still a duplicate of the signal the first release stored.
    assert alert("buy", id="open-1") == {"status": "duplicate", "signal_id": book["signal"]}

    closed = alert("exit")
    assert run_queued_jobs() == 1
    execution = Execution.objects.get(signal_id=closed["signal_id"])
    assert execution.status == "filled", execution.reason
    order = execution.orders.get()
    assert (order.side, order.quantity, order.reduce_only, order.status) == ("SELL", D("0.111"), True, "FILLED")
    position = Position.objects.get(pk=book["position"])  # the first release's row, continued
    assert position.amount == 0

    # Its equity history is the account's: the summary and the history read the old snapshot.
    api = APIClient()
    reader = get_user_model().objects.create_user("reader", password="a-reader-password")
    api.force_authenticate(user=reader)
    summary = api.get("/account/summary").json()
    assert summary["equity"] is not None, summary  # else: "No account snapshot yet"
    assert D(str(summary["equity"])) == D("9998.001556")
    history = api.get("/account/history").json()
    assert book["snapshot"] in [row["id"] for row in history.get("results", history)], history
    assert AccountSnapshot.objects.get(pk=book["snapshot"]).account == "paper"
