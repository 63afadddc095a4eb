"""Channels never post inside our network (SSRF): https only, to Discord's and Telegram's hosts or
the listed ones, every resolved address public, no redirect followed, checked when a channel is saved
and again at each send, and of a refusing answer only the status is kept.

The conftest's network fixture answers every DNS lookup and refuses every connection beyond this
machine's loopback, so nothing here reaches the internet."""

import logging
import socket
import threading

import pytest
from django.urls import reverse

from notifications.destinations import DestinationRefused, destination_check
from notifications.models import Channel
from notifications.tasks import deliver
from tests.alsatrade.test_settings import start
from tests.notifications.conftest import DISCORD_PATH
from tests.notifications.receiver import Receiver
from tests.notifications.test_admin import form_data

DISCORD_ADDRESS = "162.159.128.233"  # one of Discord's public addresses
WEBHOOK = "https://discord.com" + DISCORD_PATH


@pytest.fixture
def strict(settings):
    """Production's rules: no way through for the local receiver."""
    settings.NOTIFY_ALLOW_PRIVATE_ADDRESSES = False


def refusal(url: str) -> str:
    with pytest.raises(DestinationRefused) as refused:
        destination_check(url)
    return str(refused.value)


def told(channel: Channel) -> Channel:
    """One notification to the channel, its deliver job run: the notification as recorded."""
    notification = channel.notifications.create(event_type="halt", text="BTCUSDT halted")
    deliver(notification.pk)
    notification.refresh_from_db()
    return notification


# --- the check ----------------------------------------------------------------------------------

@pytest.mark.parametrize("url", ["http://discord.com" + DISCORD_PATH, "ftp://discord.com/x", "discord.com/x"])
def test_it_refuses_anything_but_https_before_looking_the_host_up(strict, network, url):
    assert refusal(url) == "only https:// addresses are allowed"
    assert network.lookups == []


def test_it_refuses_plain_http_to_a_public_address_even_for_the_tests_receiver(network):
    network.resolve("discord.com", DISCORD_ADDRESS)
    assert refusal("http://discord.com" + DISCORD_PATH) == "only https:// addresses are allowed"


@pytest.mark.parametrize(("url", "host"), [
    ("https://evil.example/api/webhooks/1/x", "evil.example"),
    ("https://discord.com.evil.example/api/webhooks/1/x", "discord.com.evil.example"),
    ("https://notdiscord.com/api/webhooks/1/x", "notdiscord.com"),
    ("https://discord.com@evil.example/api/webhooks/1/x", "evil.example"),  # the user part is not the host
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),
])
def test_it_refuses_a_host_that_is_not_discords_or_telegrams_or_listed(strict, network, url, host):
    assert refusal(url) == f"{host} is not Discord's or Telegram's host, nor in NOTIFY_ALLOWED_HOSTS"
    assert network.lookups == []


@pytest.mark.parametrize("host", [
    "discord.com", "ptb.discord.com", "canary.discord.com", "discordapp.com", "ptb.discordapp.com",
    "canary.discordapp.com", "DISCORD.com", "discord.com.", "api.telegram.org", "relay.example.net",
])
def test_it_accepts_discords_and_telegrams_hosts_and_the_listed_ones(strict, settings, network, host):
    settings.NOTIFY_TELEGRAM_API = "https://api.telegram.org"
    settings.NOTIFY_ALLOWED_HOSTS = ["relay.example.net"]
    network.resolve(host.lower().rstrip("."), DISCORD_ADDRESS, "2606:4700::6810:1")
    destination = destination_check(f"https://{host}:8443/api/webhooks/1/x?wait=true")
    assert (destination.host, destination.port, destination.target) == (
        host.lower().rstrip("."), 8443, "/api/webhooks/1/x?wait=true")
    assert destination.addresses == (DISCORD_ADDRESS, "2606:4700::6810:1")


