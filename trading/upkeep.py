"""Periodic upkeep shared by the worker's scheduled jobs: account snapshots and position
reconciliation. (Lost signals are found again by trading/recovery.py.)"""

from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from analytics.models import AccountSnapshot
from trading.exchange import Balance, Exchange
from trading.lanes import HOST
from trading.models import Position, Signal, WorkerHeartbeat

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


RECONCILIATION = "reconciliation"  # the WorkerHeartbeat row where the last reconciliation says what it found


def positions_reconcile(exchange: Exchange, read_started: datetime) -> int:
    """Bring the Position mirror in line with the exchange (a manual trade, a liquidation). A row a
    fill touched after the exchange was read is newer than what was read, so it is left alone.
    Where our amount differed (drift: something reached the exchange but not our records), the
    last reconciliation's row says so, for /health."""
    seen: set[tuple[str, str]] = set()
    changed = 0
    drift: list[str] = []
    positions = exchange.get_positions()
    # Fills up to these times are in what was read: the stream then records them without moving the
    # position again (recording._position_apply). A position's own last change, when the exchange says
    # it; a position read as flat was flat when the read ended.
    read_finished = timezone.now()
    for info in positions:
        seen.add((info.symbol, info.position_side))
        stated: dict[str, object] = {
            "amount": info.amount, "entry_price": info.entry_price, "unrealized_pnl": info.unrealized_pnl,
            "mark_price": info.mark_price, "reconciled_at": info.updated_at or read_started,
        }
        if info.leverage is not None:  # in force at the exchange, when the adapter read it
            stated.update(leverage=info.leverage, margin_type=info.margin_type)
        position, created = Position.objects.get_or_create(symbol=info.symbol, position_side=info.position_side,
                                                           defaults=stated)
        if created:  # a position we had never seen (opened by hand, or before this database)
            drift.append(_drift(info.symbol, info.position_side, Decimal(0), info.amount))
            changed += 1
            continue
        updated = Position.objects.filter(pk=position.pk, updated_at__lt=read_started).update(
            **stated, updated_at=timezone.now())
        if updated and position.amount != info.amount:
            drift.append(_drift(info.symbol, info.position_side, position.amount, info.amount))
        changed += updated
    for position in Position.objects.exclude(amount=0):
        if (position.symbol, position.position_side) not in seen:
            updated = Position.objects.filter(pk=position.pk, updated_at__lt=read_started).update(
                amount=0, entry_price=0, unrealized_pnl=0, reconciled_at=read_finished, updated_at=timezone.now()
            )
            if updated:
                drift.append(_drift(position.symbol, position.position_side, position.amount, Decimal(0)))
            changed += updated
    WorkerHeartbeat.objects.update_or_create(
        name=RECONCILIATION, defaults={"beat_at": timezone.now(), "host": HOST, "detail": "; ".join(drift)[:255]}
    )
    return changed


def _drift(symbol: str, side: str, ours: Decimal, theirs: Decimal) -> str:
    where = symbol if side == "BOTH" else f"{symbol} {side}"
    return f"{where}: ours {ours.normalize():f}, exchange {theirs.normalize():f}"


def last_reconciliation() -> tuple[datetime, list[str]] | None:
    """When positions were last reconciled, and the drift it corrected (empty: none)."""
    row = WorkerHeartbeat.objects.filter(name=RECONCILIATION).values_list("beat_at", "detail").first()
    if row is None:
        return None
    return row[0], [part for part in row[1].split("; ") if part]
