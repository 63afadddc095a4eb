"""Periodic account snapshot: balances for sizing and the P&L history, positions reconciled."""

from django.utils import timezone

from trading.exchange import get_exchange
from trading.upkeep import positions_reconcile, snapshot_take


def take_snapshot() -> str:
    exchange = get_exchange()
    read_started = timezone.now()
    snapshot = snapshot_take(exchange)
    changed = positions_reconcile(exchange, read_started)
    return f"equity {snapshot.equity} {snapshot.asset}; {changed} position(s) reconciled"
