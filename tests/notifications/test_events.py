"""Which channels hear of what: event types from an execution's outcome, each channel's toggles and
strategy scope; what the message says; and that telling never fails its caller."""

import itertools
import logging
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from notifications import events
from notifications.events import execution_finished, notify
from notifications.models import Channel, Notification
from preferences.models import StrategyPreference
from tests.support.queue import queued_jobs
from tests.trading.test_execution import queued
from trading.models import Execution, Signal
from trading.tasks import execute_signal

pytestmark = pytest.mark.django_db

_keys = itertools.count()


def finished(strategy, status, *, reason="", action="buy", symbol="BTCUSDT") -> Execution:
    signal = Signal.objects.create(action=action, symbol=symbol, strategy=strategy.name if strategy else "gone",
                                   preference=strategy, status="done", idempotency_key=f"events:{next(_keys)}")
    return Execution.objects.create(signal=signal, strategy=signal.strategy, symbol=symbol, exchange="paper",
                                    received_at=timezone.now(), status=status, reason=reason)


def told(execution) -> list[tuple[str, str]]:
    return sorted(Notification.objects.filter(execution=execution).values_list("channel__name", "event_type"))


@pytest.fixture
def everything(strategy) -> Channel:
    return Channel.objects.create(name="all", kind="email", email_to="desk@example.com")


@pytest.mark.parametrize("status, event_type", [
    ("filled", "fill"), ("partial", "fill"), ("rejected", "refusal"), ("skipped", "refusal"), ("failed", "failure"),
    ("nothing", None), ("running", None), ("unheard-of", None),
])
def test_it_tells_the_event_of_each_outcome(strategy, everything, status, event_type):
    execution = finished(strategy, status)
    execution_finished(execution.pk, status)
    assert told(execution) == ([("all", event_type)] if event_type else [])


def test_it_respects_each_channels_event_toggles(strategy, everything):
    Channel.objects.create(name="fills only", kind="email", email_to="a@example.com", on_refusal=False, on_failure=False)
    Channel.objects.create(name="no fills", kind="email", email_to="b@example.com", on_fill=False)
    Channel.objects.create(name="off", kind="email", email_to="c@example.com", enabled=False)
    fill, refusal, failure = (finished(strategy, status) for status in ("filled", "rejected", "failed"))
    for execution in (fill, refusal, failure):
        execution_finished(execution.pk, execution.status)
    assert told(fill) == [("all", "fill"), ("fills only", "fill")]
    assert told(refusal) == [("all", "refusal"), ("no fills", "refusal")]
    assert told(failure) == [("all", "failure"), ("no fills", "failure")]


def test_it_tells_a_strategys_channel_of_that_strategy_only(strategy, everything):
    other = StrategyPreference.objects.create(name="SCALPER", products=["ETHUSDT"])
    Channel.objects.create(name="alsapro", kind="email", email_to="a@example.com", strategy=strategy)
    Channel.objects.create(name="scalper", kind="email", email_to="s@example.com", strategy=other)
    mine, theirs, orphan = finished(strategy, "filled"), finished(other, "filled"), finished(None, "filled")
    for execution in (mine, theirs, orphan):
        execution_finished(execution.pk, "filled")
    assert told(mine) == [("all", "fill"), ("alsapro", "fill")]
    assert told(theirs) == [("all", "fill"), ("scalper", "fill")]
    assert told(orphan) == [("all", "fill")]  # a strategy since deleted: the global channels only


def test_it_tells_account_wide_events_to_every_channel_and_a_strategys_to_its_own(strategy, everything):
    other = StrategyPreference.objects.create(name="SCALPER", products=["ETHUSDT"])
    Channel.objects.create(name="alsapro", kind="email", email_to="a@example.com", strategy=strategy)
    Channel.objects.create(name="no halts", kind="email", email_to="n@example.com", on_halt=False)
    assert notify("halt", "trading halted by staff") == 2
    assert notify("limit", "SCALPER: daily loss limit reached", strategy=other) == 2
    rows = sorted(Notification.objects.values_list("event_type", "channel__name"))
    assert rows == [("halt", "all"), ("halt", "alsapro"), ("limit", "all"), ("limit", "no halts")]


def test_it_tells_an_execution_recorded_twice_once(strategy, everything):
    execution = finished(strategy, "filled")
    execution_finished(execution.pk, "filled")
    execution_finished(execution.pk, "filled")
    assert Notification.objects.count() == 1


def test_it_queues_delivery_only_once_the_execution_is_committed(strategy, everything, django_capture_on_commit_callbacks):
    execution = finished(strategy, "failed")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        execution_finished(execution.pk, "failed")
        assert queued_jobs() == []
    assert len(callbacks) == 1
    [job] = queued_jobs()
    assert (job["func"], job["args"]) == ("notifications.tasks.deliver", (Notification.objects.get().pk,))


def test_it_says_what_happened_with_quantity_price_reason_and_link(strategy, everything, settings):
    settings.NOTIFY_BASE_URL = "https://trade.example.com"
    signal = queued(strategy)
    execute_signal(signal.pk)
    execution = Execution.objects.get(signal=signal)
    assert Notification.objects.get(execution=execution).text == "\n".join([
        "ALSAPRO 1 · BTCUSDT buy: filled",
        "open buy 0.111 at 45,000",
        execution.reason,
        f"https://trade.example.com/ui/executions/{execution.pk}/",
    ])


def test_it_says_why_an_execution_was_refused(strategy, everything):
    signal = queued(strategy, ago=45)  # older than EXECUTION_MAX_DELAY: skipped
    execute_signal(signal.pk)
    execution = Execution.objects.get(signal=signal)
    text = Notification.objects.get(execution=execution).text
    assert text.splitlines()[0] == "ALSAPRO 1 · BTCUSDT buy: skipped"
    assert "too late" in text and f"/ui/executions/{execution.pk}/" in text


def test_it_never_fails_the_caller(strategy, everything, monkeypatch, caplog):
    execution = finished(strategy, "filled")

    def broken(*args):
        raise RuntimeError("template exploded")

    monkeypatch.setattr(events, "execution_text", broken)
    with caplog.at_level(logging.ERROR, logger="notifications.events"), transaction.atomic():
        execution_finished(execution.pk, "filled")
        execution_finished(10**9, "failed")  # no such execution
        assert Execution.objects.filter(pk=execution.pk).exists()  # the caller's transaction still works
    assert notify("no-such-event", "text") == 0
    assert Notification.objects.count() == 0
    assert "template exploded" in caplog.text


def test_it_costs_one_query_when_no_channel_listens(strategy, django_assert_num_queries):
    execution = finished(strategy, "filled")
    Channel.objects.create(name="no fills", kind="email", email_to="n@example.com", on_fill=False)
    with django_assert_num_queries(1):
        execution_finished(execution.pk, "filled")


def test_it_notifies_quantity_and_price_of_every_filled_leg_of_a_reversal(strategy, everything):
    from trading.models import PaperPosition, Position
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("-0.2"), entry_price=Decimal("44000"))
    PaperPosition.objects.create(symbol="BTCUSDT", amount=Decimal("-0.2"), entry_price=Decimal("44000"), leverage=5)
    signal = queued(strategy)
    execute_signal(signal.pk)
    lines = Notification.objects.get().text.splitlines()
    assert lines[1].startswith("close buy 0.2 at 45,000") and lines[2].startswith("open buy ")
