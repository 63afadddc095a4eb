"""The audit trail of strategy changes (django-simple-history): every change through the admin, the
/ui/strategies/ pages or the REST API leaves a historical row naming who made it, with the values
before and after; the passphrase's hash is never part of it; the admin shows it under "History"."""

import importlib
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from alsatrade.api_tokens import api_token_create
from preferences.models import StrategyPreference
from tests.support.forms import strategy_form
from tests.support.users import strategy_editor

pytestmark = pytest.mark.django_db

HistoricalStrategyPreference = StrategyPreference.history.model
FORM = strategy_form(leverage="7", allocation_pct="25")


@pytest.fixture
def strategy() -> StrategyPreference:
    preference = StrategyPreference(name="ALSAPRO 1", products=["BTCUSDT"], leverage=3, allocation_pct=Decimal("25"),
                                    sizing="allocation")
    preference.set_passphrase("the-first-strategy-secret")
    preference.save()
    return preference


@pytest.fixture
def editor(django_user_model):
    return strategy_editor(django_user_model)


def editor_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def last_change(strategy: StrategyPreference):
    record = strategy.history.latest()
    return record, record.diff_against(record.prev_record)


def changed(delta) -> dict:
    return {change.field: (change.old, change.new) for change in delta.changes if change.field != "updated_at"}


def test_it_records_a_change_made_in_the_admin(editor, strategy):
    url = reverse("admin:preferences_strategypreference_change", args=[strategy.pk])
    response = editor_client(editor).post(url, FORM)
    assert response.status_code == 302, response.content.decode()[:2000]
    record, delta = last_change(strategy)
    assert (record.history_type, record.history_user) == ("~", editor)
    assert changed(delta) == {"leverage": (3, 7)}


def test_it_records_a_change_made_on_the_strategy_page(editor, strategy):
    response = editor_client(editor).post(f"/ui/strategies/{strategy.pk}/", {**FORM, "direction": "long"})
    assert response.status_code == 302
    record, delta = last_change(strategy)
    assert (record.history_type, record.history_user) == ("~", editor)
    assert changed(delta) == {"leverage": (3, 7), "direction": ("both", "long")}


def test_it_records_a_change_made_through_the_token_api(editor, strategy):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=editor)[1]}")
    response = api.post("/preferences/allocation", {"strategy": "ALSAPRO 1", "value": 12.5}, format="json")
    assert response.status_code == 200, response.content
    record, delta = last_change(strategy)
    assert (record.history_type, record.history_user) == ("~", editor)
    assert changed(delta) == {"allocation_pct": (Decimal("25"), Decimal("12.5"))}


def test_it_records_who_created_a_strategy_through_the_api(editor):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=editor)[1]}")
    assert api.post("/preferences/leverage", {"strategy": "NEW ONE", "value": 4}, format="json").status_code == 201
    record = StrategyPreference.objects.get(name="NEW ONE").history.get()
    assert (record.history_type, record.history_user, record.leverage) == ("+", editor, 4)


def test_it_keeps_the_passphrase_hash_out_of_the_history(editor, strategy):
    assert "passphrase_hash" not in {field.name for field in HistoricalStrategyPreference._meta.fields}
    response = editor_client(editor).post(f"/ui/strategies/{strategy.pk}/passphrase/")
    assert response.status_code == 302
    strategy.refresh_from_db()
    record, delta = last_change(strategy)
    # The rotation is on the record (who, when), its secret is not.
    assert (record.history_type, record.history_user, changed(delta)) == ("~", editor, {})
    history_page = editor_client(editor).get(reverse("admin:preferences_strategypreference_history", args=[strategy.pk]))
    assert strategy.passphrase_hash not in history_page.content.decode()


def test_it_shows_who_when_and_what_changed_in_the_admin_history(editor, strategy):
    client = editor_client(editor)
    client.post(reverse("admin:preferences_strategypreference_change", args=[strategy.pk]), FORM)
    response = client.get(reverse("admin:preferences_strategypreference_history", args=[strategy.pk]))
    assert response.status_code == 200
    page = " ".join(response.content.decode().split())
    assert f'<a href="/admin/auth/user/{editor.pk}/change/">editor</a>' in page
    assert "<strong>Leverage:</strong> 3 &nbsp;&rarr;&nbsp;&nbsp;7" in page
    assert strategy.passphrase_hash not in page


def test_it_keeps_the_history_from_staff_without_the_strategy_permission(django_user_model, strategy):
    outsider = django_user_model.objects.create_user("outsider", password="a-password-0123", is_staff=True)
    response = editor_client(outsider).get(reverse("admin:preferences_strategypreference_history", args=[strategy.pk]))
    assert response.status_code == 403


def test_it_keeps_the_passphrase_when_an_old_version_is_restored(editor, strategy):
    first = strategy.history.earliest()
    client = editor_client(editor)
    client.post(reverse("admin:preferences_strategypreference_change", args=[strategy.pk]), FORM)
    url = reverse("admin:preferences_strategypreference_simple_history", args=[strategy.pk, first.history_id])
    response = client.post(url, {**FORM, "leverage": "3"})
    assert response.status_code == 302
    strategy.refresh_from_db()
    assert strategy.leverage == 3
    assert strategy.check_passphrase("the-first-strategy-secret")
    assert strategy.history.latest().history_user == editor


def test_it_starts_the_trail_of_existing_strategies_with_their_current_state(strategy):
    from django.apps import apps

    migration = importlib.import_module("preferences.migrations.0006_strategy_history")
    strategy.history.all().delete()
    migration.record_current_state(apps, None)
    record = strategy.history.get()
    assert (record.history_type, record.history_user, record.leverage, record.products) == ("+", None, 3, ["BTCUSDT"])
    assert record.history_change_reason == "state when the audit trail began"