@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "a loopback address"), ("127.8.9.10", "a loopback address"), ("::1", "a loopback address"),
    ("::ffff:127.0.0.1", "a loopback address"),
    ("10.0.0.1", "a private address"), ("172.16.0.0", "a private address"), ("172.31.255.255", "a private address"),
    ("192.168.1.10", "a private address"), ("fd00::1", "a private address"), ("::ffff:10.0.0.1", "a private address"),
    ("169.254.169.254", "a link-local address"), ("fe80::1", "a link-local address"),
    ("fe80::1%eth0", "a link-local address"),
    ("0.0.0.0", "an unspecified address"), ("::", "an unspecified address"),
    ("224.0.0.251", "a multicast address"), ("ff02::1", "a multicast address"),
    ("240.0.0.1", "a reserved address"), ("255.255.255.255", "a reserved address"),
    ("100.64.0.0", "not a public address"), ("100.127.255.255", "not a public address"),
])
def test_it_refuses_a_host_that_resolves_inside(strict, network, address, kind):
    network.resolve("discord.com", address)
    assert refusal(WEBHOOK) == f"discord.com resolves to {address}, {kind}: refused"


@pytest.mark.parametrize("address", ["172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0", DISCORD_ADDRESS])
def test_it_accepts_the_public_addresses_next_to_the_inside_ranges(strict, network, address):
    network.resolve("discord.com", address)
    assert destination_check(WEBHOOK).addresses == (address,)


def test_it_refuses_a_host_when_any_of_its_addresses_is_inside(strict, network):
    network.resolve("discord.com", DISCORD_ADDRESS, "10.0.0.1")
    assert refusal(WEBHOOK) == "discord.com resolves to 10.0.0.1, a private address: refused"


def test_it_refuses_a_host_that_does_not_resolve_or_a_bad_port(strict, network):
    assert refusal(WEBHOOK) == "discord.com could not be resolved ([Errno -2] Name or service not known)"
    assert refusal("https://discord.com:99999/x") == "discord.com: the port is not a number from 0 to 65535"


@pytest.mark.parametrize(("env", "named"), [
    ({"NOTIFY_TELEGRAM_API": "http://api.telegram.org"}, "NOTIFY_TELEGRAM_API"),
    ({"NOTIFY_ALLOWED_HOSTS": "relay.example.net,https://relay.example.net/"}, "NOTIFY_ALLOWED_HOSTS"),
    ({"NOTIFY_ALLOWED_HOSTS": "relay.example.net:8443"}, "NOTIFY_ALLOWED_HOSTS"),
])
def test_it_refuses_to_start_with_a_bad_destination_setting(env, named):
    result = start({"DEBUG": "1", **env})
    assert result.returncode != 0 and named in result.stderr.strip().splitlines()[-1]


def test_it_reads_the_allowed_hosts_from_the_environment():
    code = "import django; django.setup(); from django.conf import settings as s; print(s.NOTIFY_ALLOWED_HOSTS)"
    result = start({"DEBUG": "1", "NOTIFY_ALLOWED_HOSTS": " Relay.Example.net. , ::1"}, code)
    assert result.stdout.strip() == "['relay.example.net', '::1']", result.stderr


# --- at send time -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_it_does_not_send_over_plain_http(strict, discord, receiver, network):
    network.resolve("discord.com", "127.0.0.1")
    discord.discord_webhook_url = f"http://discord.com:{receiver.server.server_port}{DISCORD_PATH}"
    discord.save()
    notification = told(discord)
    assert (notification.status, notification.last_error) == ("pending", "refused: only https:// addresses are allowed")
    assert receiver.requests == [] and network.connected == []


@pytest.mark.django_db
def test_it_does_not_send_to_a_host_that_is_not_allowed(discord, receiver, network):
    network.resolve("internal.example", "127.0.0.1")
    discord.discord_webhook_url = f"http://internal.example:{receiver.server.server_port}{DISCORD_PATH}"
    discord.save()
    assert told(discord).last_error == (
        "refused: internal.example is not Discord's or Telegram's host, nor in NOTIFY_ALLOWED_HOSTS")
    assert receiver.requests == [] and network.connected == []


