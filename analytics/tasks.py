"""Periodic jobs: the account snapshot (balances for sizing and the P&L history, positions
reconciled) and the import of the exchange's ledger."""

from django.utils import timezone

from analytics.ledger import ledger_import
from trading.exchange import get_exchange
from trading.upkeep import positions_reconcile, snapshot_take


def take_snapshot() -> str:
    exchange = get_exchange()
    read_started = timezone.now()
    snapshot = snapshot_take(exchange)
    changed = positions_reconcile(exchange, read_started)
    return f"equity {snapshot.equity} {snapshot.asset}; {changed} position(s) reconciled"


def import_ledger() -> str:
    """Every 5 minutes (migration analytics/0004): safe to run twice, the import skips what it holds."""
    imported = ledger_import(get_exchange())
    return f"{imported} ledger line(s) imported"


def import_ledger_after_fills(*symbols: str) -> str:
    """Queued by the user stream a moment after fills (analytics/follow.py): the same import, brought forward."""
    imported = ledger_import(get_exchange())
    return f"{imported} ledger line(s) imported after fills of {', '.join(symbols)}"


def replay_run(run_id: int) -> str:
    """Queued by a replay's request (analytics/replay_runs.py): safe to run twice, a finished run is left alone."""
    from analytics.replay_runs import replay_execute

    return replay_execute(run_id)
