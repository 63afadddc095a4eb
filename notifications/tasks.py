"""django-q2 tasks: they take ids, load, and call notifications/delivery.py. Each is safe to run twice."""

from django.conf import settings

from notifications.delivery import due_requeue, notification_deliver


def deliver(notification_id: int) -> str:
    """Send one notification, if it is still pending and due."""
    return notification_deliver(notification_id, in_thread=settings.NOTIFY_SEND_IN_THREAD)


def retry_due() -> str:
    """Every minute: queue the notifications whose retry is due; hand out claims whose sender died."""
    return due_requeue()
