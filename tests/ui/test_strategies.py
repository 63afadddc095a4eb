"""The configuration pages under /ui/strategies/: who may read and change them, the admin's validation,
the change read back through the REST API, and the strategy's own passphrase set once, shown once."""

import json
import logging
import secrets
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.test import Client

from preferences.models import StrategyPreference
from preferences.views import PASSPHRASE_PLACEHOLDER, SHOW_ONCE, alert_message
from tests.support.forms import strategy_form
from tests.support.users import strategy_editor
from trading.models import Signal
from trading.webhook import RATE_LIMITER

pytestmark = pytest.mark.django_db

OLD_PASSPHRASE = "the-old-strategy-passphrase"
VALID = strategy_form(products="BTCUSDT, ETHUSDT")


@pytest.fixture(autouse=True)
def _fresh_rate_limit():
    RATE_LIMITER.reset()
    yield
    RATE_LIMITER.reset()


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(
        name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=3, allocation_pct=Decimal("25")
    )


@pytest.fixture
def staff(django_user_model):
    return strategy_editor(django_user_model, "staff", "a-staff-password")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def webhook(body: dict | str, *, content_type: str = "application/json"):
    text = body if isinstance(body, str) else json.dumps(body)
    return Client().post("/webhook", text, content_type=content_type)


def signal(passphrase: str) -> dict:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {"action": "buy", "symbol": "BTCUSDT", "quantity": 0.001, "price": 45000, "strategy": "ALSAPRO 1",
            "time": now, "id": secrets.token_hex(8), "passphrase": passphrase}


def rotate(client, strategy: StrategyPreference) -> str:
    """Rotates through the page and reads the new passphrase off the page that shows it."""
    response = client.post(f"/ui/strategies/{strategy.pk}/passphrase/")
    assert response.status_code == 302 and response["Location"] == f"/ui/strategies/{strategy.pk}/"
    page = client.get(response["Location"])
    passphrase = page.context["new_passphrase"]
    assert len(passphrase) >= 32 and passphrase in page.content.decode()
    return passphrase


