"""Hands a stored signal to the worker. The only module that knows how jobs are queued."""

import logging
import uuid
from functools import cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.conf import Conf
from django_q.signals import pre_enqueue
from django_q.signing import SignedPackage
from django_q.tasks import async_task

EXECUTE_TASK = "trading.tasks.execute_signal"

logger = logging.getLogger(__name__)


@cache
def broker() -> Broker:
    # async_task opens a broker connection per call unless handed one: reuse one per process.
    return get_broker()


def broker_connect() -> None:
    """Open the broker's connection now (a Redis round trip; nothing with the ORM broker)."""
    broker().ping()


def uses_orm_broker() -> bool:
    return bool(settings.Q_CLUSTER.get("orm"))


def enqueue_joins_transaction() -> bool:
    """Whether enqueue_execution writes inside the caller's transaction (the ORM broker's job row),
    so the caller needs one; with Redis the job is sent after the commit instead."""
    return uses_orm_broker()


def enqueue_execution(signal_id: int, symbol: str | None = None) -> None:
    """Queue execution of a stored signal; call it inside the transaction that stored the signal.
    Given the signal's symbol, the worker need not look it up.

    With the ORM broker the job row joins that transaction: signal and job commit together or not
    at all. Redis cannot join it, so the job is queued right after the commit; should Redis be
    unreachable then, the signal is stored and `queued` all the same, and the workers' recovery
    watch (trading/recovery.py) queues it within seconds of Redis answering again.
    """
    if uses_orm_broker():
        _send(signal_id, symbol)
    else:
        transaction.on_commit(lambda: _send_or_leave_to_recovery(signal_id, symbol))


def enqueue_again(signal_id: int) -> None:
    """Queue a stored signal whose task was lost (recovery); raises if the broker is unreachable."""
    _send(signal_id)


def enqueue_task(func: str, *args: object) -> None:
    """Queue a follow-up job (by dotted path) that loses nothing if it is lost: the periodic jobs
    repeat what it does. Logged, not raised, when the broker is unreachable."""
    try:
        async_task(func, *args, broker=broker())
    except Exception as error:
        logger.error("%s%s could not be queued (%s: %s); the periodic jobs will cover it",
                     func, args, type(error).__name__, error)


def _send_or_leave_to_recovery(signal_id: int, symbol: str | None) -> None:
    try:
        _send(signal_id, symbol)
    except Exception as error:  # the signal is committed: answering 5xx would make TradingView resend it
        logger.error("signal %s is stored but could not be queued (%s: %s); recovery will queue it",
                     signal_id, type(error).__name__, error)


def _send(signal_id: int, symbol: str | None = None) -> None:
    """The package async_task would build, built directly: async_task also makes a humanhash name
    (ours is given), formats two log lines whatever the log level and reads its options on every
    call: ~80 µs of CPU a job instead of 100-140 (docs/BENCHMARKS.md). The same keys and values,
    signed the same way: a worker cannot tell the two apart (tests/trading/test_queue_package.py)."""
    if Conf.SYNC or Conf.CACHED:  # run in-process or through the cache: django-q2's own path
        async_task(EXECUTE_TASK, *_arguments(signal_id, symbol), broker=broker(), task_name=f"signal-{signal_id}",
                   save=False)
        return
    task = execution_task(signal_id, symbol)
    pre_enqueue.send(sender="django_q", task=task)
    broker().enqueue(SignedPackage.dumps(task))


def execution_task(signal_id: int, symbol: str | None = None) -> dict:
    """django_q.tasks.async_task's package for execute_signal(signal_id[, symbol], save=False), key for
    key. `save` False: a task that succeeded leaves no Success row. The signal's Execution is its
    record; the row cost the cluster's monitor a SELECT and an INSERT of the pickled package per signal,
    ~9 % of the workers' CPU in a bar-close burst (docs/BENCHMARKS.md). A failed task is still kept."""
    task: dict = {"id": uuid.uuid4().hex, "name": f"signal-{signal_id}", "func": EXECUTE_TASK,
                  "args": _arguments(signal_id, symbol), "save": False}
    if Conf.ACK_FAILURES:
        task["ack_failure"] = Conf.ACK_FAILURES
    task["kwargs"] = {}
    task["started"] = timezone.now()
    return task


def _arguments(signal_id: int, symbol: str | None) -> tuple[int] | tuple[int, str]:
    return (signal_id, symbol) if symbol else (signal_id,)
