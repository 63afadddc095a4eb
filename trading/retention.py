"""Retention: what anyone on the internet can make us store is kept bounded, by a job every 10
minutes (scheduled by migration 0004). Authenticated signals and their executions are never pruned."""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django_q.models import Success

from trading.models import Signal

# Attempts refused before they authenticated: no passphrase checked, so sent by anyone. A 400 with
# an empty payload is a body that never parsed; a 400 after authentication keeps its payload. A stored
# 429 is a source blocked for wrong passphrases (a rate-limited attempt is not stored at all).
UNAUTHENTICATED = Q(status=Signal.Status.REJECTED) & (Q(http_status__in=(401, 403, 413, 429)) | Q(http_status=400, payload={}))
BATCH = 2000  # rows per DELETE: a long flood's backlog is cleared without one huge transaction


def prune() -> str:
    """The scheduled job (trading.retention.prune)."""
    refused = refused_prune(keep=settings.WEBHOOK_REFUSED_KEEP)
    successes = successes_prune(older_than=timedelta(days=settings.Q_SUCCESS_KEEP_DAYS))
    return f"deleted {refused} refused attempt(s) and {successes} job record(s)"


def refused_prune(*, keep: int) -> int:
    """Keep only the `keep` newest unauthenticated attempts; returns how many were deleted."""
    refused = Signal.objects.filter(UNAUTHENTICATED, execution__isnull=True).order_by("-id")
    boundary = list(refused.values_list("id", flat=True)[keep : keep + 1])
    if not boundary:
        return 0
    deleted = 0
    while batch := list(refused.filter(id__lte=boundary[0]).values_list("id", flat=True)[:BATCH]):
        deleted += Signal.objects.filter(id__in=batch).delete()[0]
    return deleted


def successes_prune(*, older_than: timedelta) -> int:
    """django-q2's records of successful jobs finished more than `older_than` ago."""
    deleted: int = Success.objects.filter(stopped__lt=timezone.now() - older_than).delete()[0]
    return deleted
