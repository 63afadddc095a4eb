"""The admin as staff read it: numbers normalised, the decision as a table, latency stamps to the
millisecond, Trading first, the worker's internal tables out of a non-superuser's way."""

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from preferences.models import StrategyPreference
from tests.ui.records import make_execution
from trading.models import (
    Execution,
    Order,
    PaperAccount,
    PaperOrder,
    PaperPosition,
    PaperPrice,
    Position,
    SymbolLane,
    SymbolSetting,
    WorkerHeartbeat,
)
from trading.queue import uses_orm_broker

pytestmark = pytest.mark.django_db

RECEIVED = datetime(2025, 1, 15, 14, 30, 5, 123456, tzinfo=UTC)
INTERNAL = [SymbolLane, WorkerHeartbeat, PaperPrice, PaperAccount, PaperPosition, PaperOrder]


@pytest.fixture
def execution() -> Execution:
    return make_execution(1, received_at=RECEIVED)


@pytest.fixture
def staff_client(client, django_user_model):
    """Staff with every permission there is, but not a superuser."""
    user = django_user_model.objects.create_user("staff", password="a-staff-password", is_staff=True)
    user.user_permissions.add(*Permission.objects.all())
    client.force_login(user)
    return client


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def test_it_shows_money_and_quantities_normalised_in_lists(admin_client, execution):
    Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.002"), entry_price=Decimal("45000"))
    orders = page(admin_client, reverse("admin:trading_order_changelist"))
    assert '<td class="field-avg_price">45000.5</td>' in orders
    assert '<td class="field-quantity">0.111</td>' in orders
    assert '<td class="field-commission">0</td>' in orders
    positions = page(admin_client, reverse("admin:trading_position_changelist"))
    assert '<td class="field-entry_price">45000</td>' in positions
    assert '<td class="field-amount">0.002</td>' in positions
    executions = page(admin_client, reverse("admin:trading_execution_changelist"))
    assert '<td class="field-fill_price">45000.5</td>' in executions
    for text in (orders, positions, executions):
        assert "0000000" not in text


def test_it_shows_money_and_quantities_normalised_on_a_record(admin_client, execution):
    order = execution.orders.get()
    detail = page(admin_client, reverse("admin:trading_order_change", args=[order.pk]))
    assert '<div class="readonly">45000.5</div>' in detail
    assert '<div class="readonly">0.111</div>' in detail
    assert "45000.5000000000" not in detail
    inline = page(admin_client, reverse("admin:trading_execution_change", args=[execution.pk]))
    assert re.search(r'<td class="field-avg_price">\s*<p>45000.5</p>', inline)
    assert "45000.5000000000" not in inline


def test_it_keeps_the_sort_on_a_normalised_column(admin_client, execution):
    make_execution(2, fill_price=Decimal("44000"))
    response = admin_client.get(reverse("admin:trading_execution_changelist") + "?o=7")
    assert response.status_code == 200
    assert [row.fill_price for row in response.context["cl"].result_list] == [Decimal("44000"), Decimal("45000.5")]


def test_it_shows_a_strategys_percentages_normalised(admin_client):
    strategy = StrategyPreference.objects.create(name="ALSAPRO 1", allocation_pct=Decimal("12.5"))
    listing = page(admin_client, reverse("admin:preferences_strategypreference_changelist"))
    assert '<td class="field-allocation_pct">12.5</td>' in listing
    form = page(admin_client, reverse("admin:preferences_strategypreference_change", args=[strategy.pk]))
    assert 'name="allocation_pct" value="12.5"' in form and 'name="price_tolerance_pct" value="5"' in form


def test_it_renders_the_decision_as_legs_and_sizing_inputs(admin_client, execution):
    detail = page(admin_client, reverse("admin:trading_execution_change", args=[execution.pk]))
    assert "<table class='decision-legs'>" in detail
    assert "<tr><td>1</td><td>open</td><td>BUY</td><td class='num'>0.111</td><td>no</td><td>BOTH</td></tr>" in detail
    assert "<tr><th scope='row'>Account equity</th><td class='num'>10000</td></tr>" in detail
    assert "<tr><th scope='row'>Quantity before rounding</th><td class='num'>0.111111111111</td></tr>" in detail
    assert "<strong>trade</strong>: open long 0.111 at 45000" in detail
    assert '"legs"' not in detail and "&quot;legs&quot;" not in detail


