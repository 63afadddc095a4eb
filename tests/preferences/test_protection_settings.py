"""The protections as settings (issue #17): each set through the API, the admin and the strategy page
(one form behind all three); a malformed trading-hours value refused with the problem named; the
drawdown lock cleared by the page's button, the admin or the API, always measuring afresh from then."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from preferences.models import StrategyPreference
from tests.support.forms import strategy_form
from tests.support.users import strategy_editor

pytestmark = pytest.mark.django_db

LOCKED_AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
FORM = strategy_form(leverage="3", allocation_pct="25")


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], leverage=3,
                                             allocation_pct=Decimal("25"), sizing="allocation")


@pytest.fixture
def locked(strategy) -> StrategyPreference:
    strategy.max_drawdown_pct, strategy.drawdown_locked_at = Decimal("5"), LOCKED_AT
    strategy.save()
    return strategy


@pytest.fixture
def editor(django_user_model):
    return strategy_editor(django_user_model)


@pytest.fixture
def browser(editor) -> Client:
    client = Client()
    client.force_login(editor)
    return client


@pytest.fixture
def api(editor) -> APIClient:
    client = APIClient()
    client.force_authenticate(editor)
    return client


def set_preference(api: APIClient, kind: str, value: object):
    return api.post(f"/preferences/{kind}", {"strategy": "ALSAPRO 1", "value": value}, format="json")


@pytest.mark.parametrize(("kind", "value", "field", "stored"), [
    ("cooldown_after_loss", 30, "cooldown_after_loss", 30),
    ("max_trades_per_day", 5, "max_trades_per_day", 5),
    ("loss_streak_limit", 3, "loss_streak_limit", 3),
    ("max_drawdown_pct", 12.5, "max_drawdown_pct", Decimal("12.5")),
    ("trading_hours", " mon-fri 07:00-21:00 ", "trading_hours", "mon-fri 07:00-21:00"),
])
def test_it_sets_each_protection_through_the_api(api, strategy, kind, value, field, stored):
    answer = set_preference(api, kind, value)
    assert answer.status_code == 200, answer.content
    strategy.refresh_from_db()
    assert getattr(strategy, field) == stored
    assert set_preference(api, kind, "" if kind == "trading_hours" else None).status_code == 200  # off again
    strategy.refresh_from_db()
    assert getattr(strategy, field) in (None, "")


@pytest.mark.parametrize(("kind", "value"), [("cooldown_after_loss", 0), ("max_trades_per_day", 0),
                                             ("loss_streak_limit", 0), ("max_drawdown_pct", 100.5)])
def test_it_refuses_a_protection_out_of_range(api, strategy, kind, value):
    answer = set_preference(api, kind, value)
    assert answer.status_code == 400 and kind in answer.json()


def test_it_names_the_problem_of_malformed_trading_hours_in_the_api_the_page_and_the_admin(api, browser, strategy,
                                                                                             admin_client):
    assert set_preference(api, "trading_hours", "mon-fry 07:00-21:00").status_code == 400  # the API's schema
    # Well-formed but meaningless: the form's own words, a 400 like any bad value.
    answer = set_preference(api, "trading_hours", "mon 07:00-07:00")
    assert answer.status_code == 400 and answer.json() == {"trading_hours": [
        'trading hours: "mon 07:00-07:00": the window starts and ends at the same time (00:00-24:00 is all day)']}
    page = browser.post(f"/ui/strategies/{strategy.pk}/", {**FORM, "trading_hours": "mon 07:00"})
    assert page.status_code == 200 and "is not a window" in page.content.decode()
    admin = admin_client.post(reverse("admin:preferences_strategypreference_change", args=[strategy.pk]),
                              {**FORM, "trading_hours": "07:00-07:00"})
    assert admin.status_code == 200 and "starts and ends at the same time" in admin.content.decode()
    strategy.refresh_from_db()
    assert strategy.trading_hours == ""


def test_it_clears_the_drawdown_lock_through_the_api_and_measures_afresh(api, locked):
    before = timezone.now()
    answer = set_preference(api, "drawdown_lock", None)
    assert answer.status_code == 200 and answer.json()["drawdown_locked_at"] is None
    locked.refresh_from_db()
    assert locked.drawdown_locked_at is None and locked.drawdown_since >= before
    assert set_preference(api, "drawdown_lock", True).status_code == 200  # an operator may lock by hand
    locked.refresh_from_db()
    assert locked.drawdown_locked_at is not None
    assert set_preference(api, "drawdown_lock", "false").status_code == 200
    locked.refresh_from_db()
    assert locked.drawdown_locked_at is None
    bad = set_preference(api, "drawdown_lock", "soon")
    assert bad.status_code == 400 and "drawdown_lock" in bad.json()


def test_it_clears_the_drawdown_lock_in_the_admin_and_measures_afresh(admin_client, locked):
    url = reverse("admin:preferences_strategypreference_change", args=[locked.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="drawdown_locked_at_0"' in page and 'name="cooldown_after_loss"' in page and 'name="trading_hours"' in page
    shown = {"initial-drawdown_locked_at_0": "2026-12-01", "initial-drawdown_locked_at_1": "09:30:00"}
    before = timezone.now()
    answer = admin_client.post(url, {**FORM, **shown, "drawdown_locked_at_0": "", "drawdown_locked_at_1": ""})
    assert answer.status_code == 302, answer.content.decode()[:2000]
    locked.refresh_from_db()
    assert locked.drawdown_locked_at is None and locked.drawdown_since >= before


def test_a_page_opened_before_the_lock_engaged_does_not_lift_it(browser, admin_client, locked):
    # Both pages showed no lock (their hidden initial values are empty) and save another setting.
    assert browser.post(f"/ui/strategies/{locked.pk}/", {**FORM, "notes": "from the page"}).status_code == 302
    url = reverse("admin:preferences_strategypreference_change", args=[locked.pk])
    assert admin_client.post(url, {**FORM, "notes": "from the admin"}).status_code == 302
    locked.refresh_from_db()
    assert locked.notes == "from the admin" and locked.drawdown_locked_at == LOCKED_AT and locked.drawdown_since is None


def test_it_clears_the_drawdown_lock_from_the_strategy_page(browser, locked):
    page = browser.get(f"/ui/strategies/{locked.pk}/").content.decode()
    assert "Locked by max drawdown." in page and "Clear the drawdown lock" in page
    before = timezone.now()
    answer = browser.post(f"/ui/strategies/{locked.pk}/drawdown-lock/clear/")
    assert answer.status_code == 302 and answer["Location"] == f"/ui/strategies/{locked.pk}/"
    locked.refresh_from_db()
    assert locked.drawdown_locked_at is None and locked.drawdown_since >= before
    page = browser.get(f"/ui/strategies/{locked.pk}/").content.decode()
    assert "Cleared the drawdown lock of ALSAPRO 1" in page and "Clear the drawdown lock" not in page


def test_it_lets_only_users_who_may_change_strategies_clear_the_lock(django_user_model, locked):
    reader = Client()
    reader.force_login(django_user_model.objects.create_user("reader", password="a-reader-password"))
    page = reader.get(f"/ui/strategies/{locked.pk}/").content.decode()
    assert "Locked by max drawdown." in page and "Clear the drawdown lock</button>" not in page
    assert reader.post(f"/ui/strategies/{locked.pk}/drawdown-lock/clear/").status_code == 403
    assert reader.get(f"/ui/strategies/{locked.pk}/drawdown-lock/clear/").status_code == 405
    locked.refresh_from_db()
    assert locked.drawdown_locked_at == LOCKED_AT


def test_it_shows_a_protections_lock_on_the_strategy_page(browser, strategy):
    elsewhere = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(timezone.now().weekday() + 3) % 7]
    strategy.trading_hours = f"{elsewhere} 10:00-11:00"
    strategy.save()
    page = browser.get(f"/ui/strategies/{strategy.pk}/").content.decode()
    assert "Locked by trading hours." in page and f"opens are allowed only {elsewhere} 10:00-11:00 (UTC)" in page
