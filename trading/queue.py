"""Hands a stored signal to the worker. The only module that knows how jobs are queued."""

from functools import cache

from django.conf import settings
from django.db import transaction
from django_q.brokers import Broker, get_broker
from django_q.tasks import async_task

EXECUTE_TASK = "trading.tasks.execute_signal"


@cache
def broker() -> Broker:
    # async_task opens a broker connection per call unless handed one: reuse one per process.
    return get_broker()


def uses_orm_broker() -> bool:
    return bool(settings.Q_CLUSTER.get("orm"))


def enqueue_execution(signal_id: int) -> None:
    """Queue execution of a stored signal; call it inside the transaction that stored the signal.

    With the ORM broker the job row joins that transaction: signal and job commit together or not
    at all. Redis cannot join it, so the job is queued right after the commit; should that fail,
    the signal stays `queued` and the sweeper (trading.tasks.sweep) queues it again.
    """
    if uses_orm_broker():
        _send(signal_id)
    else:
        transaction.on_commit(lambda: _send(signal_id))


def _send(signal_id: int) -> None:
    async_task(EXECUTE_TASK, signal_id, broker=broker(), task_name=f"signal-{signal_id}")
