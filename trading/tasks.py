"""django-q2 tasks: they take ids, load, and call a service. Each is safe to run twice."""

from trading.models import Signal
from trading.recovery import heartbeat, orders_resolve, pending_resume
from trading.services import symbol_drain


def execute_signal(signal_id: int) -> str:
    """Execute a queued signal, and any older ones of its symbol first."""
    symbol = Signal.objects.filter(pk=signal_id).values_list("symbol", flat=True).first()
    if symbol is None:
        return f"signal {signal_id} does not exist"
    executed = symbol_drain(symbol=symbol)
    return f"{symbol}: executed {executed} signal(s)" if executed else f"{symbol}: lane busy or nothing pending"


def sweep() -> str:
    """Every minute, a backstop to the workers' recovery watch: prove the worker is alive (/health
    reads it), queue again signals whose task was lost, and resolve orders left `unknown`."""
    heartbeat()
    requeued = pending_resume()
    resolved = orders_resolve()
    return f"heartbeat; re-queued {requeued}; resolved {resolved} order(s)"
