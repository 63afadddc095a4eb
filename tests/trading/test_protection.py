"""Protective orders (issue #10): stop-loss and take-profit rest on the exchange as conditional algo
orders after an entry; re-placed after an add, cancelled on a close or reversal, read back, and a
position left without its protection raises the alarm."""

from decimal import Decimal

import pytest
from django.utils import timezone

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from tests.support.webhook import alert, strategy_create, webhook_client, webhook_send  # noqa: F401 (the `client` fixture)
from trading.exchange import reset_exchange
from trading.models import Execution, PaperPosition, PaperProtective, ProtectiveOrder, Signal
from trading.protection import positions_unprotected
from trading.tasks import execute_signal
from trading.webhook import RATE_LIMITER

D = Decimal


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return strategy_create(stop_loss=D(2), take_profit=D(3))


def resting(fake) -> list[tuple[str, str, str]]:
    return sorted((o["orderType"], o["side"], o["triggerPrice"]) for o in fake.algo_orders.values())


def test_it_places_a_stop_loss_and_take_profit_after_the_entry(client, strategy, binance_fake):
    execution = alert(client)
    assert execution.status == "filled" and execution.protection_alarm == ""
    # 45,000 × 0.98 = 44,100.0 and × 1.03 = 46,350.0, on BTCUSDT's 0.1 tick
    assert resting(binance_fake) == [("STOP_MARKET", "SELL", "44100.0"), ("TAKE_PROFIT_MARKET", "SELL", "46350.0")]
    assert all(o["closePosition"] and o["algoType"] == "CONDITIONAL" for o in binance_fake.algo_orders.values())
    assert set(ProtectiveOrder.objects.values_list("status", flat=True)) == {"active"}
    assert binance_fake.requests_to("/fapi/v1/order", "POST")[0].params["type"] == "MARKET"  # the entry itself


def test_it_replaces_them_after_an_add_moves_the_entry(client, strategy, binance_fake):
    alert(client)
    binance_fake.set_price("BTCUSDT", "46000")
    alert(client, price=46000)  # entry 45,000 → 45,495.5…: new triggers
    assert len(binance_fake.algo_orders) == 2
    assert resting(binance_fake)[0][2] != "44100.0"
    assert ProtectiveOrder.objects.filter(status="cancelled").count() == 2


def test_it_cancels_them_when_the_position_closes(client, strategy, binance_fake):
    alert(client)
    alert(client, "close")
    assert binance_fake.algo_orders == {} and not ProtectiveOrder.objects.filter(status="active").exists()


def test_it_replaces_them_on_the_other_side_after_a_reversal(client, strategy, binance_fake):
    alert(client)
    alert(client, "sell")
    assert resting(binance_fake) == [("STOP_MARKET", "BUY", "45900.0"), ("TAKE_PROFIT_MARKET", "BUY", "43650.0")]


def test_the_alerts_own_prices_win(client, strategy, binance_fake):
    alert(client, sl="44500.04", tp="47000")
    assert resting(binance_fake) == [("STOP_MARKET", "SELL", "44500.1"), ("TAKE_PROFIT_MARKET", "SELL", "47000.0")]


def test_a_refused_protective_order_raises_the_alarm(client, strategy, binance_fake):
    binance_fake.fail_next("/fapi/v1/algoOrder", status=400, code=-2021, msg="Order would immediately trigger.")
    execution = alert(client)
    assert execution.status == "filled"  # the trade stands
    assert "stop-loss at 44100 was refused" in execution.protection_alarm
    assert positions_unprotected() == [f"BTCUSDT: {execution.protection_alarm}"]


def test_a_retry_after_a_lost_answer_does_not_place_two(client, strategy, binance_fake):
    binance_fake.fail_next("/fapi/v1/algoOrder", after_fill=True)  # placed, but the answer is a 503
    execution = alert(client)
    assert execution.protection_alarm == "" and len(binance_fake.algo_orders) == 2


class WorkerKilled(BaseException):
    """Stands for SIGKILL: nothing in the worker catches it."""


