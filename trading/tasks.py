"""django-q2 tasks: they take ids, load, and call a service. Each is safe to run twice."""

import socket

from django.utils import timezone

from trading.models import Signal, WorkerHeartbeat
from trading.services import symbol_drain
from trading.upkeep import stuck_signals_requeue


def execute_signal(signal_id: int) -> str:
    """Execute a queued signal, and any older ones of its symbol first."""
    symbol = Signal.objects.filter(pk=signal_id).values_list("symbol", flat=True).first()
    if symbol is None:
        return f"signal {signal_id} does not exist"
    executed = symbol_drain(symbol=symbol)
    return f"{symbol}: executed {executed} signal(s)" if executed else f"{symbol}: lane busy or nothing pending"


def sweep() -> str:
    """Every minute: prove the worker is alive (/health reads it) and re-queue stuck signals."""
    WorkerHeartbeat.objects.update_or_create(name="worker", defaults={"beat_at": timezone.now(), "host": socket.gethostname()})
    requeued = stuck_signals_requeue()
    return f"heartbeat; re-queued {requeued}" if requeued else "heartbeat"
