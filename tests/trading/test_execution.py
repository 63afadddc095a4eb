"""The worker's side on the paper exchange: from a queued Signal to orders, positions and P&L."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from preferences.models import StrategyPreference
from tests.support.queue import queued_jobs
from trading import lanes, services
from trading.exchange import reset_exchange
from trading.models import Execution, Order, PaperOrder, Position, Signal, SymbolLane, SymbolSetting, WorkerHeartbeat
from trading.tasks import execute_signal, sweep

pytestmark = pytest.mark.django_db

D = Decimal


@pytest.fixture(autouse=True)
def _paper(settings):
    settings.EXCHANGE = "paper"
    settings.PAPER_BALANCE = D("10000")
    reset_exchange()
    yield
    reset_exchange()


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5, allocation_pct=D(10))


_seq = iter(range(1, 10**6))


def queued(strategy, action="buy", *, symbol="BTCUSDT", price="45000", quantity=None, ago=0.0, **fields) -> Signal:
    now = timezone.now() - timedelta(seconds=ago)
    return Signal.objects.create(
        action=action, symbol=symbol, strategy=strategy.name, preference=strategy, price=D(price) if price else None,
        quantity=D(quantity) if quantity else None, sender_time=now, status=Signal.Status.QUEUED, received_at=now,
        queued_at=now, idempotency_key=f"test:{next(_seq)}", **fields,
    )


def test_it_fills_the_seed_example_and_records_position_timing_and_pnl(strategy):
    signal = queued(strategy)
    assert execute_signal(signal.pk) == "BTCUSDT: executed 1 signal(s)"
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.FILLED
    [order] = execution.orders.all()
    # 10% of 10,000 USDT × 5x ÷ 45,000 = 0.1111… → 0.111
    assert (order.side, order.quantity, order.status, order.executed_qty) == ("BUY", D("0.111"), "FILLED", D("0.111"))
    assert order.avg_price == D("45000") and order.commission > 0
    assert execution.fill_price == D("45000") and execution.slippage_bps == 0
    assert execution.decision["sizing"]["quantity"] == "0.111"
    for stage in ("received_at", "queued_at", "started_at", "sent_at", "acknowledged_at", "finished_at"):
        assert getattr(execution, stage) is not None, stage
    assert execution.latency_ms is not None and execution.stage_ms["total"] >= 0
    position = Position.objects.get(symbol="BTCUSDT")
    assert (position.amount, position.entry_price, position.leverage, position.margin_type) == (
        D("0.111"), D("45000"), 5, "cross")
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.DONE

    close = queued(strategy, "close", price="46000")
    execute_signal(close.pk)
    [closing] = Execution.objects.get(signal=close).orders.all()
    assert (closing.side, closing.reduce_only, closing.quantity) == ("SELL", True, D("0.111"))
    assert closing.realized_pnl == D("111")  # (46,000 − 45,000) × 0.111
    position.refresh_from_db()
    assert position.amount == 0 and position.realized_pnl == D("111")


def test_it_sets_leverage_and_margin_type_once_per_symbol(strategy):
    execute_signal(queued(strategy).pk)
    execute_signal(queued(strategy).pk)
    setting = SymbolSetting.objects.get(symbol="BTCUSDT")
    assert (setting.account, setting.leverage, setting.margin_type) == ("paper", 5, "cross")


def test_it_acts_once_when_the_task_runs_twice(strategy):
    signal = queued(strategy)
    execute_signal(signal.pk)
    assert execute_signal(signal.pk) == "BTCUSDT: lane busy or nothing pending"
    assert PaperOrder.objects.count() == 1 and Order.objects.count() == 1
    assert Execution.objects.get(signal=signal).attempts == 1


def test_it_executes_a_symbols_signals_in_the_order_they_arrived(strategy):
    Position.objects.create(symbol="BTCUSDT", amount=D("0.2"), entry_price=D("44000"))
    from trading.models import PaperPosition
    PaperPosition.objects.create(symbol="BTCUSDT", amount=D("0.2"), entry_price=D("44000"), leverage=5)
    close = queued(strategy, "close", ago=0.05)
    opening = queued(strategy, "buy")
    # The open's task happens to run first: the lane still executes the older close first.
    execute_signal(opening.pk)
    close_order = Order.objects.get(execution__signal=close)
    open_order = Order.objects.get(execution__signal=opening)
    assert close_order.sent_at < open_order.sent_at
    assert (close_order.side, close_order.quantity) == ("SELL", D("0.2"))
    # Sized after the close: its realized profit is part of the equity the open was sized from.
    assert open_order.quantity == D("0.113")
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.113")


def test_it_leaves_a_signal_to_the_lane_holder(strategy):
    signal = queued(strategy)
    other = lanes.Lane.acquire("BTCUSDT")
    assert other is not None
    assert execute_signal(signal.pk) == "BTCUSDT: lane busy or nothing pending"
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.QUEUED
    other.release()
    execute_signal(signal.pk)
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.DONE


def test_it_skips_a_signal_that_waited_too_long(strategy, settings):
    settings.EXECUTION_MAX_DELAY = 30
    signal = queued(strategy, ago=45)
    execute_signal(signal.pk)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.SKIPPED and "too late" in execution.reason
    assert not execution.orders.exists() and not PaperOrder.objects.exists()
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.FAILED


def test_it_records_a_sell_on_a_long_only_strategy_when_flat_as_filtered(strategy):
    strategy.direction = "long"
    strategy.save()
    signal = queued(strategy, "sell")
    execute_signal(signal.pk)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.NOTHING and "filtered by direction" in execution.reason
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.FILTERED
    assert not PaperOrder.objects.exists()


def test_it_has_nothing_to_do_closing_without_a_position(strategy):
    signal = queued(strategy, "close")
    execute_signal(signal.pk)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.NOTHING and "nothing to close" in execution.reason
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.DONE


def test_it_sends_nothing_below_the_minimum_notional_and_says_why(strategy):
    strategy.allocation_pct, strategy.leverage = D("0.5"), 1
    strategy.save()
    signal = queued(strategy)
    execute_signal(signal.pk)
    execution = Execution.objects.get(signal=signal)
    assert execution.status == Execution.Status.SKIPPED
    assert "below BTCUSDT's minimum of 100 USDT" in execution.reason
    assert not PaperOrder.objects.exists()


def test_it_records_an_exchange_refusal_without_retrying(strategy):
    strategy.allocation_pct, strategy.leverage = D(100), 125
    strategy.save()
    Position.objects.create(symbol="ETHUSDT", amount=D(1), entry_price=D(3000))  # our mirror only: stale
    signal = queued(strategy, "close", symbol="ETHUSDT", price="3000")
    execute_signal(signal.pk)
    execution = Execution.objects.get(signal=signal)
    [order] = execution.orders.all()
    assert order.status == Order.Status.REJECTED and order.error_code == "-2022" and order.sent_at is not None
    assert Position.objects.get(symbol="ETHUSDT").amount == 0  # the mirror learns there is nothing
    # Nothing was left undone: the position was closed, outside this system (tests/trading/test_already_flat.py).
    assert execution.status == Execution.Status.NOTHING and execution.warning
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.DONE


def test_it_finds_an_order_a_killed_worker_sent_instead_of_sending_it_again(strategy):
    signal = queued(strategy)
    execute_signal(signal.pk)
    # Rewind the record to the moment between the request leaving and its answer being saved.
    execution = Execution.objects.get(signal=signal)
    Order.objects.filter(execution=execution).update(
        status=Order.Status.SENT, exchange_order_id="", executed_qty=0, applied_qty=0, avg_price=None
    )
    Execution.objects.filter(pk=execution.pk).update(status=Execution.Status.RUNNING, finished_at=None, acknowledged_at=None)
    Signal.objects.filter(pk=signal.pk).update(status=Signal.Status.EXECUTING)
    Position.objects.all().delete()
    SymbolLane.objects.filter(symbol="BTCUSDT").update(holder="dead-worker", lease_until=timezone.now() - timedelta(seconds=1))

    execute_signal(signal.pk)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FILLED and execution.attempts == 2
    assert PaperOrder.objects.count() == 1
    order = execution.orders.get()
    assert order.status == "FILLED" and order.executed_qty == D("0.111")
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.111")


def test_it_sends_an_order_a_killed_worker_recorded_but_never_sent(strategy):
    signal = queued(strategy)
    execution = Execution.objects.create(
        signal=signal, strategy=strategy.name, symbol="BTCUSDT", exchange="paper", received_at=signal.received_at,
        decision={"outcome": "trade", "reason": "open long 0.111", "legs": [
            {"purpose": "open", "side": "BUY", "quantity": "0.111", "reduce_only": False, "position_side": "BOTH"}]},
    )
    Order.objects.create(
        execution=execution, leg=1, purpose="open", client_order_id=services.client_order_id(signal, 1), symbol="BTCUSDT",
        side="BUY", quantity=D("0.111"), status=Order.Status.SENT, sent_at=timezone.now() - timedelta(seconds=2),
    )
    Signal.objects.filter(pk=signal.pk).update(status=Signal.Status.EXECUTING)
    execute_signal(signal.pk)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.FILLED
    assert PaperOrder.objects.count() == 1


def test_it_keeps_client_order_ids_legal_short_and_distinct():
    now = timezone.now()
    one = Signal(pk=1, received_at=now)
    ids = {services.client_order_id(one, 1), services.client_order_id(one, 2),
           services.client_order_id(Signal(pk=1, received_at=now + timedelta(milliseconds=1)), 1),
           services.client_order_id(Signal(pk=10**15, received_at=now), 2)}
    assert len(ids) == 4
    import re
    assert all(re.fullmatch(r"[.A-Z:/a-z0-9_-]{1,36}", cid) for cid in ids)


def test_it_sweeps_a_heartbeat_and_requeues_a_lost_signal(strategy, django_capture_on_commit_callbacks):
    lost = queued(strategy, ago=20)
    fresh = queued(strategy, "buy", symbol="ETHUSDT", price="3000")
    with django_capture_on_commit_callbacks(execute=True):
        sweep()
    assert WorkerHeartbeat.objects.get(name__startswith="worker:").beat_at > timezone.now() - timedelta(seconds=5)
    assert [job["args"] for job in queued_jobs()] == [(lost.pk,)]
    assert fresh.pk  # too young to be called lost


def test_it_honours_a_strategy_disabled_after_the_signal_arrived(strategy):
    signal = queued(strategy)
    strategy.enabled = False
    strategy.save()
    execute_signal(signal.pk)
    assert Signal.objects.get(pk=signal.pk).status == Signal.Status.FILTERED
    assert not PaperOrder.objects.exists()


def test_it_takes_a_snapshot_and_reconciles_positions(strategy):
    from analytics.models import AccountSnapshot
    from analytics.tasks import take_snapshot

    execute_signal(queued(strategy).pk)
    Position.objects.filter(symbol="BTCUSDT").update(amount=D("5"), updated_at=timezone.now() - timedelta(minutes=5))
    take_snapshot()
    snapshot = AccountSnapshot.objects.latest()
    assert snapshot.exchange == "paper" and snapshot.wallet_balance < D("10000")
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.111")


def test_it_does_not_send_a_remaining_leg_once_the_signal_is_too_old(strategy, settings):
    settings.EXECUTION_MAX_DELAY = 30
    signal = queued(strategy, "sell", ago=45)
    legs = [{"purpose": "close", "side": "SELL", "quantity": "0.1", "reduce_only": True, "position_side": "BOTH"},
            {"purpose": "open", "side": "SELL", "quantity": "0.1", "reduce_only": False, "position_side": "BOTH"}]
    execution = Execution.objects.create(
        signal=signal, strategy=strategy.name, symbol="BTCUSDT", exchange="paper", received_at=signal.received_at,
        decision={"outcome": "trade", "reason": "reverse to short 0.1", "legs": legs},
    )
    Order.objects.create(
        execution=execution, leg=1, purpose="close", client_order_id="done-leg-1", symbol="BTCUSDT",
        side="SELL", quantity=D("0.1"), reduce_only=True, status="FILLED", executed_qty=D("0.1"), avg_price=D("45000"),
    )
    Signal.objects.filter(pk=signal.pk).update(status=Signal.Status.EXECUTING)
    execute_signal(signal.pk)
    execution.refresh_from_db()
    assert execution.status == Execution.Status.PARTIAL and "over EXECUTION_MAX_DELAY" in execution.reason
    assert execution.orders.get(leg=2).status == Order.Status.NOT_FOUND
    assert not PaperOrder.objects.exists()
