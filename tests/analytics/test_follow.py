"""The ledger follows the fills on Binance (issue #17): a fill the user data stream reports queues a
ledger import a moment later, one for a burst of fills; the import brings the fill's lines."""

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from analytics import follow
from analytics.follow import IMPORT_TASK, LedgerFollower
from analytics.models import LedgerEntry
from preferences.models import StrategyPreference
from tests.fakes.binance_server import FakeBinance
from tests.support.queue import queued_jobs, run_queued_jobs
from tests.support.stream import eventually as waited_for, stream_running
from trading.exchange import binance_stream, reset_exchange
from trading.models import Order, Position, ProtectiveOrder
from trading.webhook import RATE_LIMITER

D = Decimal
DELAY = 0.3  # seconds, in the stream tests


# --- when: a burst of fills, one import after it -----------------------------------------------------
def follower() -> LedgerFollower:
    return LedgerFollower(delay=2.0, max_wait=10.0)


def test_it_imports_once_for_a_burst_its_delay_after_the_last_fill():
    ledger = follower()
    for at in (0.0, 0.01, 0.02):
        ledger.fill_seen("BTCUSDT", at)
    ledger.fill_seen("ETHUSDT", 0.5)
    assert ledger.take_due(2.49) == []
    assert ledger.take_due(2.5) == ["BTCUSDT", "ETHUSDT"]  # one import covers both symbols
    assert ledger.take_due(100.0) == []


def test_it_imports_a_long_burst_at_most_its_max_wait_after_the_first_fill():
    ledger = follower()
    for second in range(9):  # a fill every second from 0 to 8, then one at 8.01
        ledger.fill_seen("BTCUSDT", float(second))
    ledger.fill_seen("BTCUSDT", 8.01)
    assert ledger.take_due(9.99) == []
    assert ledger.take_due(10.0) == ["BTCUSDT"]  # 8.01 + 2 is later than 0 + 10
    # The fill at 8.01 came less than the delay before that import: another follows it, a delay after
    # the import (not at 10.01: imports are at least the delay apart).
    assert ledger.take_due(11.99) == []
    assert ledger.take_due(12.0) == ["BTCUSDT"]
    assert ledger.take_due(100.0) == []


def test_it_does_not_import_again_for_a_fill_exactly_its_delay_before_the_import():
    ledger = follower()
    for second in range(9):
        ledger.fill_seen("BTCUSDT", float(second))
    assert ledger.take_due(10.0) == ["BTCUSDT"]  # the last fill, at 8, is booked by 10
    assert ledger.take_due(100.0) == []


def test_it_imports_nothing_without_fills():
    assert follower().take_due(100.0) == []


# --- the user data stream, against the fake -----------------------------------------------------------
def eventually(check: Callable[[], object], within: float = 3.0) -> None:
    waited_for(lambda: bool(check()), within=within)


def ledger_jobs() -> list[dict]:
    return [job for job in queued_jobs() if job["func"] == IMPORT_TASK]


@pytest.fixture
def stream(binance_settings, binance_fake, monkeypatch) -> Iterator[FakeBinance]:
    """`stream_run` in a thread, as `manage.py userstream` runs it, connected to the fake."""
    binance_settings.BINANCE_STREAM_URL = binance_fake.ws_url
    monkeypatch.setattr(binance_stream, "RECV_TIMEOUT", 0.2)  # quick to notice `stop` in teardown
    monkeypatch.setattr(follow, "FOLLOW_DELAY", DELAY)
    reset_exchange()
    with stream_running(binance_fake):
        yield binance_fake


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_fills_on_the_stream_queues_one_import_that_brings_their_lines(stream):
    stream.manual_order("ETHUSDT", "BUY", "0.300", parts=3)  # three trades, three events
    eventually(lambda: len(ledger_jobs()) == 1)
    time.sleep(3 * DELAY)  # and no second one
    [job] = ledger_jobs()
    assert job["args"] == ("ETHUSDT",)
    assert not LedgerEntry.objects.exists()
    run_queued_jobs()
    lines = LedgerEntry.objects.filter(symbol="ETHUSDT", kind="COMMISSION")
    assert lines.count() == 3
    manual = Order.objects.get(symbol="ETHUSDT")  # placed by hand: its lines count, unattributed
    assert -sum(lines.values_list("amount", flat=True)) == manual.commission > 0


@pytest.mark.django_db(transaction=True)
def test_our_fill_and_its_stop_losss_fill_each_queue_an_import(stream, committed_client):
    RATE_LIMITER.reset()
    StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], leverage=5, stop_loss=D(2))
    body = {"action": "buy", "symbol": "BTCUSDT", "price": 45000, "strategy": "ALSAPRO 1",
            "passphrase": "test-passphrase-0123456789", "time": datetime.now(UTC).isoformat(timespec="milliseconds")}
    response = committed_client.post("/webhook", json.dumps(body), content_type="application/json")
    assert response.status_code == 202, response.content
    run_queued_jobs()
    entry = Order.objects.get(source=Order.Source.SIGNAL)
    eventually(lambda: len(ledger_jobs()) == 1)  # the stream reported our own fill too
    run_queued_jobs()
    assert LedgerEntry.objects.get(symbol="BTCUSDT").order == entry

    stop_loss = ProtectiveOrder.objects.get(kind="stop_loss", status="active")
    stream.trigger_protective(stop_loss.client_id)
    eventually(lambda: Position.objects.get(symbol="BTCUSDT").amount == 0)
    eventually(lambda: len(ledger_jobs()) == 1)
    run_queued_jobs()
    stop_fill = Order.objects.get(source=Order.Source.STOP_LOSS)
    realized = LedgerEntry.objects.get(kind="REALIZED_PNL")
    assert (realized.order, realized.amount) == (stop_fill, stop_fill.realized_pnl)
