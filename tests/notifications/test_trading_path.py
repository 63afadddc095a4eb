"""A chat service that hangs never delays trading: the execution only writes rows and queues a job,
and the worker's deliver job hands the request to a sender thread and returns."""

import time

import pytest

from notifications.models import Notification
from tests.support.queue import queued_jobs, run_queued_jobs
from tests.trading.test_execution import queued
from trading.models import Execution
from trading.tasks import execute_signal


def eventually(check, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)
    return result


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_it_does_not_delay_the_next_signals_order_while_a_receiver_hangs(strategy, discord, receiver, settings):
    settings.NOTIFY_SEND_IN_THREAD = True
    settings.NOTIFY_TIMEOUT = 2.0
    receiver.answer(204, b"", delay=5)
    first = queued(strategy)
    assert timed(lambda: execute_signal(first.pk)) < 1
    assert [job["func"] for job in queued_jobs()] == ["notifications.tasks.deliver"]

    assert timed(run_queued_jobs) < 0.5  # the worker's job: claim, hand to a sender thread, return
    eventually(lambda: receiver.requests)  # the receiver now holds the request

    second = queued(strategy, "close", price="45100")
    assert timed(lambda: execute_signal(second.pk)) < 1
    assert Execution.objects.get(signal=second).status == "filled"
    notification = Notification.objects.get(execution__signal=first)
    assert notification.status == "sending"  # still hanging while the order went out

    # The hung attempt ends at the timeout and is recorded for a retry.
    eventually(lambda: Notification.objects.filter(pk=notification.pk, status="pending").exists())
    notification.refresh_from_db()
    assert (notification.attempts, notification.last_error) == (1, "no answer within 2 s")


@pytest.mark.django_db
def test_it_queues_the_job_when_the_execution_commits_and_sends_nothing_on_its_path(
        strategy, discord, receiver, django_capture_on_commit_callbacks):
    receiver.answer(204, b"", delay=5)
    signal = queued(strategy)
    with django_capture_on_commit_callbacks(execute=True):
        assert timed(lambda: execute_signal(signal.pk)) < 1
    assert receiver.requests == []
    [job] = queued_jobs()
    notification = Notification.objects.get()
    assert (job["func"], job["args"], notification.status) == ("notifications.tasks.deliver", (notification.pk,), "pending")
