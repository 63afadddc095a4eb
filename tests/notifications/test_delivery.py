"""Delivery: the request shapes Telegram and Discord expect, e-mail through Django's mail, retries
with back-off, one send per notification however often its job runs."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from notifications.events import notify
from notifications.models import Notification
from notifications.tasks import deliver, retry_due
from tests.notifications.conftest import DISCORD_PATH, TELEGRAM_TOKEN
from tests.notifications.receiver import closed_port_url
from tests.support.queue import clear_queue, queued_jobs, run_queued_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def tell(django_capture_on_commit_callbacks):
    """notify(), committed: its deliver jobs are queued as after a real commit."""
    def told(text="BTCUSDT halted", event_type="halt", strategy=None):
        with django_capture_on_commit_callbacks(execute=True):
            notify(event_type, text, strategy)
        return list(Notification.objects.order_by("id"))
    return told


def due_now(notification):
    Notification.objects.filter(pk=notification.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


def test_it_posts_to_the_telegram_bot_api_path_with_chat_id_and_text(tell, telegram, receiver):
    [notification] = tell("ALSAPRO 1 · BTCUSDT buy: filled")
    assert [job["func"] for job in queued_jobs()] == ["notifications.tasks.deliver"]
    assert run_queued_jobs() == 1
    [request] = receiver.requests
    assert request.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {"chat_id": "-100200300", "text": "ALSAPRO 1 · BTCUSDT buy: filled"}
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == ("sent", 1, "")
    assert notification.sent_at is not None


def test_it_posts_json_content_to_the_discord_webhook(tell, discord, receiver):
    receiver.answer(204, b"")
    [notification] = tell("ETHUSDT sell: rejected by exchange")
    run_queued_jobs()
    [request] = receiver.requests
    assert request.path == DISCORD_PATH
    assert request.body["content"] == "ETHUSDT sell: rejected by exchange"
    assert request.body["allowed_mentions"] == {"parse": []}  # a name in the text never pings @everyone
    assert not request.headers["User-Agent"].startswith("Python-urllib")  # Cloudflare refuses that one
    notification.refresh_from_db()
    assert notification.status == "sent"


def test_it_sends_email_through_djangos_mail(tell, email):
    [notification] = tell("ALSAPRO 1 · BTCUSDT buy: failed\ngave up: exchange unreachable")
    run_queued_jobs()
    [message] = mail.outbox
    assert message.to == ["trader@example.com", "ops@example.com"]
    assert message.subject == "Alsa Trade: ALSAPRO 1 · BTCUSDT buy: failed"
    assert message.body == "ALSAPRO 1 · BTCUSDT buy: failed\ngave up: exchange unreachable"
    notification.refresh_from_db()
    assert notification.status == "sent"


def test_it_sends_once_when_the_job_runs_twice(tell, telegram, receiver):
    [notification] = tell()
    assert deliver(notification.pk).endswith("sent to desk chat")
    assert deliver(notification.pk) == f"notification {notification.pk}: not due, or taken by another job"
    assert len(receiver.requests) == 1
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 1)


def test_it_leaves_a_claimed_notification_to_its_claimer(tell, telegram, receiver):
    [notification] = tell()
    Notification.objects.filter(pk=notification.pk).update(status="sending", claimed_at=timezone.now())
    deliver(notification.pk)
    assert receiver.requests == []


def test_it_records_a_failed_attempt_and_retries_it_after_the_back_off(tell, discord, receiver):
    receiver.answer(500, b'{"message": "internal error"}')
    [notification] = tell()
    before = timezone.now()
    run_queued_jobs()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert notification.last_error == "HTTP 500: the service had an error"
    assert timedelta(seconds=29) < notification.next_attempt_at - before < timedelta(seconds=31)
    # Not due yet: neither the job nor the minute job sends it again.
    assert deliver(notification.pk).endswith("not due, or taken by another job")
    assert retry_due() == "released 0 stale claim(s); queued 0 notification(s)"

    receiver.answer(204, b"")
    due_now(notification)
    assert retry_due() == "released 0 stale claim(s); queued 1 notification(s)"
    run_queued_jobs()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts, notification.last_error) == ("sent", 2, "")
    assert len(receiver.requests) == 2


def test_it_backs_off_30s_2min_10min_1h_then_gives_up_after_five_attempts(tell, discord, receiver):
    receiver.answer(502, b"bad gateway")
    [notification] = tell()
    waits = []
    for _ in range(5):
        due_now(notification)
        started = timezone.now()
        deliver(notification.pk)
        notification.refresh_from_db()
        waits.append(round((notification.next_attempt_at - started).total_seconds() / 10) * 10)
    assert waits[:4] == [30, 120, 600, 3600]
    assert (notification.status, notification.attempts, notification.last_error) == (
        "failed", 5, "HTTP 502: the service had an error")
    due_now(notification)
    assert retry_due().endswith("queued 0 notification(s)")


def test_it_records_a_refused_connection_as_a_failed_attempt(tell, discord):
    discord.discord_webhook_url = closed_port_url() + DISCORD_PATH
    discord.save()
    [notification] = tell()
    deliver(notification.pk)
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("pending", 1)
    assert "ConnectionRefusedError" in notification.last_error


def test_it_gives_up_on_a_receiver_that_hangs_after_the_timeout(tell, discord, receiver, settings):
    settings.NOTIFY_TIMEOUT = 0.3
    receiver.answer(204, b"", delay=5)
    [notification] = tell()
    started = timezone.now()
    deliver(notification.pk)
    assert timezone.now() - started < timedelta(seconds=2)
    notification.refresh_from_db()
    assert (notification.status, notification.last_error) == ("pending", "no answer within 0.3 s")


def test_it_queues_a_first_attempt_whose_job_was_lost(tell, telegram, receiver):
    [notification] = tell()
    clear_queue()  # the broker lost the job
    assert retry_due().endswith("queued 0 notification(s)")  # a young first attempt: its job may still come
    Notification.objects.filter(pk=notification.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    assert retry_due().endswith("queued 1 notification(s)")
    run_queued_jobs()
    notification.refresh_from_db()
    assert notification.status == "sent"


def test_it_hands_out_a_claim_whose_sender_died_again(tell, telegram, receiver):
    [notification] = tell()
    Notification.objects.filter(pk=notification.pk).update(
        status="sending", attempts=1, claimed_at=timezone.now() - timedelta(minutes=6))
    assert retry_due() == "released 1 stale claim(s); queued 1 notification(s)"
    run_queued_jobs()
    notification.refresh_from_db()
    assert (notification.status, notification.attempts) == ("sent", 2)


def test_it_fails_a_notification_whose_channel_was_disabled_meanwhile(tell, telegram, receiver):
    [notification] = tell()
    telegram.enabled = False
    telegram.save()
    run_queued_jobs()
    notification.refresh_from_db()
    assert (notification.status, notification.last_error) == ("failed", "the channel was disabled before the message went out")
    assert receiver.requests == []


def test_it_keeps_secrets_out_of_the_text_and_the_recorded_error(tell, telegram, receiver, settings):
    settings.BINANCE_API_KEY = "binance-key-abcdefghijklmnop"
    receiver.answer(401, f'{{"ok": false, "description": "Unauthorized: bot{TELEGRAM_TOKEN}"}}'.encode())
    [notification] = tell(f"passphrase {settings.WEBHOOK_PASSPHRASE} key {settings.BINANCE_API_KEY}")
    run_queued_jobs()
    notification.refresh_from_db()
    assert notification.text == "passphrase ******** key ********"
    assert receiver.requests[0].body["text"] == "passphrase ******** key ********"
    assert TELEGRAM_TOKEN not in notification.last_error and TELEGRAM_TOKEN[-8:] not in notification.last_error
    assert notification.last_error == "HTTP 401: the service refused the bot token or webhook (revoked, deleted, or mistyped?)"
