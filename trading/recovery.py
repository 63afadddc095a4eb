"""Finding lost work again within seconds: a killed worker's lanes and the signals behind them.

Each worker process runs a watch thread (started by django-q2's `post_spawn`, so a freshly started
worker looks at once). Every WATCH_INTERVAL it
- frees the lanes of dead holders on this host (trading/lanes.py: a gone pid is dead now; a holder on
  another host is dead once its lease lapses, LANE_LEASE after its last renewal), and
- queues the oldest pending signal of every symbol whose lane is free and that has waited longer
  than a task takes to start (a task lost with a killed worker, the Redis broker down at intake,
  or an ORM-broker task still locked by a dead cluster).
Queuing again is always safe: execution claims its lane and its signal.
"""

import logging
import os
import threading
import time
from datetime import datetime, timedelta

from django.db import close_old_connections, connection
from django.utils import timezone

from trading.lanes import HOST, busy_symbols, dead_lanes_free, process_gone
from trading.models import Order, Signal, WorkerHeartbeat
from trading.upkeep import PENDING_SIGNALS

logger = logging.getLogger(__name__)

WATCH_INTERVAL = 1.0  # seconds between looks
GRACE = timedelta(seconds=2)  # a signal younger than this still has its own task on the way
REQUEUE_SPACING = 2.0  # seconds before this process queues the same symbol again
UNRESOLVED = (Order.Status.SENT, Order.Status.UNKNOWN, Order.Status.NEW, Order.Status.PARTIALLY_FILLED)


def pending_resume(*, older_than: timedelta = GRACE, spacing: dict[str, float] | None = None) -> list[int]:
    """Queue one pending signal per symbol whose lane is free; the signal ids queued. With `spacing`
    (symbol → monotonic time last queued), a symbol queued lately is left to that task."""
    from trading.queue import enqueue_again

    dead_lanes_free()
    busy = busy_symbols()
    pending = (
        Signal.objects.filter(status__in=PENDING_SIGNALS, received_at__lt=timezone.now() - older_than)
        .exclude(symbol__in=busy)
        .order_by("symbol", "received_at", "id")
        .values_list("symbol", "id")
    )
    first_by_symbol: dict[str, int] = {}
    for symbol, signal_id in pending:
        first_by_symbol.setdefault(symbol, signal_id)
    queued = []
    for symbol, signal_id in first_by_symbol.items():
        if spacing is not None and time.monotonic() - spacing.get(symbol, -REQUEUE_SPACING) < REQUEUE_SPACING:
            continue
        enqueue_again(signal_id)
        queued.append(signal_id)
        if spacing is not None:
            spacing[symbol] = time.monotonic()
    if queued:
        logger.warning("queued again %d signal(s) whose task was lost: %s", len(queued), queued)
    return queued


HEARTBEAT_PREFIX = "worker:"
HEARTBEAT_KEPT = timedelta(days=1)  # rows of processes that stopped beating are pruned after this


def heartbeat() -> None:
    """This worker process is alive. One row per process (`worker:<pid>:<host>`), so a beat left by
    a process that has gone is told apart from a live one's (`worker_alive_at`)."""
    WorkerHeartbeat.objects.update_or_create(name=f"{HEARTBEAT_PREFIX}{os.getpid()}:{HOST}"[:50],
                                             defaults={"beat_at": timezone.now(), "host": HOST})


def worker_alive_at(*, max_age: timedelta) -> datetime | None:
    """When a worker that may still be alive last beat; None if none. A beat counts when it is
    younger than `max_age` and, for a process of this host, that process still runs: a beat left by
    a previous run never counts as this run's worker being alive."""
    beats = (WorkerHeartbeat.objects.filter(name__startswith=HEARTBEAT_PREFIX, beat_at__gte=timezone.now() - max_age)
             .order_by("-beat_at").values_list("name", "host", "beat_at"))
    for name, host, beat_at in beats[:100]:
        pid = name.removeprefix(HEARTBEAT_PREFIX).partition(":")[0]
        if host == HOST and pid.isdigit() and process_gone(int(pid)):
            continue
        return beat_at
    return None


def heartbeats_prune() -> int:
    return WorkerHeartbeat.objects.filter(name__startswith=HEARTBEAT_PREFIX,
                                          beat_at__lt=timezone.now() - HEARTBEAT_KEPT).delete()[0]


class _Watch:
    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.spacing: dict[str, float] = {}

    def start(self) -> None:
        if self.thread is None or not self.thread.is_alive():
            self.thread = threading.Thread(target=self._run, name="recovery-watch", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        beat_every, last_beat = 10.0, 0.0
        while True:
            try:
                pending_resume(spacing=self.spacing)
                if time.monotonic() - last_beat > beat_every:
                    heartbeat()
                    last_beat = time.monotonic()
            except Exception:  # the database or the broker is away: look again next time
                logger.warning("recovery watch: could not look for lost work", exc_info=True)
                connection.close()
            close_old_connections()
            time.sleep(WATCH_INTERVAL)


WATCH = _Watch()


def watch_start(**_: object) -> None:
    """django-q2's post_spawn receiver: every worker process watches from its first second."""
    WATCH.start()


def orders_resolve(*, limit: int = 50) -> int:
    """Orders whose outcome was still unknown when their execution ended: ask the exchange again and
    record its word (fills are folded into the position once, however often this runs). A limit entry
    still resting there (its cancel was never confirmed: trading/resting.py) is cancelled now: an
    entry left on the book could fill hours after its strategy stopped waiting for it."""
    from trading import recording
    from trading.exchange import ExchangeError, get_exchange

    exchange = get_exchange()
    unresolved = Order.objects.filter(status__in=UNRESOLVED, execution__finished_at__isnull=False).select_related("execution")
    resolved = 0
    for order in unresolved.order_by("id")[:limit]:
        try:
            result = exchange.get_order(order.symbol, order.client_order_id, stamp=order.sent_stamp)
        except ExchangeError:
            continue  # not conclusive yet, or the exchange is away: next sweep
        if result is None:
            recording.order_not_sent(order, "the request never took effect (confirmed after the execution ended)")
            continue
        if order.order_type == "LIMIT" and result.state.is_open:
            try:
                result = exchange.cancel_order(order.symbol, order.client_order_id) or result
            except ExchangeError:
                pass  # still resting: the next sweep cancels it
        order = recording.order_record(order, result)
        recording.execution_note_late(order)
        resolved += 1
    return resolved
