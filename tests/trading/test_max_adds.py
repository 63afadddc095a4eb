"""The pyramiding cap (issue #20): `max_adds` same-direction adds while a position is open, counted
since it last opened; the next add is refused with the reason, a close or a new position is not.
Through POST /webhook → worker → the Binance adapter → the fake exchange, one-way and hedge mode;
and set through the API, the admin and the strategy page."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from preferences.models import StrategyPreference
from tests.support.forms import strategy_form
from tests.support.users import strategy_editor
from tests.support.webhook import alert, strategy_create, webhook_client  # noqa: F401 (the `client` fixture)
from trading import engine
from trading.exchange.base import SymbolRules
from trading.models import Execution, Order, Position

D = Decimal


def capped(limit: int | None) -> StrategyPreference:
    return strategy_create(sizing="allocation", allocation_pct=D(10), max_adds=limit)


def mirror() -> dict[str, Decimal]:
    return {p.position_side: p.amount for p in Position.objects.filter(symbol="BTCUSDT")}


def test_it_allows_adds_up_to_the_cap_and_refuses_the_next_saying_why(client, binance_fake, db):
    capped(2)
    opened = alert(client)
    assert [alert(client).status for _ in range(2)] == [Execution.Status.FILLED] * 2  # exactly at the cap
    refused = alert(client)
    assert refused.status == Execution.Status.SKIPPED
    assert refused.reason.startswith("no order sent: max adds reached: 2 adds since the long opened at ")
    assert refused.reason.endswith(", the strategy's limit is 2")
    assert f"{opened.orders.get().acknowledged_at:%Y-%m-%d %H:%M:%S} UTC" in refused.reason
    assert not refused.orders.exists() and len(binance_fake.requests_to("/fapi/v1/order", "POST")) == 3
    assert mirror() == {"BOTH": D("0.333")}


def test_a_cap_of_zero_refuses_every_add_but_not_the_close_nor_the_next_open(client, binance_fake, db):
    capped(0)
    alert(client)
    refused = alert(client)
    assert "max adds reached: 0 adds since the long opened at" in refused.reason and not refused.orders.exists()
    assert alert(client, "close").status == Execution.Status.FILLED
    assert alert(client).status == Execution.Status.FILLED  # a new position, not an add
    assert mirror() == {"BOTH": D("0.111")}


def test_the_count_starts_again_when_the_position_opens_again(client, binance_fake, db):
    capped(1)
    alert(client)
    alert(client)
    assert "max adds reached: 1 add since" in alert(client).reason
    reversal = alert(client, "sell")  # closes the long and opens a short: its adds are its own
    assert list(reversal.orders.order_by("leg").values_list("purpose", flat=True)) == ["close", "open"]
    assert alert(client, "sell").status == Execution.Status.FILLED
    assert "1 add since the short opened at" in alert(client, "sell").reason
    assert Order.objects.filter(purpose="add").count() == 2


def test_no_cap_means_unlimited_adds(client, binance_fake, db):
    capped(None)
    assert [alert(client).status for _ in range(4)] == [Execution.Status.FILLED] * 4
    assert mirror() == {"BOTH": D("0.444")}


def test_in_hedge_mode_each_side_counts_its_own_adds(client, binance_fake, db):
    binance_fake.hedge_mode = True
    capped(1)
    alert(client)
    alert(client, "sell")
    assert alert(client).status == Execution.Status.FILLED  # the long's one add
    assert alert(client, "sell").status == Execution.Status.FILLED  # the short's own
    long_refused = alert(client)
    assert "max adds reached: 1 add since the long opened at" in long_refused.reason
    assert "1 add since the short opened at" in alert(client, "sell").reason
    assert alert(client, "close_long").status == Execution.Status.FILLED
    assert alert(client).status == Execution.Status.FILLED  # the long opens again
    assert mirror() == {"LONG": D("0.111"), "SHORT": D("-0.222")}


def test_the_engine_applies_the_add_refusal_to_adds_only():
    rules = SymbolRules(symbol="BTCUSDT", step_size=D("0.001"), min_qty=D("0.001"), max_qty=D(1000), tick_size=D("0.1"),
                        min_notional=D("5"))
    refusing = engine.Preference(adds_refused="max adds reached", sizing="signal")
    intent = engine.Intent(action="buy", quantity=D("0.1"), price=D(45000))
    added = engine.plan(intent=intent, preference=refusing, book=engine.Book(long=D("0.1")), rules=rules,
                        mark=None, equity=None)
    assert (added.outcome, added.reason) == (engine.Outcome.REFUSED, "no order sent: max adds reached")
    opened = engine.plan(intent=intent, preference=refusing, book=engine.Book(), rules=rules, mark=None, equity=None)
    assert opened.outcome == engine.Outcome.TRADE and opened.legs[0].purpose == "open"


@pytest.fixture
def editor(django_user_model):
    return strategy_editor(django_user_model)


def test_it_sets_max_adds_through_the_api_the_page_and_the_admin(editor, admin_client):
    strategy = capped(None)
    api = APIClient()
    api.force_authenticate(editor)
    for value, stored in ((0, 0), (3, 3), (None, None)):
        answer = api.post("/preferences/max_adds", {"strategy": "ALSAPRO 1", "value": value}, format="json")
        assert answer.status_code == 200 and answer.json()["max_adds"] == stored
    bad = api.post("/preferences/max_adds", {"strategy": "ALSAPRO 1", "value": -1}, format="json")
    assert bad.status_code == 400 and "max_adds" in bad.json()
    form = strategy_form(max_adds="2")
    page = Client()
    page.force_login(editor)
    assert 'name="max_adds"' in page.get(f"/ui/strategies/{strategy.pk}/").content.decode()
    assert page.post(f"/ui/strategies/{strategy.pk}/", form).status_code == 302
    strategy.refresh_from_db()
    assert strategy.max_adds == 2
    admin = reverse("admin:preferences_strategypreference_change", args=[strategy.pk])
    assert admin_client.post(admin, {**form, "max_adds": "0"}).status_code == 302
    strategy.refresh_from_db()
    assert strategy.max_adds == 0
