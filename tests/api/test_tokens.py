"""API tokens (django-rest-knox): stored as digests, shown once, ending after API_TOKEN_TTL_DAYS."""

import hashlib
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework.test import APIClient

from alsatrade.api_tokens import api_token_create
from tests.alsatrade.test_settings import start

pytestmark = pytest.mark.django_db


def client_with(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_it_answers_a_request_with_a_new_token(reader):
    _token, key = api_token_create(user=reader)
    assert client_with(key).get("/executions").status_code == 200
    assert client_with(key[:-1] + ("0" if key[-1] != "0" else "1")).get("/executions").status_code == 401


def test_it_stores_only_the_keys_digest(reader):
    token, key = api_token_create(user=reader)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM knox_authtoken")
        [row] = cursor.fetchall()
    assert not any(key in str(column) for column in row)
    assert token.digest == hashlib.sha512(key.encode()).hexdigest()
    assert token.digest in row


def test_it_refuses_a_token_past_its_expiry_and_deletes_it(reader):
    token, key = api_token_create(user=reader, days=1)
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() + timedelta(seconds=5))
    assert client_with(key).get("/executions").status_code == 200
    AuthToken.objects.filter(pk=token.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client_with(key).get("/executions").status_code == 401
    assert not AuthToken.objects.exists()


@override_settings(REST_KNOX={**knox_settings.user_settings, "TOKEN_TTL": timedelta(days=90)})
def test_it_gives_a_token_the_configured_lifetime_unless_told(reader):
    before = timezone.now()
    token, _key = api_token_create(user=reader)
    assert before + timedelta(days=90) <= token.expiry <= timezone.now() + timedelta(days=90)
    forever, _key = api_token_create(user=reader, days=0)
    assert forever.expiry is None
    week, _key = api_token_create(user=reader, days=7)
    assert week.expiry <= timezone.now() + timedelta(days=7)


def test_it_reads_the_lifetime_from_API_TOKEN_TTL_DAYS():
    code = "import django; django.setup(); from django.conf import settings; print(settings.REST_KNOX['TOKEN_TTL'])"
    assert start({"DEBUG": "1", "API_TOKEN_TTL_DAYS": "0"}, code).stdout.strip() == "None"
    assert start({"DEBUG": "1", "API_TOKEN_TTL_DAYS": "7"}, code).stdout.strip() == "7 days, 0:00:00"
    refused = start({"DEBUG": "1", "API_TOKEN_TTL_DAYS": "-1"})
    assert refused.returncode != 0 and "API_TOKEN_TTL_DAYS" in refused.stderr


def test_it_refuses_a_header_that_is_not_utf8_without_a_500(reader):
    response = APIClient().get("/executions", HTTP_AUTHORIZATION="Token caf\xe9")
    assert response.status_code == 401


def test_it_never_shows_a_key_in_the_admin(admin_client, reader):
    token, key = api_token_create(user=reader)
    pages = [
        admin_client.get(reverse("admin:knox_authtoken_changelist")),
        admin_client.get(reverse("admin:knox_authtoken_change", args=[token.pk])),
        admin_client.get(reverse("admin:knox_authtoken_delete", args=[token.pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert key[:8] not in page.content.decode()
    assert "reader" in pages[0].content.decode()
    assert admin_client.get(reverse("admin:knox_authtoken_add")).status_code == 403
    response = admin_client.post(reverse("admin:knox_authtoken_change", args=[token.pk]), {"user": reader.pk})
    assert response.status_code == 403


def test_it_revokes_a_token_deleted_in_the_admin(admin_client, reader):
    token, key = api_token_create(user=reader)
    response = admin_client.post(reverse("admin:knox_authtoken_delete", args=[token.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert client_with(key).get("/executions").status_code == 401


def test_the_command_prints_a_working_key_once(reader):
    out, err = StringIO(), StringIO()
    call_command("api_token", "create", "reader", "--days", "30", stdout=out, stderr=err)
    key = out.getvalue().strip()
    assert client_with(key).get("/executions").status_code == 200
    assert key not in err.getvalue() and "not shown again" in err.getvalue()
    token = AuthToken.objects.get()
    assert token.expiry <= timezone.now() + timedelta(days=30)


def test_the_command_makes_a_token_without_end_with_days_0(reader):
    call_command("api_token", "create", "reader", "--days", "0", stdout=StringIO(), stderr=StringIO())
    assert AuthToken.objects.get().expiry is None


def test_the_command_refuses_an_unknown_or_inactive_user(reader):
    with pytest.raises(CommandError, match="No user 'nobody'"):
        call_command("api_token", "create", "nobody", stdout=StringIO(), stderr=StringIO())
    reader.is_active = False
    reader.save()
    with pytest.raises(CommandError, match="inactive"):
        call_command("api_token", "create", "reader", stdout=StringIO(), stderr=StringIO())
    assert not AuthToken.objects.exists()


def test_the_upgrade_deletes_the_old_clear_text_keys():
    from importlib import import_module

    migration = import_module("trading.migrations.0012_drop_drf_tokens")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, user_id integer)")
        cursor.execute("INSERT INTO authtoken_token VALUES ('a-clear-text-drf-key', 1)")
    # The migration reads only the editor's connection (SQLite's real editor refuses to open in a test's transaction).
    migration.delete_drf_keys(None, SimpleNamespace(connection=connection))
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)


def test_the_command_creates_an_api_only_user_with_the_granted_permissions(django_user_model):
    call_command("api_token", "create", "script", "--create", "--grant", "preferences.change_strategypreference",
                 "--grant", "trading.change_tradinghalt", stdout=StringIO(), stderr=StringIO())
    user = django_user_model.objects.get(username="script")
    assert (user.is_staff, user.has_usable_password()) == (False, False)
    assert user.has_perm("preferences.change_strategypreference") and user.has_perm("trading.change_tradinghalt")
    assert not user.has_perm("preferences.add_strategypreference")
    assert AuthToken.objects.get().user == user


@pytest.mark.parametrize("arguments", [["--grant", "preferences.fly"], ["--grant", "nothing"], ["--days", "-1"],
                                       ["--days", "3651"]])
def test_the_command_refuses_a_bad_option_and_creates_nothing(django_user_model, arguments):
    with pytest.raises(CommandError):
        call_command("api_token", "create", "script", "--create", *arguments, stdout=StringIO(), stderr=StringIO())
    assert not django_user_model.objects.filter(username="script").exists()
    assert not AuthToken.objects.exists()
