"""The admin: channels with masked secrets that survive an empty password field, the test message
(an action on the list and a button on the page), and the read-only delivery record."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from notifications.models import Channel, Notification
from tests.notifications.conftest import DISCORD_PATH, TELEGRAM_TOKEN
from tests.notifications.receiver import closed_port_url

pytestmark = pytest.mark.django_db


def form_data(channel: Channel, **changes) -> dict:
    data = {
        "name": channel.name, "kind": channel.kind, "enabled": "on", "strategy": "", "telegram_bot_token": "",
        "telegram_chat_id": channel.telegram_chat_id, "discord_webhook_url": "", "email_to": channel.email_to,
        "on_fill": "on", "on_refusal": "on", "on_failure": "on", "on_protection": "on", "on_halt": "on", "on_limit": "on",
    }
    return {**data, **changes}


def shown(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_it_lists_channels_with_their_secrets_masked(admin_client, telegram, discord):
    page = admin_client.get(reverse("admin:notifications_channel_changelist")).content.decode()
    assert "chat -100200300, bot token ••••K-ab" in page
    assert f"webhook ••••{DISCORD_PATH[-4:]}" in page
    assert TELEGRAM_TOKEN not in page and TELEGRAM_TOKEN[:-4] not in page and DISCORD_PATH not in page


def test_it_never_puts_a_stored_secret_in_the_change_form(admin_client, telegram, discord):
    for channel, secret in ((telegram, TELEGRAM_TOKEN), (discord, DISCORD_PATH)):
        page = admin_client.get(reverse("admin:notifications_channel_change", args=[channel.pk])).content.decode()
        assert secret not in page and 'type="password"' in page
        assert f"Stored: ••••{secret[-4:]}. Leave blank to keep it." in page


def test_it_keeps_a_stored_secret_when_the_field_is_left_blank_and_replaces_it_when_typed(admin_client, telegram):
    url = reverse("admin:notifications_channel_change", args=[telegram.pk])
    response = admin_client.post(url, form_data(telegram, name="desk chat 2"))
    assert response.status_code == 302, response.content.decode()[:3000]
    telegram.refresh_from_db()
    assert (telegram.name, telegram.telegram_bot_token) == ("desk chat 2", TELEGRAM_TOKEN)

    admin_client.post(url, form_data(telegram, telegram_bot_token="987654:new-token-value"))
    telegram.refresh_from_db()
    assert telegram.telegram_bot_token == "987654:new-token-value"


def test_it_creates_a_channel_for_one_strategy_and_says_what_each_kind_needs(admin_client, strategy):
    add = reverse("admin:notifications_channel_add")
    blank = Channel(name="desk", kind="telegram")
    response = admin_client.post(add, form_data(blank, strategy=str(strategy.pk)))
    assert response.status_code == 200
    assert "A Telegram channel needs this." in response.content.decode()
    response = admin_client.post(add, form_data(blank, kind="email", email_to="ops@example.com, not-an-address"))
    assert "&#x27;not-an-address&#x27; is not an e-mail address." in response.content.decode()

    response = admin_client.post(add, form_data(blank, strategy=str(strategy.pk), telegram_bot_token=TELEGRAM_TOKEN,
                                                telegram_chat_id="42", on_fill="", on_halt=""))
    assert response.status_code == 302
    channel = Channel.objects.get(name="desk")
    assert (channel.strategy, channel.telegram_bot_token, channel.on_fill, channel.on_halt, channel.on_failure) == (
        strategy, TELEGRAM_TOKEN, False, False, True)


def test_it_sends_a_test_message_from_the_list(admin_client, telegram, discord, receiver):
    response = admin_client.post(reverse("admin:notifications_channel_changelist"), {
        "action": "send_test_message", "_selected_action": [telegram.pk, discord.pk],
    }, follow=True)
    assert sorted(shown(response)) == ["desk chat (Telegram): test message sent.", "discord ops (Discord): test message sent."]
    assert sorted(request.path for request in receiver.requests) == sorted([f"/bot{TELEGRAM_TOKEN}/sendMessage", DISCORD_PATH])
    assert receiver.requests[0].body.get("text", receiver.requests[0].body.get("content")).startswith("Alsa Trade test message")
    assert Notification.objects.count() == 0  # a test is sent, not recorded or retried


def test_it_sends_a_test_message_from_the_channels_page_and_shows_the_redacted_error(admin_client, discord):
    discord.discord_webhook_url = closed_port_url() + DISCORD_PATH
    discord.save()
    page = admin_client.get(reverse("admin:notifications_channel_change", args=[discord.pk])).content.decode()
    button = reverse("admin:notifications_channel_test", args=[discord.pk])
    assert f'action="{button}"' in page and "Send test message" in page

    assert admin_client.get(button).status_code == 405  # sending is a POST
    response = admin_client.post(button, follow=True)
    assert response.redirect_chain[-1][0] == reverse("admin:notifications_channel_change", args=[discord.pk])
    [message] = shown(response)
    assert message.startswith("discord ops (Discord): the test message failed: ConnectionRefusedError")
    assert DISCORD_PATH.rsplit("/", 1)[-1] not in message


def test_it_reports_a_telegram_refusal_without_the_token_or_the_answers_body(admin_client, telegram, receiver):
    receiver.answer(401, f'{{"ok": false, "description": "Unauthorized bot{TELEGRAM_TOKEN} at 10.1.2.3"}}'.encode())
    response = admin_client.post(reverse("admin:notifications_channel_test", args=[telegram.pk]), follow=True)
    assert shown(response) == ["desk chat (Telegram): the test message failed: HTTP 401: "
                               "the service refused the bot token or webhook (revoked, deleted, or mistyped?)"]
    assert "10.1.2.3" not in response.content.decode()


def test_it_refuses_the_test_message_to_staff_who_may_not_change_channels(client, django_user_model, telegram, receiver):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(viewer)
    response = client.post(reverse("admin:notifications_channel_test", args=[telegram.pk]))
    assert response.status_code in (302, 403)
    assert receiver.requests == []


def test_it_shows_deliveries_read_only(admin_client, telegram):
    notification = Notification.objects.create(channel=telegram, event_type="halt", text="halted", last_error="HTTP 500")
    page = admin_client.get(reverse("admin:notifications_notification_changelist")).content.decode()
    assert "HTTP 500" in page and "desk chat" in page
    assert admin_client.get(reverse("admin:notifications_notification_change", args=[notification.pk])).status_code == 200
    assert admin_client.get(reverse("admin:notifications_notification_add")).status_code == 403