def test_a_worker_that_dies_between_the_fill_and_the_protection_leaves_it_to_the_resumed_execution(
        client, strategy, binance_fake, monkeypatch):
    from trading import protection

    placing = protection.position_protect

    def die(**kwargs: object) -> str:
        raise WorkerKilled

    monkeypatch.setattr(protection, "position_protect", die)
    RATE_LIMITER.reset()
    answer = webhook_send(client)
    with pytest.raises(WorkerKilled):
        run_queued_jobs()
    execution = Execution.objects.get(signal_id=answer.json()["signal_id"])
    assert execution.finished_at is None and binance_fake.algo_orders == {}  # filled, not yet protected
    monkeypatch.setattr(protection, "position_protect", placing)
    from trading.models import SymbolLane

    SymbolLane.objects.update(holder="", lease_until=None)  # the dead holder's lane, as recovery frees it
    execute_signal(execution.signal_id)  # recovery queues it again
    execution.refresh_from_db()
    assert execution.status == "filled" and execution.protection_alarm == "" and len(binance_fake.algo_orders) == 2
    assert len(binance_fake.requests_to("/fapi/v1/order", "POST")) == 1  # the entry was not sent again


def test_it_replaces_protection_cancelled_by_hand_at_the_next_execution(client, strategy, binance_fake):
    alert(client)
    binance_fake.algo_orders.clear()  # cancelled by hand in Binance's UI
    binance_fake.set_price("BTCUSDT", "45500")
    execution = alert(client, price=45500)  # an add: protections re-placed, then read back
    assert execution.protection_alarm == "" and len(binance_fake.algo_orders) == 2


def test_the_paper_exchange_triggers_a_stop_loss(strategy, settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    now = timezone.now()
    signal = Signal.objects.create(action="buy", symbol="BTCUSDT", strategy="ALSAPRO 1", preference=strategy, price=D(45000),
                                   status="queued", received_at=now, queued_at=now, idempotency_key="paper-sl")
    execute_signal(signal.pk)
    assert PaperProtective.objects.filter(status="open").count() == 2
    from trading.exchange import get_exchange

    get_exchange().observe_price("BTCUSDT", D("44000"))  # below the stop at 44,100
    assert PaperPosition.objects.get(symbol="BTCUSDT").amount == 0
    assert PaperProtective.objects.get(kind="stop_loss").status == "triggered"
    reset_exchange()


def test_it_raises_the_alarm_when_the_exchange_does_not_show_a_placed_order(client, strategy, binance_fake, monkeypatch):
    from trading.exchange.binance import BinanceExchange

    monkeypatch.setattr(BinanceExchange, "open_protective", lambda self, symbol: [])
    execution = alert(client)
    assert "is not at the exchange" in execution.protection_alarm
    assert set(ProtectiveOrder.objects.values_list("status", flat=True)) == {"gone"}


def test_health_reports_a_position_left_without_its_protection(client, strategy, binance_fake):
    from alsatrade.health import check_protection

    binance_fake.fail_next("/fapi/v1/algoOrder", status=400, code=-2021, msg="Order would immediately trigger.")
    alert(client)
    assert check_protection()["ok"] is False
    alert(client, "close")
    assert check_protection() == {"ok": True, "unprotected_positions": []}


# --- retries of protective requests (trading/protection.py _with_retries) --------------------------------
def _failing(*errors: Exception):
    """A call that raises each of `errors` in turn, then answers "placed"."""
    pending = list(errors)

    def call() -> str:
        if pending:
            raise pending.pop(0)
        return "placed"
    return call


def test_a_retry_waits_what_the_exchange_asked_for_up_to_patience():
    from trading.exchange import RetryableError
    from trading.protection import PATIENCE, _with_retries

    waited: list[float] = []
    held_back = RetryableError("holding back after Binance's rate limit", code="backoff", retry_after=PATIENCE)
    assert _with_retries(_failing(held_back), sleep=waited.append) == "placed"
    assert waited == [PATIENCE]  # exactly the patience: waited


def test_a_wait_longer_than_patience_is_an_alarm_now_not_a_wait():
    from trading.exchange import RetryableError
    from trading.protection import PATIENCE, _with_retries

    waited: list[float] = []
    banned = RetryableError("banned", code="418", retry_after=PATIENCE + 0.001)
    with pytest.raises(RetryableError):
        _with_retries(_failing(banned), sleep=waited.append)
    assert waited == []


def test_without_a_word_from_the_exchange_the_pause_doubles_and_the_third_failure_goes_up():
    from trading.exchange import OutcomeUnknown
    from trading.protection import ATTEMPTS, PAUSE, _with_retries

    waited: list[float] = []
    lost = [OutcomeUnknown("timeout") for _ in range(ATTEMPTS)]
    with pytest.raises(OutcomeUnknown):
        _with_retries(_failing(*lost), sleep=waited.append)
    assert waited == [PAUSE, PAUSE * 2]
    assert _with_retries(_failing(*lost[:2]), sleep=waited.append) == "placed"
