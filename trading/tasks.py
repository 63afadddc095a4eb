"""django-q2 tasks: they take ids, load, and call a service. Each is safe to run twice."""

import time
from functools import partial

from trading.concurrency import ORDER_THREADS
from trading.exchange import get_exchange
from trading.lanes import Lane
from trading.models import Signal
from trading.protection import position_settle
from trading.recovery import heartbeat, heartbeats_prune, orders_resolve, pending_resume
from trading.services import symbol_drain


def execute_signal(signal_id: int, symbol: str | None = None) -> str:
    """Execute a queued signal, and any older ones of its symbol first. A job that carries the
    symbol saves the worker a query; one queued with the id alone (older jobs) has it looked up."""
    if symbol is None:
        symbol = Signal.objects.filter(pk=signal_id).values_list("symbol", flat=True).first()
        if symbol is None:
            return f"signal {signal_id} does not exist"
    if ORDER_THREADS.started:  # in a qcluster worker: on one of its order threads (trading/concurrency.py)
        handed = ORDER_THREADS.submit(symbol, partial(symbol_drain, symbol=symbol))
        return f"{symbol}: handed to an order thread" if handed else f"{symbol}: its drain under way looks again"
    executed = symbol_drain(symbol=symbol)
    return f"{symbol}: executed {executed} signal(s)" if executed else f"{symbol}: lane busy or nothing pending"


def sweep() -> str:
    """Every minute, a backstop to the workers' recovery watch: prove the worker is alive (/health
    reads it), queue again signals whose task was lost, and resolve orders left `unknown`."""
    heartbeat()
    heartbeats_prune()
    requeued = pending_resume()
    resolved = orders_resolve()
    return f"heartbeat; re-queued {requeued}; resolved {resolved} order(s)"


SETTLE_PATIENCE = 10.0  # seconds to wait for a busy lane; its holder settles protection itself


def settle_protection(symbol: str) -> str:
    """After the exchange changed a position by itself (a stop triggered, a liquidation, a trade by
    hand): under the symbol's lane, cancel protective orders a flat position no longer needs."""
    deadline = time.monotonic() + SETTLE_PATIENCE
    while (lane := Lane.acquire(symbol)) is None:
        if time.monotonic() > deadline:
            return f"{symbol}: lane busy; its execution brings protection up to date"
        time.sleep(0.2)
    try:
        problems = position_settle(symbol, get_exchange())
    finally:
        lane.release()
    return f"{symbol}: protection settled" + (f" ({problems})" if problems else "")