@pytest.mark.parametrize("url", ["/ui/strategies/", "/ui/strategies/new/", "/ui/strategies/1/"])
def test_it_sends_an_anonymous_visitor_to_the_login_page(client, strategy, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_it_refuses_an_anonymous_rotation(client, strategy):
    response = client.post(f"/ui/strategies/{strategy.pk}/passphrase/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    strategy.refresh_from_db()
    assert strategy.passphrase_hash == ""


def test_it_lists_every_strategy_with_its_settings(trader_client, strategy, django_assert_max_num_queries):
    StrategyPreference.objects.create(name="ALSAPRO 2", enabled=False, direction="short", margin_type="isolated")
    strategy.set_passphrase(OLD_PASSPHRASE)
    strategy.save()
    with django_assert_max_num_queries(6):
        response = trader_client.get("/ui/strategies/")
    assert response.status_code == 200
    page = response.content.decode()
    assert [row.name for row in response.context["strategies"]] == ["ALSAPRO 1", "ALSAPRO 2"]
    for text in ("BTCUSDT, ETHUSDT", "3×", "25 %", "Enabled", "Disabled", "Short only", "Isolated",
                 "quantity when it has one, else allocation"):
        assert text in page, text
    assert "25.0000" not in page
    assert 'href="/ui/strategies/new/"' not in page  # a reader may not add one


def test_it_keeps_the_list_to_a_few_queries_however_many_strategies(trader_client, django_assert_max_num_queries):
    StrategyPreference.objects.bulk_create(StrategyPreference(name=f"S{n}", products=["BTCUSDT"]) for n in range(200))
    with django_assert_max_num_queries(6):
        assert trader_client.get("/ui/strategies/").status_code == 200


def test_it_says_what_to_do_when_there_is_no_strategy(staff_client):
    page = staff_client.get("/ui/strategies/").content.decode()
    assert "No strategies yet" in page and 'href="/ui/strategies/new/"' in page


def test_it_shows_a_reader_the_settings_read_only(trader_client, strategy):
    response = trader_client.get(f"/ui/strategies/{strategy.pk}/")
    assert response.status_code == 200
    page = response.content.decode()
    assert response.context["may_save"] is False
    assert all(field.disabled for field in response.context["form"].fields.values())
    assert 'name="leverage" value="3"' in page and "disabled" in page
    assert 'value="25"' in page  # allocation normalised, not 25.0000
    assert 'type="submit">Save' not in page
    assert 'name="new_passphrase"' not in page
    assert "/passphrase/" not in page
    assert "Read only" in page


@pytest.mark.parametrize("url", ["/ui/strategies/new/", "/ui/strategies/{pk}/", "/ui/strategies/{pk}/passphrase/"])
def test_it_refuses_a_post_without_the_permission(trader_client, strategy, url):
    response = trader_client.post(url.format(pk=strategy.pk), {**VALID, "name": "ALSAPRO 9", "leverage": "20"})
    assert response.status_code == 403
    strategy.refresh_from_db()
    assert (strategy.name, strategy.leverage, strategy.passphrase_hash) == ("ALSAPRO 1", 3, "")
    assert StrategyPreference.objects.count() == 1


def test_it_refuses_a_new_strategy_to_a_user_who_may_only_change(client, django_user_model, strategy):
    user = django_user_model.objects.create_user("changer")
    user.user_permissions.add(Permission.objects.get(codename="change_strategypreference"))
    client.force_login(user)
    assert client.get("/ui/strategies/new/").context["may_save"] is False
    assert client.post("/ui/strategies/new/", {**VALID, "name": "ALSAPRO 2"}).status_code == 403
    assert client.post(f"/ui/strategies/{strategy.pk}/", {**VALID, "leverage": "7"}).status_code == 302


def test_it_saves_a_change_the_api_then_reads(staff_client, strategy):
    response = staff_client.post(f"/ui/strategies/{strategy.pk}/", {
        **VALID, "products": "btcusdt solusdt", "leverage": "7", "direction": "long", "margin_type": "isolated",
        "allocation_pct": "12.5", "max_signal_age": "30",
    })
    assert response.status_code == 302 and response["Location"] == f"/ui/strategies/{strategy.pk}/"
    assert "Saved ALSAPRO 1." in staff_client.get(response["Location"]).content.decode()

    [current] = staff_client.get("/preferences/current").json()
    assert current["name"] == "ALSAPRO 1"
    assert current["products"] == ["BTCUSDT", "SOLUSDT"]
    assert (current["leverage"], current["direction"], current["margin_type"]) == (7, "long", "isolated")
    assert (current["allocation_pct"], current["max_signal_age"]) == ("12.5", 30)


def test_it_creates_a_strategy(staff_client):
    response = staff_client.post("/ui/strategies/new/", {**VALID, "name": "ALSAPRO 2", "new_passphrase": OLD_PASSPHRASE})
    created = StrategyPreference.objects.get(name="ALSAPRO 2")
    assert response.status_code == 302 and response["Location"] == f"/ui/strategies/{created.pk}/"
    assert created.products == ["BTCUSDT", "ETHUSDT"] and created.leverage == 5
    assert created.check_passphrase(OLD_PASSPHRASE)
    assert OLD_PASSPHRASE not in staff_client.get(response["Location"]).content.decode()


@pytest.mark.parametrize("field, value", [
    ("leverage", "126"), ("leverage", "0"), ("allocation_pct", "0"), ("products", "BTC-USDT"), ("new_passphrase", "short"),
])
def test_it_explains_a_bad_value_in_the_admins_words(staff_client, admin_client, strategy, field, value):
    data = {**VALID, field: value}
    page = staff_client.post(f"/ui/strategies/{strategy.pk}/", data)
    admin = admin_client.post(f"/admin/preferences/strategypreference/{strategy.pk}/change/", data)
    assert page.status_code == 200 and admin.status_code == 200
    messages = page.context["form"].errors[field]
    assert messages == admin.context["adminform"].form.errors[field]
    assert all(message in page.content.decode() for message in messages)
    strategy.refresh_from_db()
    assert strategy.leverage == 3 and strategy.products == ["BTCUSDT", "ETHUSDT"]


def test_it_says_why_leverage_126_is_refused(staff_client, strategy):
    page = staff_client.post(f"/ui/strategies/{strategy.pk}/", {**VALID, "leverage": "126"}).content.decode()
    assert "Ensure this value is less than or equal to 125." in page


def test_it_shows_a_rotated_passphrase_once_and_never_again(staff_client, strategy, caplog):
    caplog.set_level(logging.DEBUG)
    passphrase = rotate(staff_client, strategy)
    strategy.refresh_from_db()
    assert strategy.check_passphrase(passphrase)
    assert SHOW_ONCE not in staff_client.session
    assert passphrase not in json.dumps(dict(staff_client.session.items()))

    again = staff_client.get(f"/ui/strategies/{strategy.pk}/")
    assert again.context["new_passphrase"] == ""
    assert passphrase not in again.content.decode()
    assert passphrase not in caplog.text
    assert "no-store" in again["Cache-Control"]


def test_it_shows_a_passphrase_only_on_its_own_strategys_page(staff_client, strategy):
    other = StrategyPreference.objects.create(name="ALSAPRO 2")
    staff_client.post(f"/ui/strategies/{strategy.pk}/passphrase/")
    assert staff_client.get(f"/ui/strategies/{other.pk}/").context["new_passphrase"] == ""
    assert staff_client.get(f"/ui/strategies/{strategy.pk}/").context["new_passphrase"] == ""  # taken out already


def test_it_stops_the_old_passphrase_at_the_webhook(staff_client, strategy, django_capture_on_commit_callbacks):
    strategy.set_passphrase(OLD_PASSPHRASE)
    strategy.save()
    with django_capture_on_commit_callbacks(execute=True):
        assert webhook(signal(OLD_PASSPHRASE)).status_code == 202

    new = rotate(staff_client, strategy)

    with django_capture_on_commit_callbacks(execute=True):
        refused = webhook(signal(OLD_PASSPHRASE))
        accepted = webhook(signal(new))
    assert refused.status_code == 401 and refused.json()["error"] == "wrong or missing passphrase"
    assert accepted.status_code == 202
    assert Signal.objects.get(pk=accepted.json()["signal_id"]).status == "queued"


def test_it_stops_the_servers_passphrase_for_a_strategy_given_its_own(staff_client, strategy):
    new = rotate(staff_client, strategy)
    assert webhook(signal(settings.WEBHOOK_PASSPHRASE)).status_code == 401
    assert webhook(signal(new)).status_code == 202


def test_it_puts_no_real_passphrase_in_the_alert_message(staff_client, strategy):
    # Not even on the one page that shows the passphrase.
    staff_client.post(f"/ui/strategies/{strategy.pk}/passphrase/")
    once = staff_client.get(f"/ui/strategies/{strategy.pk}/")
    passphrase = once.context["new_passphrase"]
    assert passphrase and passphrase not in once.context["alert_message"]
    assert f'"passphrase": {json.dumps(PASSPHRASE_PLACEHOLDER)}' in once.context["alert_message"]
    assert once.content.decode().count(passphrase) == 1


def test_it_gives_the_webhook_url_and_a_message_the_webhook_accepts(staff_client, strategy):
    passphrase = rotate(staff_client, strategy)
    response = staff_client.get(f"/ui/strategies/{strategy.pk}/")
    assert response.context["webhook_url"] == "http://testserver/webhook"
    message = response.context["alert_message"]
    assert '"price": {{close}},' in message and '"strategy": "ALSAPRO 1",' in message
    assert '"id": "{{strategy.order.id}}-{{timenow}}",' in message
    # What TradingView sends once it has filled the placeholders in, as text/plain.
    filled = message
    for placeholder, value in {
        "{{strategy.order.action}}": "sell", "{{ticker}}": "BINANCE:BTCUSDT.P", "{{close}}": "45000.5",
        "{{strategy.order.contracts}}": "0.015", "{{strategy.market_position}}": "short",
        "{{strategy.prev_market_position}}": "long", "{{strategy.position_size}}": "-0.015",
        "{{timenow}}": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "{{strategy.order.id}}": "Short entry",
        PASSPHRASE_PLACEHOLDER: passphrase,
    }.items():
        filled = filled.replace(placeholder, value)
    assert "{{" not in filled
    answer = webhook(filled, content_type="text/plain; charset=utf-8")
    assert answer.status_code == 202, answer.content
    stored = Signal.objects.get(pk=answer.json()["signal_id"])
    assert (stored.action, stored.symbol) == ("sell", "BTCUSDT")
    assert (stored.quantity, stored.price) == (Decimal("0.015"), Decimal("45000.5"))
    assert (stored.market_position, stored.prev_market_position, stored.position_size) == ("short", "long", Decimal("-0.015"))
    assert stored.idempotency_key.startswith("id:ALSAPRO 1:Short entry-")


def test_it_builds_the_webhook_url_from_the_request(staff_client, strategy, settings):
    settings.ALLOWED_HOSTS = ["trade.example.com"]
    response = staff_client.get(f"/ui/strategies/{strategy.pk}/", HTTP_HOST="trade.example.com", secure=True)
    assert response.context["webhook_url"] == "https://trade.example.com/webhook"


def test_it_writes_a_strategy_name_safely_into_the_message():
    message = alert_message('Say "hi" \\ ok')
    assert '"strategy": "Say \\"hi\\" \\\\ ok",' in message
