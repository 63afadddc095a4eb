"""trading.queue builds execute_signal's job package itself (cheaper than async_task): the worker must
receive the very package django-q2's async_task would have queued."""

import pytest
from django_q.tasks import async_task

from tests.support.queue import clear_queue, queued_jobs
from trading.queue import EXECUTE_TASK, _send, broker


@pytest.mark.django_db
@pytest.mark.parametrize("symbol", ["BTCUSDT", None], ids=["with its symbol", "id only (recovery)"])
def test_the_package_is_the_one_async_task_builds(symbol):
    arguments = (41, symbol) if symbol else (41,)
    async_task(EXECUTE_TASK, *arguments, broker=broker(), task_name="signal-41")
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
