"""Periodic upkeep shared by the worker's scheduled jobs: account snapshots and position
reconciliation. (Lost signals are found again by trading/recovery.py.)"""

from datetime import datetime

from django.utils import timezone

from analytics.models import AccountSnapshot
from trading.exchange import Balance, Exchange
from trading.models import Position, Signal

PENDING_SIGNALS = (Signal.Status.QUEUED, Signal.Status.EXECUTING)


def snapshot_take(exchange: Exchange, balance: Balance | None = None) -> AccountSnapshot:
    balance = balance or exchange.get_balance()
    return AccountSnapshot.objects.create(
        taken_at=timezone.now(),
        exchange=exchange.name,
        account=exchange.account_id,
        asset=balance.asset,
        wallet_balance=balance.wallet_balance,
        available_balance=balance.available_balance,
        equity=balance.equity,
        unrealized_pnl=balance.unrealized_pnl,
    )


def positions_reconcile(exchange: Exchange, read_started: datetime) -> int:
    """Bring the Position mirror in line with the exchange (a manual trade, a liquidation). A row a
    fill touched after the exchange was read is newer than what was read, so it is left alone."""
    seen: set[tuple[str, str]] = set()
    changed = 0
    for info in exchange.get_positions():
        seen.add((info.symbol, info.position_side))
        stated = {"amount": info.amount, "entry_price": info.entry_price, "unrealized_pnl": info.unrealized_pnl,
                  "mark_price": info.mark_price}
        position, created = Position.objects.get_or_create(symbol=info.symbol, position_side=info.position_side,
                                                           defaults=stated)
        if created:  # a position we had never seen (opened by hand, or before this database)
            changed += 1
            continue
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
