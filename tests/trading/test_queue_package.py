"""trading.queue builds execute_signal's job package itself (cheaper than async_task): the worker must
receive the very package django-q2's async_task would have queued."""

import pytest
from django.utils import timezone
from django_q.models import Failure, Success
from django_q.monitor import save_task
from django_q.tasks import async_task

from tests.support.queue import clear_queue, queued_jobs
from trading.queue import EXECUTE_TASK, _send, broker


@pytest.mark.django_db
@pytest.mark.parametrize("symbol", ["BTCUSDT", None], ids=["with its symbol", "id only (recovery)"])
def test_the_package_is_the_one_async_task_builds(symbol):
    arguments = (41, symbol) if symbol else (41,)
    async_task(EXECUTE_TASK, *arguments, broker=broker(), task_name="signal-41", save=False)
    [theirs] = queued_jobs()
    clear_queue()
    _send(41, symbol)
    [ours] = queued_jobs()
    assert list(ours) == list(theirs)  # the same keys, in the same order
    assert {k: v for k, v in ours.items() if k not in ("id", "started")} == {
        k: v for k, v in theirs.items() if k not in ("id", "started")
    }
    assert len(ours["id"]) == len(theirs["id"]) == 32 and ours["id"] != theirs["id"]
    assert ours["started"] >= theirs["started"]
    assert (ours["func"], ours["args"], ours["name"]) == ("trading.tasks.execute_signal", arguments, "signal-41")
    assert ours["save"] is False  # the Execution is the record: no Success row per signal


@pytest.mark.django_db
@pytest.mark.parametrize("success", [True, False], ids=["succeeded: no row", "failed: kept"])
def test_the_cluster_keeps_a_signal_task_only_when_it_failed(success):
    """django-q2's monitor, given the finished package: the Execution records a signal's success; a
    Success row per signal cost a SELECT and an INSERT. A failure is still kept for staff to see."""
    _send(41, "BTCUSDT")
    [package] = queued_jobs()
    finished = {**package, "success": success, "result": None if success else "Traceback …",
                "stopped": timezone.now(), "sync": True}  # sync: keeps the test's connection open
    save_task(finished, broker())
    assert Success.objects.count() == 0
    assert Failure.objects.count() == (0 if success else 1)
