"""Telling people what happened: which channels hear of an event, and queuing their messages.

Called at the end of every execution (trading/recording.py) and by any feature with news to tell
(`notify`: halts, limit hits, protection alarms). Nothing here may fail or hold up the caller: the
rows are written in their own (save)point, the deliver jobs are queued after commit, any error is
logged and swallowed, and the sending happens in the worker later (notifications/delivery.py).
"""

import logging

from django.db import transaction
from django.db.models import Q, QuerySet

from notifications.delivery import delivery_queue
from notifications.messages import execution_text
from notifications.models import Channel, EventType, Notification
from notifications.redaction import redact
from preferences.models import StrategyPreference
from trading.models import Execution

logger = logging.getLogger(__name__)

# An execution's final status → the event it is; "nothing to do" is no news.
EXECUTION_EVENTS: dict[str, EventType] = {
    Execution.Status.FILLED: EventType.FILL,
    Execution.Status.PARTIAL: EventType.FILL,
    Execution.Status.REJECTED: EventType.REFUSAL,
    Execution.Status.SKIPPED: EventType.REFUSAL,
    Execution.Status.FAILED: EventType.FAILURE,
}


def execution_finished(execution_id: int, status: str, *, warning: bool = False) -> None:
    """Queue the notifications of a finished execution. Never raises. A close that found its position
    already closed at the exchange is no failure: it ends `nothing`, no news when an order of ours
    closed it; `warning` when something outside this system did and nobody has been told yet, which is
    told as a protection alarm."""
    event_type = EventType.PROTECTION if warning else EXECUTION_EVENTS.get(status)
    if event_type is None:
        return
    try:
        # Looked up before any transaction: on SQLite a transaction takes the write lock at once,
        # and most deployments have no channel at all.
        if not _wanting(event_type).exists():
            return
        with transaction.atomic():
            _execution_notify(execution_id, event_type)
    except Exception:
        logger.exception("execution %s: its notifications could not be created", execution_id)


def notify(event_type: str, text: str, strategy: StrategyPreference | None = None) -> int:
    """Queue `text` to every enabled channel that wants `event_type`: the strategy's and the global
    ones, or, with no strategy (the whole account: a halt of everything), every channel. Never
    raises; returns how many notifications were queued."""
    try:
        with transaction.atomic():
            channels = _listening(EventType(event_type), strategy_id=strategy.pk if strategy else None,
                                  whole_account=strategy is None)
            for channel in channels:
                _queue(Notification.objects.create(channel=channel, event_type=event_type, text=redact(text)))
            return len(channels)
    except Exception:
        logger.exception("%s notification could not be created", event_type)
        return 0


def _execution_notify(execution_id: int, event_type: EventType) -> None:
    execution = Execution.objects.select_related("signal").get(pk=execution_id)
    channels = _listening(event_type, strategy_id=execution.signal.preference_id, whole_account=False)
    if not channels:
        return
    text = execution_text(execution)
    for channel in channels:
        notification, created = Notification.objects.get_or_create(
            execution=execution, channel=channel, event_type=event_type, defaults={"text": text}
        )
        if created:  # recorded twice (a resumed execution): told once
            _queue(notification)


def _wanting(event_type: EventType) -> QuerySet[Channel]:
    return Channel.objects.filter(enabled=True, **{Channel.TOGGLES[event_type]: True})


def _listening(event_type: EventType, *, strategy_id: int | None, whole_account: bool) -> list[Channel]:
    if whole_account:
        return list(_wanting(event_type))
    return list(_wanting(event_type).filter(Q(strategy__isnull=True) | Q(strategy_id=strategy_id)))


def _queue(notification: Notification) -> None:
    transaction.on_commit(lambda: delivery_queue(notification.pk), robust=True)
