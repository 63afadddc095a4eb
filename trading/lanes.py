"""Per-symbol lanes: a leased row per symbol, so one worker at a time executes a symbol's signals.

The lease is taken with a conditional UPDATE (free, or its holder's lease lapsed) and renewed before
every exchange request; a holder that dies frees the lane when its lease runs out.
"""

from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from trading.models import SymbolLane

LEASE = timedelta(seconds=20)


def lane_acquire(*, symbol: str, holder: str) -> bool:
    now = timezone.now()
    SymbolLane.objects.get_or_create(symbol=symbol)
    taken = (
        SymbolLane.objects.filter(symbol=symbol)
        .filter(Q(holder="") | Q(lease_until__lt=now))
        .update(holder=holder, lease_until=now + LEASE)
    )
    return taken == 1


def lane_renew(*, symbol: str, holder: str) -> None:
    SymbolLane.objects.filter(symbol=symbol, holder=holder).update(lease_until=timezone.now() + LEASE)


def lane_release(*, symbol: str, holder: str) -> None:
    SymbolLane.objects.filter(symbol=symbol, holder=holder).update(holder="", lease_until=None)
