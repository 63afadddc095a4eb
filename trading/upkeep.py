"""Periodic upkeep shared by the worker's scheduled jobs: account snapshots, position
reconciliation, and re-queueing signals a lost task or a dead worker left behind."""

from datetime import datetime, timedelta

from django.utils import timezone

from analytics.models import AccountSnapshot
from trading.exchange import Exchange
from trading.models import Position, Signal, SymbolLane

PENDING_SIGNALS = (Signal.Status.QUEUED, Signal.Status.EXECUTING)


def snapshot_take(exchange: Exchange, balance=None) -> AccountSnapshot:
    balance = balance or exchange.get_balance()
    return AccountSnapshot.objects.create(
        taken_at=timezone.now(),
        exchange=exchange.name,
        asset=balance.asset,
        wallet_balance=balance.wallet_balance,
        available_balance=balance.available_balance,
        equity=balance.equity,
        unrealized_pnl=balance.unrealized_pnl,
    )


def positions_reconcile(exchange: Exchange, read_started: datetime) -> int:
    """Bring the Position mirror in line with the exchange (a manual trade, a liquidation). A row a
    fill touched after the exchange was read is newer than what was read, so it is left alone."""
    seen = set()
    changed = 0
    for info in exchange.get_positions():
        seen.add((info.symbol, info.position_side))
        position, _ = Position.objects.get_or_create(symbol=info.symbol, position_side=info.position_side)
        changed += Position.objects.filter(pk=position.pk, updated_at__lt=read_started).update(
            amount=info.amount, entry_price=info.entry_price, unrealized_pnl=info.unrealized_pnl,
            mark_price=info.mark_price, updated_at=timezone.now(),
        )
    for position in Position.objects.exclude(amount=0):
        if (position.symbol, position.position_side) not in seen:
            changed += Position.objects.filter(pk=position.pk, updated_at__lt=read_started).update(
                amount=0, entry_price=0, unrealized_pnl=0, updated_at=timezone.now()
            )
    return changed


def stuck_signals_requeue(*, older_than: timedelta = timedelta(seconds=10)) -> list[int]:
    """Queue again one pending signal per symbol whose lane is free: a lost task (the Redis broker
    drops in-flight tasks of a killed worker) or a crashed holder. Safe: execution claims."""
    from trading.queue import enqueue_execution

    now = timezone.now()
    busy = set(SymbolLane.objects.filter(lease_until__gte=now).exclude(holder="").values_list("symbol", flat=True))
    pending = (
        Signal.objects.filter(status__in=PENDING_SIGNALS, received_at__lt=now - older_than)
        .exclude(symbol__in=busy)
        .order_by("symbol", "received_at", "id")
        .values_list("symbol", "id")
    )
    first_by_symbol: dict[str, int] = {}
    for symbol, signal_id in pending:
        first_by_symbol.setdefault(symbol, signal_id)
    for signal_id in first_by_symbol.values():
        enqueue_execution(signal_id)
    return list(first_by_symbol.values())