@pytest.mark.django_db
@pytest.mark.parametrize(("address", "kind"), [
    ("127.0.0.1", "a loopback address"), ("10.0.0.1", "a private address"), ("169.254.169.254", "a link-local address"),
])
def test_it_checks_the_address_again_at_send_time(strict, discord, receiver, network, address, kind):
    network.resolve("discord.com", DISCORD_ADDRESS)
    discord.discord_webhook_url = f"https://discord.com:{receiver.server.server_port}{DISCORD_PATH}"
    discord.full_clean()  # as saved: the address was public then
    discord.save()
    network.resolve("discord.com", address)  # and is not any more
    notification = told(discord)
    assert (notification.status, notification.last_error) == (
        "pending", f"refused: discord.com resolves to {address}, {kind}: refused")
    assert network.connected == []


@pytest.mark.django_db
def test_it_connects_to_the_address_it_checked_not_to_a_second_lookups(strict, discord, receiver, network):
    network.rebind("discord.com", DISCORD_ADDRESS, "127.0.0.1")  # public for the check, loopback after
    discord.discord_webhook_url = f"https://discord.com:{receiver.server.server_port}{DISCORD_PATH}"
    discord.save()
    notification = told(discord)
    assert network.lookups == ["discord.com"] and network.connected == [DISCORD_ADDRESS]
    assert notification.last_error.startswith("ConnectionRefusedError")  # the test network ends here
    assert receiver.requests == []


@pytest.mark.django_db
def test_it_sends_to_a_listed_host_naming_it_in_the_request(settings, discord, receiver, network):
    settings.NOTIFY_ALLOWED_HOSTS = ["relay.test"]
    network.resolve("relay.test", "127.0.0.1")
    discord.discord_webhook_url = f"http://relay.test:{receiver.server.server_port}{DISCORD_PATH}"
    discord.save()
    assert told(discord).status == "sent"
    [request] = receiver.requests
    assert (request.path, request.headers["Host"]) == (DISCORD_PATH, f"relay.test:{receiver.server.server_port}")


@pytest.mark.django_db
def test_it_tries_the_checked_addresses_in_the_resolvers_order(settings, discord, receiver, network):
    settings.NOTIFY_ALLOWED_HOSTS = ["relay.test"]
    network.resolve("relay.test", "10.0.0.1", "127.0.0.1")  # the first one does not answer
    discord.discord_webhook_url = f"http://relay.test:{receiver.server.server_port}{DISCORD_PATH}"
    discord.save()
    assert told(discord).status == "sent"
    assert network.connected == ["10.0.0.1", "127.0.0.1"] and network.lookups == ["relay.test"]


@pytest.mark.django_db
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_it_does_not_follow_a_redirect(discord, receiver, status):
    elsewhere = Receiver()
    try:
        receiver.answer(status, b"", headers={"Location": f"{elsewhere.url}/latest/meta-data/"})
        notification = told(discord)
    finally:
        elsewhere.stop()
    assert (notification.status, notification.last_error) == (
        "pending", f"HTTP {status}: a redirect, which is not followed (has the address moved?)")
    assert elsewhere.requests == []


@pytest.mark.django_db
@pytest.mark.parametrize(("status", "error"), [
    (204, ""), (299, ""),
    (300, "HTTP 300: a redirect, which is not followed (has the address moved?)"),
    (399, "HTTP 399: a redirect, which is not followed (has the address moved?)"),
    (400, "HTTP 400: the service refused the message (is the chat id right?)"),
    (404, "HTTP 404: the service refused the bot token or webhook (revoked, deleted, or mistyped?)"),
    (429, "HTTP 429: the service asks us to slow down"),
    (499, "HTTP 499: an unexpected answer"),
    (500, "HTTP 500: the service had an error"),
])
def test_it_counts_only_a_2xx_as_sent(discord, receiver, status, error):
    receiver.answer(status, b'{"message": "detail"}')
    notification = told(discord)
    assert (notification.status, notification.last_error) == ("sent" if not error else "pending", error)


