"""The execution core's guarantee, finding by finding (issue #7): an order is sent at most once, by
the one holder of its symbol's lane, and every accepted signal ends in a final state."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from preferences.models import StrategyPreference
from tests.support.queue import queued_jobs, run_queued_jobs
from trading import lanes, mandate as mandate_module, recording, sending
from trading.exchange import OrderResult, OrderState
from trading.lanes import Lane, LaneLost
from trading.mandate import Mandate
from trading.models import Execution, Order, Position, Signal, SymbolLane, SymbolSetting
from trading.recovery import pending_resume
from trading.services import signal_execute
from trading.webhook import RATE_LIMITER

D = Decimal
PASSPHRASE = "test-passphrase-0123456789"


@pytest.fixture(autouse=True)
def _setup(binance_settings):
    RATE_LIMITER.reset()


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5,
                                             allocation_pct=D(10))


def alert(client, action="buy", symbol="BTCUSDT", *, execute=True, **fields) -> Signal:
    data = {"action": action, "symbol": symbol, "price": 45000, "strategy": "ALSAPRO 1", "passphrase": PASSPHRASE,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
    response = client.post("/webhook", json.dumps(data), content_type="application/json")
    assert response.status_code in (200, 202), response.content
    if execute:
        run_queued_jobs()
    return Signal.objects.get(pk=response.json()["signal_id"])


def order_posts(fake) -> list:
    return fake.requests_to("/fapi/v1/order", "POST")


# --- 1. one holder: a lost lane stops before any request; lease times on the database clock --------
def test_it_stops_before_any_request_once_its_lane_was_taken(committed_client, strategy, binance_fake):
    signal = alert(committed_client, execute=False)
    lane = Lane.acquire("BTCUSDT")
    assert lane is not None
    # Another worker takes over (our lease lapsed while we were away): we must not send.
    later = timezone.now() + timedelta(seconds=60)
    SymbolLane.objects.filter(symbol="BTCUSDT").update(holder="elsewhere:1:abcd", lease_until=later)
    lane.renewed_at -= 60  # as if the keeper had not renewed lately: the next check asks the database
    with pytest.raises(LaneLost):
        signal_execute(signal=signal, lane=lane)
    assert order_posts(binance_fake) == []
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.EXECUTING  # left for the new holder


def test_it_moves_an_order_to_sent_only_while_holding_the_lane(strategy, binance_fake):
    signal = alert(Client(), execute=False)
    lane = Lane.acquire("BTCUSDT")
    execution = Execution.objects.create(signal=signal, strategy="ALSAPRO 1", symbol="BTCUSDT", exchange="binance",
                                         received_at=signal.received_at)
    order = Order.objects.create(execution=execution, leg=1, purpose="open", client_order_id="at-cas-1", symbol="BTCUSDT",
                                 side="BUY", quantity=D("0.111"))
    SymbolLane.objects.filter(symbol="BTCUSDT").update(lease_until=timezone.now() - timedelta(seconds=1))  # lapsed
    with pytest.raises(LaneLost):
        sending._claim(order, Mandate(lane=lane, received_at=signal.received_at), stamp=1)
    assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING


def test_it_reads_lease_times_from_the_database_clock(db, monkeypatch):
    holder = Lane.acquire("ETHUSDT")
    assert holder is not None
    # This host's clock runs an hour fast: by its clock the other lease lapsed long ago.
    fast = timezone.now() + timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: fast)
    assert Lane.acquire("ETHUSDT") is None


def test_it_never_sleeps_longer_than_a_quarter_lease_and_stops_when_the_lane_goes(db, monkeypatch, settings):
    settings.EXECUTION_MAX_DELAY = 60
    lane = Lane.acquire("BTCUSDT")
    slices: list[float] = []

    def sleep(seconds: float) -> None:
        slices.append(seconds)
        lane.renewed_at -= seconds  # time passes for the lane's own bookkeeping too
        if len(slices) == 3:
            SymbolLane.objects.filter(symbol="BTCUSDT").update(holder="thief:1:x")

    monkeypatch.setattr(mandate_module.time, "sleep", sleep)
    with pytest.raises(LaneLost):
        Mandate(lane=lane, received_at=timezone.now()).sleep(25, why="Retry-After 25")
    assert len(slices) == 3 and max(slices) <= settings.LANE_LEASE / 4


def test_it_frees_the_lane_of_a_holder_whose_process_is_gone(db):
    later = timezone.now() + timedelta(seconds=60)
    SymbolLane.objects.create(symbol="BTCUSDT", holder=f"{lanes.HOST}:999999999:dead", lease_until=later)
    SymbolLane.objects.create(symbol="ETHUSDT", holder="otherhost:1:alive", lease_until=later)
    assert lanes.dead_lanes_free() == ["BTCUSDT"]
    assert Lane.acquire("BTCUSDT") is not None and Lane.acquire("ETHUSDT") is None


# --- 5. the broker is down at intake: 202, and recovery queues the signal once it answers ---------
def test_it_answers_202_and_queues_later_when_the_broker_is_down(committed_client, strategy, binance_fake, monkeypatch):
    from trading import queue

    def broker_down(signal_id: int) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(queue, "uses_orm_broker", lambda: False)  # the Redis path: queued after the commit
    monkeypatch.setattr(queue, "_send", broker_down)
    signal = alert(committed_client, execute=False)
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.QUEUED
    monkeypatch.undo()  # the broker is back
    assert pending_resume(older_than=timedelta(0)) == [signal.pk]
    run_queued_jobs()
    assert Execution.objects.get(signal=signal).status == Execution.Status.FILLED


# --- 6. account settings never hold back a close; kept per account --------------------------------
def test_it_still_closes_when_the_margin_type_cannot_change(committed_client, strategy, binance_fake):
    alert(committed_client)  # long 0.111, margin cross
    strategy.margin_type = "isolated"
    strategy.save()
    binance_fake.fail_next("/fapi/v1/marginType", status=400, code=-4048,
                           msg="Margin type cannot be changed if there exists position.")
    reverse = alert(committed_client, "sell")
    execution = Execution.objects.get(signal=reverse)
    close, opening = execution.orders.order_by("leg")
    assert (close.purpose, close.status) == ("close", "FILLED")
    assert opening.status == Order.Status.REJECTED and "margin type isolated could not be set" in opening.error_message
    assert execution.status == Execution.Status.PARTIAL and "margin type isolated" in execution.reason
    assert binance_fake.position("BTCUSDT") == 0 and len(order_posts(binance_fake)) == 2


def test_it_keeps_symbol_settings_per_exchange_account(committed_client, strategy, binance_fake, settings):
    from trading.exchange import get_exchange, reset_exchange

    alert(committed_client)
    testnet = get_exchange().account_id
    settings.BINANCE_USE_TESTNET = False  # the same symbol on another account: its settings are unknown
    reset_exchange()
    assert get_exchange().account_id != testnet
    alert(committed_client, price=45001)
    # Read again for the other account (the fake is one account, so it finds the 5 set for the first).
    assert len(binance_fake.requests_to("/fapi/v1/symbolConfig")) == 2
    assert len(binance_fake.requests_to("/fapi/v1/leverage")) == 1
    assert SymbolSetting.objects.filter(symbol="BTCUSDT").count() == 2


# --- 7. an execution always ends, whatever goes wrong while recording ------------------------------
def test_it_ends_an_execution_whose_record_cannot_be_saved(committed_client, strategy, binance_fake, monkeypatch):
    real_save = Execution.save

    def save_fails_once(self, *args, **kwargs):
        if self.status != Execution.Status.RUNNING and not getattr(self, "_failed_once", False):
            self._failed_once = True
            from django.db import DataError
            raise DataError("numeric field overflow")
        return real_save(self, *args, **kwargs)

    monkeypatch.setattr(Execution, "save", save_fails_once)
    signal = alert(committed_client)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.FILLED and execution.finished_at is not None
    assert "recording the details failed: DataError" in execution.reason
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.DONE


def test_it_records_a_close_priced_ten_thousand_times_off(committed_client, strategy, binance_fake):
    alert(committed_client)
    close = alert(committed_client, "close", price="4.5")  # a mis-scaled {{close}} on a close: fills at ~45,000
    execution = Execution.objects.get(signal=close)
    assert execution.status == Execution.Status.FILLED and execution.slippage_bps is not None
    assert Signal.objects.get(pk=close.pk).status == Signal.Status.DONE


def test_health_counts_signals_not_final_after_twice_the_deadline(strategy, settings, client):
    settings.EXECUTION_MAX_DELAY = 30
    old = timezone.now() - timedelta(seconds=61)
    Signal.objects.create(action="buy", symbol="BTCUSDT", strategy="ALSAPRO 1", status=Signal.Status.EXECUTING,
                          received_at=old, idempotency_key="stuck-1")
    from alsatrade.health import check_queue

    assert check_queue()["unfinished_signals"] == 1 and check_queue()["ok"] is False


# --- 8. lost answers, NEW answers, recording twice -------------------------------------------------
def test_it_looks_up_an_order_answered_new_until_it_is_filled(committed_client, strategy, binance_fake):
    binance_fake.answer_new_next()
    signal = alert(committed_client)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.FILLED
    assert execution.orders.get().executed_qty == D("0.111") and len(binance_fake.requests_to("/fapi/v1/order", "GET")) >= 1
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.111")


def test_recording_the_same_fill_twice_changes_nothing(committed_client, strategy, binance_fake):
    signal = alert(committed_client)
    order = Execution.objects.get(signal=signal).orders.get()
    result = OrderResult(client_order_id=order.client_order_id, exchange_order_id=order.exchange_order_id,
                         state=OrderState.FILLED, executed_qty=order.executed_qty, avg_price=order.avg_price)
    recording.order_record(order, result)
    recording.order_record(order, result)
    position = Position.objects.get(symbol="BTCUSDT")
    assert position.amount == D("0.111") and position.realized_pnl == 0


def test_it_folds_a_partial_fill_in_once_and_the_rest_when_it_fills(committed_client, strategy, binance_fake):
    signal = alert(committed_client)
    order = Execution.objects.get(signal=signal).orders.get()
    Position.objects.all().delete()
    Order.objects.filter(pk=order.pk).update(applied_qty=0, executed_qty=0, status=Order.Status.SENT)
    order.refresh_from_db()
    partial = OrderResult(order.client_order_id, "1", OrderState.PARTIALLY_FILLED, D("0.1"), D("45000"))
    recording.order_record(order, partial)
    recording.order_record(order, partial)
    recording.order_record(order, OrderResult(order.client_order_id, "1", OrderState.FILLED, D("0.111"), D("45000")))
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.111")


def test_it_sends_a_resumed_order_with_the_steps_decimals(committed_client, strategy, binance_fake):
    signal = alert(committed_client, execute=False)
    execution = Execution.objects.create(
        signal=signal, strategy="ALSAPRO 1", symbol="BTCUSDT", exchange="binance", received_at=signal.received_at,
        decision={"outcome": "trade", "reason": "open long 0.111", "price": "45000", "legs": [
            {"purpose": "open", "side": "BUY", "quantity": "0.111", "reduce_only": False, "position_side": "BOTH"}]})
    Order.objects.create(execution=execution, leg=1, purpose="open", client_order_id="at-resume-1", symbol="BTCUSDT",
                         side="BUY", quantity=D("0.111"))  # read back as 0.1110000000
    run_queued_jobs()
    assert [r.params["quantity"] for r in order_posts(binance_fake)] == ["0.111"]
    assert Execution.objects.get(pk=execution.pk).status == Execution.Status.FILLED


# --- 9. a mis-scaled alert price ----------------------------------------------------------------------
def test_it_sizes_at_the_mark_price_when_the_alerts_price_is_ten_times_off(committed_client, strategy, binance_fake):
    signal = alert(committed_client, price=450000)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.FILLED
    assert [r.params["quantity"] for r in order_posts(binance_fake)] == ["0.111"]  # not 0.011
    assert "sized at the mark price" in execution.reason and execution.decision["price"] == "45000"


def test_it_checks_a_suspicious_price_against_a_fresh_mark(committed_client, strategy, binance_fake):
    alert(committed_client)  # reads and remembers the mark price, 45,000
    binance_fake.set_price("BTCUSDT", "50000")  # the market moved 11% within the minute
    signal = alert(committed_client, price=50000)
    assert "mark price" not in Execution.objects.get(signal=signal).reason
    assert len(binance_fake.requests_to("/fapi/v1/premiumIndex")) == 2


def test_the_sweeper_queues_only_signals_older_than_a_task_takes(committed_client, strategy, binance_fake):
    signal = alert(committed_client, execute=False)
    assert queued_jobs() and pending_resume() == []
    Signal.objects.filter(pk=signal.pk).update(received_at=timezone.now() - timedelta(seconds=3))
    assert pending_resume() == [signal.pk]


def test_it_frees_the_lane_of_a_killed_holder_nobody_reaped(db):
    import os
    import signal as signals
    import subprocess
    import time

    child = subprocess.Popen(["sleep", "60"])
    os.kill(child.pid, signals.SIGKILL)
    time.sleep(0.2)  # killed, not waited for: a zombie, as under a container without an init
    try:
        later = timezone.now() + timedelta(seconds=60)
        SymbolLane.objects.create(symbol="BTCUSDT", holder=f"{lanes.HOST}:{child.pid}:zombie", lease_until=later)
        assert lanes.dead_lanes_free() == ["BTCUSDT"]
    finally:
        child.wait()
