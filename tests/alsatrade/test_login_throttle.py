"""Login throttling (django-axes) on the admin's and the traders' login pages: a username is locked
out from one address after AXES_FAILURE_LIMIT failures, an address after AXES_ADDRESS_FAILURE_LIMIT
failures across usernames, a username after AXES_USERNAME_FAILURE_LIMIT failures across addresses,
for AXES_COOLOFF_TIME; the address is read as the webhook reads it, so a made-up X-Forwarded-For does
not buy a fresh count."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.test import Client

from alsatrade.api_tokens import api_token_create
from tests.alsatrade.test_settings import start

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-0123"
ADMIN_LOGIN = "/admin/login/"
TRADER_LOGIN = "/accounts/login/"


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user("staff", password=PASSWORD, is_staff=True)


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user("other", password=PASSWORD, is_staff=True)


def log_in(path: str, username: str, password: str, **headers: str):
    return Client(**headers).post(path, {"username": username, "password": password})


def logged_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.client.session


def fail(path: str, username: str, times: int, **headers: str) -> None:
    for _ in range(times):
        assert log_in(path, username, "a-wrong-password", **headers).status_code in (200, 429)


@pytest.mark.parametrize("path", [ADMIN_LOGIN, TRADER_LOGIN])
def test_it_refuses_the_right_password_after_the_failure_limit(staff, path):
    assert settings.AXES_FAILURE_LIMIT == 5
    fail(path, "staff", 5)
    response = log_in(path, "staff", PASSWORD)
    assert response.status_code == 429
    assert not logged_in(response)
    assert "Too many failed logins" in response.content.decode()
    assert "try again in 15 minutes" in response.content.decode()


@pytest.mark.parametrize("path", [ADMIN_LOGIN, TRADER_LOGIN])
def test_it_allows_the_right_password_below_the_limit(staff, path):
    fail(path, "staff", 4)
    assert logged_in(log_in(path, "staff", PASSWORD))


def test_it_counts_failures_on_both_login_pages_together(staff):
    fail(ADMIN_LOGIN, "staff", 3)
    fail(TRADER_LOGIN, "staff", 2)
    assert log_in(TRADER_LOGIN, "staff", PASSWORD).status_code == 429


def test_it_still_lets_another_username_log_in_from_the_same_address(staff, other):
    fail(ADMIN_LOGIN, "staff", 5)
    assert log_in(ADMIN_LOGIN, "staff", PASSWORD).status_code == 429
    assert logged_in(log_in(ADMIN_LOGIN, "other", PASSWORD))


def test_it_still_lets_the_username_log_in_from_another_address(staff):
    fail(ADMIN_LOGIN, "staff", 5, REMOTE_ADDR="203.0.113.9")
    assert log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 429
    assert logged_in(log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="198.51.100.7"))


def fail_spread(*, usernames: list[str], addresses: list[str]) -> None:
    """One wrong password for each username from each address, in turn (the one that locks answers 429)."""
    for address in addresses:
        for username in usernames:
            assert log_in(ADMIN_LOGIN, username, "a-wrong-password", REMOTE_ADDR=address).status_code in (200, 429)


def test_it_locks_an_address_that_tries_many_usernames(staff):
    assert settings.LOGIN_THROTTLE_LIMITS[("ip_address",)] == 20
    fail_spread(usernames=[f"guess{n}" for n in range(19)], addresses=["203.0.113.9"])
    assert logged_in(log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="203.0.113.9"))
    fail_spread(usernames=[f"guess{n}" for n in range(20)], addresses=["198.51.100.7"])
    # "staff" never failed from here, yet the address is locked for every username, the right password too.
    response = log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="198.51.100.7")
    assert response.status_code == 429 and not logged_in(response)
    assert log_in(TRADER_LOGIN, "guess0", "a-wrong-password", REMOTE_ADDR="198.51.100.7").status_code == 429
    assert logged_in(log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="203.0.113.10"))


def test_it_locks_a_username_tried_from_many_addresses(staff, other):
    assert settings.LOGIN_THROTTLE_LIMITS[("username",)] == 20
    fail_spread(usernames=["staff"], addresses=[f"203.0.113.{n}" for n in range(19)])
    assert logged_in(log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="192.0.2.1"))
    fail_spread(usernames=["other"], addresses=[f"203.0.113.{n}" for n in range(20)])
    # One failure from each of 20 addresses: "other" is locked everywhere, from a fresh address too.
    response = log_in(ADMIN_LOGIN, "other", PASSWORD, REMOTE_ADDR="192.0.2.1")
    assert response.status_code == 429 and not logged_in(response)
    assert "Too many failed logins" in response.content.decode()
    assert logged_in(log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="192.0.2.2"))


def test_it_takes_each_limit_from_the_settings(settings, staff):
    settings.LOGIN_THROTTLE_LIMITS = {("username", "ip_address"): 5, ("ip_address",): 3, ("username",): 20}
    fail_spread(usernames=["a", "b", "c"], addresses=["203.0.113.9"])
    assert log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 429


def test_it_keeps_an_address_count_when_another_account_logs_in_from_it(staff, other):
    """Logging in with one's own account must not wipe the failures counted against one's address."""
    fail_spread(usernames=[f"guess{n}" for n in range(19)], addresses=["203.0.113.9"])
    assert logged_in(log_in(ADMIN_LOGIN, "other", PASSWORD, REMOTE_ADDR="203.0.113.9"))
    fail_spread(usernames=["guess19"], addresses=["203.0.113.9"])
    assert log_in(ADMIN_LOGIN, "staff", PASSWORD, REMOTE_ADDR="203.0.113.9").status_code == 429


def test_it_lifts_the_lock_after_the_cool_off(staff):
    fail(TRADER_LOGIN, "staff", 5)
    assert log_in(TRADER_LOGIN, "staff", PASSWORD).status_code == 429
    # The cool-off runs from the last failure: move every recorded attempt that far into the past.
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= settings.AXES_COOLOFF_TIME
        attempt.save(update_fields=["attempt_time"])
    assert logged_in(log_in(TRADER_LOGIN, "staff", PASSWORD))


def test_it_neither_counts_nor_stores_attempts_during_the_lock(staff):
    fail(ADMIN_LOGIN, "staff", 5)
    stored = AccessAttempt.objects.get()
    fail(ADMIN_LOGIN, "staff", 20)
    assert log_in(ADMIN_LOGIN, "staff", PASSWORD).status_code == 429
    again = AccessAttempt.objects.get()
    assert (again.failures_since_start, again.attempt_time, again.post_data) == (5, stored.attempt_time, stored.post_data)
    assert "a-wrong-password" not in again.post_data


def test_it_lifts_the_lock_when_an_administrator_resets_it(staff):
    from axes.utils import reset

    fail(ADMIN_LOGIN, "staff", 5)
    reset(username="staff")
    assert logged_in(log_in(ADMIN_LOGIN, "staff", PASSWORD))


def test_it_clears_the_count_on_a_successful_login(staff):
    fail(TRADER_LOGIN, "staff", 4)
    assert logged_in(log_in(TRADER_LOGIN, "staff", PASSWORD))
    fail(TRADER_LOGIN, "staff", 4)
    assert logged_in(log_in(TRADER_LOGIN, "staff", PASSWORD))


def test_it_does_not_believe_x_forwarded_for_from_an_untrusted_address(staff):
    assert settings.WEBHOOK_TRUSTED_PROXIES == []
    for n in range(5):
        log_in(ADMIN_LOGIN, "staff", "a-wrong-password", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")
    response = log_in(ADMIN_LOGIN, "staff", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200")
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"127.0.0.1"}


def test_it_counts_each_client_behind_a_trusted_proxy_apart(settings, staff):
    settings.WEBHOOK_TRUSTED_PROXIES = ["127.0.0.0/8"]
    fail(ADMIN_LOGIN, "staff", 5, HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert log_in(ADMIN_LOGIN, "staff", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 429
    # A client cannot escape by writing another address left of the one the proxy appended.
    assert log_in(ADMIN_LOGIN, "staff", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.9").status_code == 429
    assert logged_in(log_in(ADMIN_LOGIN, "staff", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.7"))


def test_it_leaves_the_token_api_alone(staff):
    fail(TRADER_LOGIN, "staff", 5)
    _token, key = api_token_create(user=staff)
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get("/preferences/current")
    assert response.status_code == 200


@pytest.mark.parametrize("env, named", [
    ({"AXES_FAILURE_LIMIT": "0"}, "AXES_FAILURE_LIMIT"),
    ({"AXES_COOLOFF_MINUTES": "soon"}, "AXES_COOLOFF_MINUTES"),
    ({"AXES_ADDRESS_FAILURE_LIMIT": "0"}, "AXES_ADDRESS_FAILURE_LIMIT"),
    ({"AXES_USERNAME_FAILURE_LIMIT": "many"}, "AXES_USERNAME_FAILURE_LIMIT"),
])
def test_it_refuses_a_bad_throttle_setting_naming_it(env, named):
    result = start({"DEBUG": "1", **env})
    assert result.returncode != 0
    assert named in result.stderr.strip().splitlines()[-1]


def test_it_reads_the_throttle_settings_from_the_environment():
    code = "import django; django.setup(); from django.conf import settings as s; "
    code += "print(s.AXES_FAILURE_LIMIT, s.AXES_COOLOFF_TIME, *s.LOGIN_THROTTLE_LIMITS.values())"
    result = start({"DEBUG": "1", "AXES_FAILURE_LIMIT": "3", "AXES_COOLOFF_MINUTES": "90", "AXES_ADDRESS_FAILURE_LIMIT": "40",
                    "AXES_USERNAME_FAILURE_LIMIT": "50"}, code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["3", "1:30:00", "3", "40", "50"]