@pytest.mark.django_db
def test_it_keeps_the_answers_body_out_of_the_record_and_the_log(telegram, receiver, caplog):
    receiver.answer(400, b'{"ok": false, "description": "Bad Request: chat not found via 10.9.8.7:6379"}')
    caplog.set_level(logging.DEBUG)
    notification = told(telegram)
    assert notification.last_error == "HTTP 400: the service refused the message (is the chat id right?)"
    assert "HTTP 400" in caplog.text and "10.9.8.7" not in caplog.text and "chat not found" not in caplog.text


@pytest.mark.django_db
def test_it_records_an_answer_that_is_not_http_by_its_kind_only(discord, settings):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def garble() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"SSH-2.0 internal detail 10.9.8.7\r\n\r\n")

        answering = threading.Thread(target=garble, daemon=True)
        answering.start()
        discord.discord_webhook_url = f"http://127.0.0.1:{server.getsockname()[1]}{DISCORD_PATH}"
        discord.save()
        notification = told(discord)
        answering.join(2)
    assert notification.last_error == "the answer was not valid HTTP (BadStatusLine)"


# --- when a channel is saved --------------------------------------------------------------------

def errors(response) -> dict[str, list[str]]:
    assert response.status_code == 200, "saved, but should have been refused"
    form = response.context["adminform"].form
    return {name: [str(error) for error in field_errors] for name, field_errors in form.errors.items()}


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "address", "why"), [
    ("http://discord.com" + DISCORD_PATH, None, "only https:// addresses are allowed"),
    ("https://evil.example" + DISCORD_PATH, None,
     "evil.example is not Discord's or Telegram's host, nor in NOTIFY_ALLOWED_HOSTS"),
    (WEBHOOK, "127.0.0.1", "discord.com resolves to 127.0.0.1, a loopback address: refused"),
    (WEBHOOK, "10.0.0.1", "discord.com resolves to 10.0.0.1, a private address: refused"),
    (WEBHOOK, "169.254.169.254", "discord.com resolves to 169.254.169.254, a link-local address: refused"),
])
def test_it_refuses_to_save_a_discord_channel_that_would_post_inside(strict, admin_client, network, url, address, why):
    if address:
        network.resolve("discord.com", address)
    blank = Channel(name="ops", kind="discord")
    response = admin_client.post(reverse("admin:notifications_channel_add"), form_data(blank, discord_webhook_url=url))
    assert errors(response) == {"discord_webhook_url": [f"Messages may not go to this URL: {why}."]}
    assert not Channel.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("url", ["https://canary.discord.com" + DISCORD_PATH, "https://relay.example.net/hooks/ops"])
def test_it_saves_a_discord_channel_on_discords_or_a_listed_host(strict, settings, admin_client, network, url):
    settings.NOTIFY_ALLOWED_HOSTS = ["relay.example.net"]
    network.resolve("canary.discord.com", DISCORD_ADDRESS)
    network.resolve("relay.example.net", "2606:4700::6810:1")
    blank = Channel(name="ops", kind="discord")
    response = admin_client.post(reverse("admin:notifications_channel_add"), form_data(blank, discord_webhook_url=url))
    assert response.status_code == 302
    assert Channel.objects.get().discord_webhook_url == url


@pytest.mark.django_db
def test_it_refuses_to_save_a_telegram_channel_while_telegrams_api_resolves_inside(strict, settings, admin_client, network):
    settings.NOTIFY_TELEGRAM_API = "https://api.telegram.org"
    network.resolve("api.telegram.org", "10.0.0.1")
    blank = Channel(name="desk", kind="telegram")
    data = form_data(blank, telegram_bot_token="123456:token-value", telegram_chat_id="42")
    response = admin_client.post(reverse("admin:notifications_channel_add"), data)
    assert errors(response) == {"__all__": [
        "Telegram's API (NOTIFY_TELEGRAM_API) is refused: api.telegram.org resolves to 10.0.0.1, a private address: refused."]}
    assert not Channel.objects.exists()
