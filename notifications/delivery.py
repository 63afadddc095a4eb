"""Delivering notifications: at most one sender per notification, failures retried with back-off.

A `deliver` job claims its notification with a conditional UPDATE (pending and due → sending), so
the job run twice — django-q2 delivers at least once, and the minute job may queue a notification
whose first job is still waiting — sends once. In a worker the request itself then goes to a sender
thread of the process and the job returns: a chat service that hangs for its whole timeout holds a
thread, never a worker that the next signal needs. A worker killed mid-send leaves its claim
`sending`; the minute job hands it out again after STALE_CLAIM (the one case where a message may
go out twice: better than never).
"""

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db import connection
from django.db.models import F, QuerySet
from django.utils import timezone
from django_q.tasks import async_task

from notifications.channels import DeliveryError, channel_send
from notifications.messages import trial_text
from notifications.models import Channel, Notification
from notifications.redaction import redact
from trading.queue import broker

DELIVER_TASK = "notifications.tasks.deliver"
STALE_CLAIM = timedelta(minutes=5)
# A first attempt younger than this still has its own job in the queue: the minute job leaves it.
FIRST_JOB_GRACE = timedelta(minutes=1)
BATCH = 200
SENDER_THREADS = 4

logger = logging.getLogger(__name__)


def delivery_queue(notification_id: int) -> None:
    """Queue the notification's deliver job; if the broker refuses, the minute job queues it later."""
    try:
        async_task(DELIVER_TASK, notification_id, broker=broker(), task_name=f"notification-{notification_id}")
    except Exception as error:
        logger.error("notification %s could not be queued (%s: %s); the minute job will queue it",
                     notification_id, type(error).__name__, error)


def notification_deliver(notification_id: int, *, in_thread: bool) -> str:
    if not _claim(notification_id):
        return f"notification {notification_id}: not due, or taken by another job"
    if in_thread:
        _senders().submit(_send_in_thread, notification_id)
        return f"notification {notification_id}: handed to a sender thread"
    return _send_claimed(notification_id)


def _claim(notification_id: int) -> bool:
    now = timezone.now()
    claimed = Notification.objects.filter(pk=notification_id, status=Notification.Status.PENDING, next_attempt_at__lte=now)
    return claimed.update(status=Notification.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1) == 1


@cache
def _senders() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=SENDER_THREADS, thread_name_prefix="notify")


def _send_in_thread(notification_id: int) -> None:
    try:
        _send_claimed(notification_id)
    except Exception:
        logger.exception("notification %s: recording the attempt failed; the minute job will retry it", notification_id)
    finally:
        connection.close()  # this thread's own connection


def _send_claimed(notification_id: int) -> str:
    notification = Notification.objects.select_related("channel").get(pk=notification_id)
    channel = notification.channel
    if not channel.enabled:
        return _attempt_failed(notification, "the channel was disabled before the message went out", final=True)
    try:
        channel_send(channel, notification.text)
    except DeliveryError as error:
        return _attempt_failed(notification, str(error))
    _mine(notification).update(status=Notification.Status.SENT, sent_at=timezone.now(), last_error="")
    return f"notification {notification_id}: sent to {channel.name}"


def _attempt_failed(notification: Notification, error: str, *, final: bool = False) -> str:
    error = redact(error, notification.channel.secrets)[:1000]
    delays = settings.NOTIFY_RETRY_DELAYS
    if final or notification.attempts > len(delays):
        _mine(notification).update(status=Notification.Status.FAILED, last_error=error)
        outcome = "gave up"
    else:
        retry_at = timezone.now() + timedelta(seconds=delays[notification.attempts - 1])
        _mine(notification).update(status=Notification.Status.PENDING, next_attempt_at=retry_at, last_error=error)
        outcome = f"retry at {retry_at:%H:%M:%S}"
    logger.warning("notification %s to %s: attempt %s failed (%s); %s", notification.pk, notification.channel.name,
                   notification.attempts, error, outcome)
    return f"notification {notification.pk}: {error}; {outcome}"


def _mine(notification: Notification) -> QuerySet[Notification]:
    # Still claimed: a claim the minute job gave away as stale is not this sender's to conclude.
    return Notification.objects.filter(pk=notification.pk, status=Notification.Status.SENDING)


def due_requeue() -> str:
    """Every minute: hand out stale claims again, and queue the notifications whose retry is due."""
    now = timezone.now()
    stale = Notification.objects.filter(status=Notification.Status.SENDING, claimed_at__lt=now - STALE_CLAIM)
    gone = "the worker sending it stopped before recording whether it went out"
    stale.filter(attempts__gt=len(settings.NOTIFY_RETRY_DELAYS)).update(status=Notification.Status.FAILED, last_error=gone)
    released = stale.update(status=Notification.Status.PENDING, next_attempt_at=now, last_error=gone)
    due = (
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        .exclude(attempts=0, created_at__gt=now - FIRST_JOB_GRACE)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:BATCH]
    )
    queued = list(due)
    for notification_id in queued:
        delivery_queue(notification_id)
    return f"released {released} stale claim(s); queued {len(queued)} notification(s)"


def channel_try(channel: Channel) -> None:
    """Send a test message now, in this process (the admin's button); raises DeliveryError."""
    channel_send(channel, trial_text(channel.name))
