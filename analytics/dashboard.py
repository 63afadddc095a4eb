"""What the dashboard shows besides plain rows: whether its figures are fresh, the equity curve, and
the strategies whose opens are locked."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Max, Q

from alsatrade.health import HEARTBEAT_MAX_AGE
from analytics.models import AccountSnapshot
from preferences.models import StrategyPreference
from trading.models import WorkerHeartbeat
from trading.recovery import HEARTBEAT_PREFIX, worker_alive_at
from trading.risk import Lock, strategy_lock

# The worker snapshots the account every minute: three missed snapshots mean the figures on the page
# no longer describe the account.
SNAPSHOT_MAX_AGE = timedelta(minutes=3)
# The last day at one snapshot a minute: longer history is on /ui/account/ (serialising a week
# of points on every dashboard load cost ~65 ms; docs/BENCHMARKS.md, Pages).
EQUITY_POINTS = 24 * 60


@dataclass(frozen=True)
class Freshness:
    snapshot_at: datetime | None
    heartbeat_at: datetime | None
    stale: bool
    worker_down: bool


def freshness(snapshot: AccountSnapshot | None, *, now: datetime) -> Freshness:
    """Stale: the newest snapshot is older than SNAPSHOT_MAX_AGE (none at all is an empty install,
    said by the empty state instead). Worker down: its heartbeat is missing or older than /health allows."""
    alive_at = worker_alive_at(max_age=HEARTBEAT_MAX_AGE)
    last_beat = alive_at or WorkerHeartbeat.objects.filter(name__startswith=HEARTBEAT_PREFIX).aggregate(
        last=Max("beat_at"))["last"]
    snapshot_at = snapshot.taken_at if snapshot else None
    return Freshness(
        snapshot_at=snapshot_at,
        heartbeat_at=last_beat,
        stale=snapshot_at is not None and now - snapshot_at > SNAPSHOT_MAX_AGE,
        worker_down=alive_at is None,
    )


def equity_points(account: str) -> list[dict[str, object]]:
    """The latest EQUITY_POINTS snapshots, oldest first, as the chart reads them: one point per
    second (the chart refuses two points at the same time); the template's chart_points writes them."""
    rows = AccountSnapshot.objects.filter(account=account).values_list("taken_at", "equity")[:EQUITY_POINTS]
    points: dict[int, Decimal] = {}
    for taken_at, equity in reversed(list(rows)):
        points[int(taken_at.timestamp())] = equity
    return [{"time": second, "value": value} for second, value in points.items()]


@dataclass(frozen=True)
class StrategyLock:
    strategy: StrategyPreference
    lock: Lock


def strategy_locks(now: datetime) -> list[StrategyLock]:
    """Each enabled strategy whose opens a protection locks now. Only strategies with a protection
    set, or a stored lock, are asked (risk.strategy_lock: a query per protection set)."""
    protected = (
        Q(halted_until__gt=now) | Q(drawdown_locked_at__isnull=False) | Q(cooldown_after_loss__isnull=False)
        | Q(max_trades_per_day__isnull=False) | Q(loss_streak_limit__isnull=False) | ~Q(trading_hours="")
    )
    locks = []
    for strategy in StrategyPreference.objects.filter(protected, enabled=True):
        lock = strategy_lock(strategy, now=now)
        if lock is not None:
            locks.append(StrategyLock(strategy, lock))
    return locks
