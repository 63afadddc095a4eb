"""Kill switch and risk limits (issue #10): opening legs refused with the limit's name, closing legs
always out, flatten closes everything, the state survives restarts."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.test import APIClient

from preferences.models import StrategyPreference
from tests.support.queue import run_queued_jobs
from trading.exchange import reset_exchange
from trading.models import Execution, PaperOrder, Position, Signal, TradingHalt
from trading.tasks import execute_signal

pytestmark = pytest.mark.django_db

D = Decimal
_seq = iter(range(1, 10**6))


@pytest.fixture(autouse=True)
def _paper(settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    yield
    reset_exchange()


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5)


def execute(strategy, action="buy", *, symbol="BTCUSDT", price="45000") -> Execution:
    now = timezone.now()
    signal = Signal.objects.create(action=action, symbol=symbol, strategy=strategy.name, preference=strategy, price=D(price),
                                   status=Signal.Status.QUEUED, received_at=now, queued_at=now,
                                   idempotency_key=f"risk:{next(_seq)}")
    execute_signal(signal.pk)
    return Execution.objects.get(signal=signal)


@pytest.fixture
def staff_api() -> APIClient:
    user = User.objects.create_user("ops", password="x")
    user.user_permissions.add(Permission.objects.get(codename="change_tradinghalt"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_it_refuses_opening_while_halted_and_still_closes(strategy, staff_api):
    execute(strategy)  # long 0.111
    assert staff_api.post("/halt", {"halted": True, "reason": "exchange incident"}, format="json").status_code == 200
    refused = execute(strategy, symbol="ETHUSDT", price="3000")
    assert refused.status == Execution.Status.SKIPPED
    assert "trading is halted by the kill switch: exchange incident" in refused.reason
    reversal = execute(strategy, "sell")
    assert [o.purpose for o in reversal.orders.all()] == ["close"]
    assert "the short was not opened: trading is halted" in reversal.reason
    assert Position.objects.get(symbol="BTCUSDT").amount == 0 and PaperOrder.objects.count() == 2


def test_it_flattens_every_open_position(strategy, staff_api, django_capture_on_commit_callbacks):
    execute(strategy)
    execute(strategy, symbol="ETHUSDT", price="3000")
    with django_capture_on_commit_callbacks(execute=True):
        answer = staff_api.post("/halt", {"halted": True, "flatten": True}, format="json").json()
    assert answer["halted"] is True and len(answer["flattening"]) == 2
    run_queued_jobs()
    assert not Position.objects.exclude(amount=0).exists()
    assert set(Execution.objects.filter(signal__origin="operator").values_list("status", flat=True)) == {"filled"}


def test_the_halt_survives_a_restart_and_lifts(strategy, staff_api):
    staff_api.post("/halt", {"halted": True}, format="json")
    reset_exchange()  # a new process reads the same row
    assert staff_api.get("/halt").json()["halted"] is True and TradingHalt.current().changed_by == "ops"
    staff_api.post("/halt", {"halted": False}, format="json")
    assert execute(strategy).status == Execution.Status.FILLED


def test_it_lets_only_permitted_users_halt(strategy):
    reader = APIClient()
    reader.force_authenticate(User.objects.create_user("reader", password="x"))
    assert reader.get("/halt").status_code == 200
    assert reader.post("/halt", {"halted": True}, format="json").status_code == 403
    assert APIClient().get("/halt").status_code in (401, 403)
    assert TradingHalt.current().halted is False


def test_it_halts_a_strategy_for_the_day_once_its_daily_loss_limit_is_reached(strategy, monkeypatch):
    strategy.max_daily_loss = D("50")
    strategy.save()
    execute(strategy)
    execute(strategy, "close", price="44000")  # realized −111 (0.111 × −1,000), less fees
    refused = execute(strategy)
    assert refused.status == Execution.Status.SKIPPED and "daily loss limit reached" in refused.reason
    assert "the limit is -50 USDT" in refused.reason
    strategy.refresh_from_db()
    tomorrow = (timezone.now() + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert strategy.halted_until == tomorrow
    assert "is halted until" in execute(strategy, symbol="ETHUSDT", price="3000").reason
    later = tomorrow + timedelta(minutes=1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert execute(strategy).status == Execution.Status.FILLED  # a new UTC day: opens again


def test_it_opens_no_new_position_past_the_limit_but_adds_and_closes(strategy):
    strategy.max_open_positions = 1
    strategy.save()
    execute(strategy)
    refused = execute(strategy, symbol="ETHUSDT", price="3000")
    assert refused.status == Execution.Status.SKIPPED
    assert "max open positions reached: strategy 'ALSAPRO 1' holds 1 of its limit of 1" in refused.reason
    assert execute(strategy).status == Execution.Status.FILLED  # an add to the held position
    assert execute(strategy, "close").status == Execution.Status.FILLED
    assert execute(strategy, symbol="ETHUSDT", price="3000").status == Execution.Status.FILLED


def test_it_sets_the_limits_through_the_preferences_api(strategy, staff_api):
    user = User.objects.create_user("staff", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_strategypreference"))
    client = APIClient()
    client.force_authenticate(user)
    answer = client.post("/preferences/max_daily_loss", {"strategy": "ALSAPRO 1", "value": 250}, format="json")
    assert answer.status_code == 200 and answer.json()["max_daily_loss"] == "250"
    bad = client.post("/preferences/max_open_positions", {"strategy": "ALSAPRO 1", "value": 0}, format="json")
    assert bad.status_code == 400 and "max_open_positions" in bad.json()
    assert client.post("/preferences/max_daily_loss", {"strategy": "ALSAPRO 1", "value": None}, format="json").json()[
        "max_daily_loss"] is None


def test_it_flags_a_missed_alert_on_the_execution_and_syncs_when_asked(strategy):
    execute(strategy)  # long 0.111; TradingView's exit alert for it never arrives
    now = timezone.now()
    signal = Signal.objects.create(action="buy", symbol="BTCUSDT", strategy=strategy.name, preference=strategy,
                                   price=D("45000"), prev_market_position="flat", status=Signal.Status.QUEUED,
                                   received_at=now, queued_at=now, idempotency_key="missed-1")
    execute_signal(signal.pk)
    flagged = Execution.objects.get(signal=signal)
    assert "says the strategy was flat before this order, but our position is long 0.111" in flagged.alert_mismatch
    assert flagged.status == Execution.Status.FILLED  # the delta, as before: an add
    strategy.sync_to_alert = True
    strategy.save()
    signal = Signal.objects.create(action="buy", symbol="BTCUSDT", strategy=strategy.name, preference=strategy,
                                   price=D("45000"), prev_market_position="flat", status=Signal.Status.QUEUED,
                                   received_at=now, queued_at=now, idempotency_key="missed-2")
    execute_signal(signal.pk)
    synced = Execution.objects.get(signal=signal)
    assert synced.status == Execution.Status.NOTHING and synced.alert_mismatch
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.222")  # no third buy


def test_sync_to_alert_trades_to_the_position_the_alert_states_through_the_webhook(strategy, committed_client):
    """A missed entry: TradingView's next buy of 0.01 says the strategy is now long 0.03 and was long
    before; we are flat. With sync_to_alert and signal sizing, the order buys 0.03, not 0.01."""
    import json

    from trading.webhook import RATE_LIMITER

    RATE_LIMITER.reset()
    strategy.sync_to_alert, strategy.sizing = True, "signal"
    strategy.save()
    body = {"action": "buy", "symbol": "BTCUSDT", "price": 45000, "quantity": "0.01", "strategy": strategy.name,
            "passphrase": "test-passphrase-0123456789", "time": timezone.now().isoformat(), "prev_market_position": "long",
            "market_position": "long", "position_size": "0.03"}
    answer = committed_client.post("/webhook", json.dumps(body), content_type="application/json")
    assert answer.status_code == 202, answer.content
    run_queued_jobs()
    execution = Execution.objects.get(signal_id=answer.json()["signal_id"])
    assert execution.status == Execution.Status.FILLED and "sync to alert" in execution.reason
    assert "the alert says the strategy was long before this order, but our position is flat" in execution.alert_mismatch
    assert Position.objects.get(symbol="BTCUSDT").amount == D("0.03")


def test_it_tells_the_channels_of_a_halt_a_daily_limit_and_a_missed_alert(strategy, staff_api):
    from notifications.models import Channel, Notification

    Channel.objects.create(name="ops", kind="email", email_to="ops@example.com", on_fill=False, on_refusal=False)
    staff_api.post("/halt", {"halted": True, "reason": "exchange incident"}, format="json")
    staff_api.post("/halt", {"halted": False}, format="json")
    strategy.max_daily_loss = D("50")
    strategy.save()
    execute(strategy)
    execute(strategy, "close", price="44000")
    execute(strategy)  # refused: the limit halts the strategy
    texts = list(Notification.objects.order_by("id").values_list("event_type", "text"))
    assert [kind for kind, _ in texts] == ["halt", "halt", "limit"]
    assert "Trading halted by ops: opening orders are refused (exchange incident)" in texts[0][1]
    assert "daily loss limit reached" in texts[2][1]


def test_it_takes_the_kill_switch_only_as_json(strategy, staff_api):
    staff_api.post("/halt", {"halted": True}, format="json")
    # From a form, a missing boolean reads as false: that would resume trading by accident.
    assert staff_api.post("/halt", {"reason": "still looking"}, format="multipart").status_code == 415
    assert TradingHalt.current().halted is True