def test_it_shows_a_decision_it_cannot_read_as_stored(admin_client):
    execution = make_execution(1, decision={"note": "<b>old format</b>"})
    detail = page(admin_client, reverse("admin:trading_execution_change", args=[execution.pk]))
    assert "&quot;note&quot;: &quot;&lt;b&gt;old format&lt;/b&gt;&quot;" in detail
    assert "<b>old format</b>" not in detail


def test_it_shows_latency_stamps_to_the_millisecond(admin_client, execution):
    listing = page(admin_client, reverse("admin:trading_execution_changelist"))
    assert "2025-01-15 14:30:05.123 UTC" in listing
    detail = page(admin_client, reverse("admin:trading_execution_change", args=[execution.pk]))
    for stamp in ("14:30:05.123", "14:30:05.125", "14:30:05.133", "14:30:05.135", "14:30:05.163", "14:30:05.168"):
        assert f"2025-01-15 {stamp} UTC" in detail, stamp
    assert "queue: 2.0, dispatch: 8.0, prepare: 2.0, exchange: 28.0, total: 45.0" in detail
    order = execution.orders.get()
    Order.objects.filter(pk=order.pk).update(created_at=RECEIVED, sent_at=RECEIVED, acknowledged_at=RECEIVED)
    assert "2025-01-15 14:30:05.123 UTC" in page(admin_client, reverse("admin:trading_order_change", args=[order.pk]))
    signal = page(admin_client, reverse("admin:trading_signal_changelist"))
    assert "2025-01-15 14:30:05.123 UTC" in signal


def test_it_lists_trading_first_and_leads_view_site_to_the_trader_pages(admin_client):
    response = admin_client.get(reverse("admin:index"))
    labels = [app["app_label"] for app in response.context["app_list"]]
    assert labels[:3] == ["trading", "preferences", "analytics"]
    assert response.context["site_url"] == "/ui/"
    assert '<a href="/ui/">View site</a>' in response.content.decode()


def test_it_keeps_internal_tables_from_staff_who_are_not_superusers(staff_client):
    response = staff_client.get(reverse("admin:index"))
    shown = {model["object_name"] for app in response.context["app_list"] for model in app["models"]}
    assert {"Signal", "Execution", "Order", "Position", "SymbolSetting", "StrategyPreference"} <= shown
    assert not shown & {model.__name__ for model in INTERNAL}
    assert not any(app["app_label"] == "django_q" for app in response.context["app_list"])
    for model in INTERNAL:
        assert staff_client.get(reverse(f"admin:trading_{model._meta.model_name}_changelist")).status_code == 403
    if uses_orm_broker():  # django-q2 lists its queue table in the admin only with the ORM broker
        assert staff_client.get(reverse("admin:django_q_ormq_changelist")).status_code == 403
    assert staff_client.get(reverse("admin:django_q_schedule_changelist")).status_code == 403
    assert staff_client.get(reverse("admin:django_q_schedule_add")).status_code == 403
    assert staff_client.get(reverse("admin:trading_signal_changelist")).status_code == 200


def test_it_shows_internal_tables_to_a_superuser(admin_client):
    response = admin_client.get(reverse("admin:index"))
    shown = {model["object_name"] for app in response.context["app_list"] for model in app["models"]}
    assert {model.__name__ for model in INTERNAL} <= shown
    assert {"Schedule", "Success", "Failure"} | ({"OrmQ"} if uses_orm_broker() else set()) <= shown


def test_it_shows_the_leverage_and_margin_type_applied_on_this_account(admin_client):
    position = Position.objects.create(symbol="BTCUSDT", amount=Decimal("0.002"), entry_price=Decimal("45000"))
    Position.objects.create(symbol="ETHUSDT", amount=Decimal("1"), entry_price=Decimal("3000"))
    SymbolSetting.objects.create(account="paper", symbol="BTCUSDT", leverage=5, margin_type="isolated")
    SymbolSetting.objects.create(account="binance-live-0123456789", symbol="BTCUSDT", leverage=20, margin_type="cross")
    listing = page(admin_client, reverse("admin:trading_position_changelist"))
    assert '<td class="field-applied_leverage">5x</td>' in listing
    assert '<td class="field-applied_margin_type">isolated</td>' in listing
    assert '<td class="field-applied_leverage">not set yet</td>' in listing  # ETHUSDT: nothing set on this account
    assert "20x" not in listing
    detail = page(admin_client, reverse("admin:trading_position_change", args=[position.pk]))
    assert '<div class="readonly">5x</div>' in detail and '<div class="readonly">isolated</div>' in detail

