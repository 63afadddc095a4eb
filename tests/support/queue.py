"""Read and run the jobs queued on whichever broker the settings chose (ORM or Redis)."""

from django.utils.module_loading import import_string
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from trading.queue import broker, uses_orm_broker


def queued_jobs() -> list[dict]:
    """Every job waiting in the queue, decoded: {'func': ..., 'args': ..., ...}."""
    if uses_orm_broker():
        return [SignedPackage.loads(row.payload) for row in OrmQ.objects.order_by("id")]
    connection = broker().connection
    return [
        SignedPackage.loads(raw.decode() if isinstance(raw, bytes) else raw)
        for raw in connection.lrange(broker().list_key, 0, -1)
    ]


def clear_queue() -> None:
    if uses_orm_broker():
        OrmQ.objects.all().delete()
    else:
        broker().connection.delete(broker().list_key)


def run_queued_jobs() -> int:
    """Take every queued job and run it in this process, as a worker would; returns how many ran."""
    jobs = queued_jobs()
    clear_queue()
    for job in jobs:
        import_string(job["func"])(*job["args"], **job["kwargs"])
    return len(jobs)
