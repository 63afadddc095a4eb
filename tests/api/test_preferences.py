from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from preferences.models import StrategyPreference

pytestmark = pytest.mark.django_db


@pytest.fixture
def strategy() -> StrategyPreference:
    preference = StrategyPreference(
        name="ALSAPRO 1", products=["BTCUSDT"], direction="both", leverage=5, allocation_pct=Decimal("12.5"),
        margin_type="cross", sizing="allocation", max_signal_age=120,
    )
    preference.set_passphrase("a-long-strategy-secret")
    preference.save()
    return preference


def stored(name: str = "ALSAPRO 1") -> dict:
    return model_to_dict(StrategyPreference.objects.get(name=name))


def test_it_lists_every_strategy_without_the_passphrase_hash(api, strategy):
    StrategyPreference.objects.create(name="Disabled one", enabled=False)
    response = api.get("/preferences/current")
    assert response.status_code == 200
    assert strategy.passphrase_hash not in response.content.decode()
    first, second = response.json()
    assert first == {
        "name": "ALSAPRO 1", "enabled": True, "products": ["BTCUSDT"], "direction": "both", "leverage": 5,
        "margin_type": "cross", "sizing": "allocation", "allocation_pct": "12.5", "risk_pct": None,
        "max_position_usdt": None, "price_tolerance_pct": "5",
        "entry": "market", "entry_offset_pct": "0", "entry_timeout": 60, "on_timeout": "cancel",
        "stop_loss": None, "take_profit": None, "take_profit_ladder": None, "breakeven_after": None,
        "breakeven_to": "entry", "trailing_stop": None,
        "max_daily_loss": None, "max_open_positions": None,
        "max_adds": None, "sync_to_alert": False, "halted_until": None, "cooldown_after_loss": None, "max_trades_per_day": None,
        "loss_streak_limit": None, "max_drawdown_pct": None, "drawdown_locked_at": None, "trading_hours": "",
        "max_signal_age": 120, "has_own_passphrase": True, "updated_at": first["updated_at"],
    }
    assert (second["name"], second["enabled"], second["has_own_passphrase"]) == ("Disabled one", False, False)
    assert "passphrase_hash" not in second


@pytest.mark.parametrize(
    "kind, value, field, expected",
    [
        ("product", ["btcusdt", "ETHUSDT"], "products", ["BTCUSDT", "ETHUSDT"]),
        ("product", "ETHUSDT, solusdt", "products", ["ETHUSDT", "SOLUSDT"]),
        ("product", [], "products", []),
        ("strategy", False, "enabled", False),
        ("strategy", "false", "enabled", False),
        ("direction", "long", "direction", "long"),
        ("leverage", 125, "leverage", 125),
        ("leverage", 1, "leverage", 1),
        ("allocation", 100, "allocation_pct", Decimal("100")),
        ("allocation", 0.5, "allocation_pct", Decimal("0.5")),
        ("allocation", 0.0001, "allocation_pct", Decimal("0.0001")),
        # Kept to the column's 4 decimals, half to even, rather than refused: a schema's multipleOf
        # cannot say "4 decimals" of a binary float.
        ("allocation", 12.34565, "allocation_pct", Decimal("12.3456")),
        ("max_daily_loss", None, "max_daily_loss", None),
        ("trading_hours", "MON-fri 07:00-21:00, sun 18:00 - 24:00", "trading_hours", "MON-fri 07:00-21:00, sun 18:00 - 24:00"),
        ("margin", "isolated", "margin_type", "isolated"),
        ("sizing", "signal", "sizing", "signal"),
    ],
)
def test_it_sets_one_preference(editor_api, strategy, kind, value, field, expected):
    before = stored()
    response = editor_api.post(f"/preferences/{kind}", {"strategy": "ALSAPRO 1", "value": value}, format="json")
    assert response.status_code == 200, response.json()
    after = stored()
    assert after[field] == expected
    assert {k: v for k, v in after.items() if k != field} == {k: v for k, v in before.items() if k != field}
    assert response.json()["name"] == "ALSAPRO 1"
    assert response.json()["has_own_passphrase"] is True


@pytest.mark.parametrize(
    "kind, value, why",
    [
        ("product", ["BTCUSDT", "BTC/USDT"], "Symbols, as a list"),
        ("product", ["BTCUSDT", 5], "Symbols, as a list"),
        ("product", 5, "Symbols, as a list"),
        ("strategy", "maybe", "is not true or false"),
        ("strategy", 1, "is not true or false"),
        ("direction", "sideways", "is not one of long, short, both"),
        ("leverage", 126, "is not a whole number from 1 to 125"),
        ("leverage", 0, "is not a whole number from 1 to 125"),
        ("leverage", 2.5, "whole number"),
        ("leverage", 5.0, "whole number"),
        ("leverage", True, "whole number"),
        ("leverage", "20", "whole number"),
        ("allocation", 0, "is not a number from 0.0001 to 100"),
        ("allocation", 0.00009, "is not a number from 0.0001 to 100"),
        ("allocation", 100.01, "is not a number from 0.0001 to 100"),
        ("allocation", "0.5", "number"),
        ("allocation", None, "number"),
        ("margin", "crossed", "is not one of cross, isolated"),
        ("sizing", "half", "is not one of"),
        ("trading_hours", "mon-fri 25:00-26:00", "UTC windows"),
    ],
)
def test_it_refuses_a_bad_value_naming_the_field_and_why(editor_api, strategy, kind, value, why):
    before = stored()
    response = editor_api.post(f"/preferences/{kind}", {"strategy": "ALSAPRO 1", "value": value}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [kind]
    assert why in body[kind][0]
    assert stored() == before


def test_it_refuses_a_bad_type_listing_the_valid_ones(editor_api, strategy):
    response = editor_api.post("/preferences/colour", {"strategy": "ALSAPRO 1", "value": "red"}, format="json")
    assert response.status_code == 400
    message = response.json()["type"][0]
    assert "'colour'" in message
    for kind in ("product", "strategy", "direction", "leverage", "allocation", "margin", "sizing"):
        assert kind in message


@pytest.mark.parametrize("body", [
    {"value": 5}, {"strategy": "", "value": 5}, {"strategy": " \u3000\t", "value": 5}, {"strategy": "x" * 101, "value": 5},
    {"strategy": "x" * 99 + "  ", "value": 5}, {"strategy": "a\x00b", "value": 5}, {"strategy": 5, "value": 5},
])
def test_it_refuses_a_missing_or_bad_strategy_name(editor_api, body):
    response = editor_api.post("/preferences/leverage", body, format="json")
    assert response.status_code == 400
    assert "strategy" in response.json()
    assert not StrategyPreference.objects.exists()


def test_it_creates_a_new_strategy_with_defaults(editor_api):
    response = editor_api.post("/preferences/leverage", {"strategy": "ALSAPRO 2", "value": 10}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["leverage"], body["allocation_pct"], body["products"]) == ("ALSAPRO 2", 10, "10", [])
    preference = StrategyPreference.objects.get(name="ALSAPRO 2")
    assert (preference.enabled, preference.direction, preference.passphrase_hash) == (True, "both", "")


def test_it_refuses_a_change_without_the_change_permission(api, strategy):
    before = stored()
    response = api.post("/preferences/leverage", {"strategy": "ALSAPRO 1", "value": 20}, format="json")
    assert response.status_code == 403
    assert "change_strategypreference" in response.json()["detail"]
    assert api.post("/preferences/leverage", {"strategy": "New", "value": 20}, format="json").status_code == 403
    assert stored() == before
    assert StrategyPreference.objects.count() == 1


def test_it_refuses_to_create_without_the_add_permission(reader, strategy):
    reader.user_permissions.add(Permission.objects.get(codename="change_strategypreference"))
    client = APIClient()
    client.force_authenticate(reader)
    assert client.post("/preferences/leverage", {"strategy": "ALSAPRO 1", "value": 20}, format="json").status_code == 200
    response = client.post("/preferences/leverage", {"strategy": "ALSAPRO 2", "value": 20}, format="json")
    assert response.status_code == 403
    assert "add_strategypreference" in response.json()["detail"]
    assert not StrategyPreference.objects.filter(name="ALSAPRO 2").exists()


def test_it_agrees_with_the_admin_form(admin_client, editor_api, strategy):
    """The same well-formed value, the same verdict: both go through StrategyPreferenceForm. A symbol
    the exchange does not list is a bad value like any other: 400, naming it."""
    response = editor_api.post("/preferences/product", {"strategy": "ALSAPRO 1", "value": "btcusdt NOSUCHCOINUSDT"},
                               format="json")
    assert response.status_code == 400
    admin_message = response.json()["product"][0]
    page = admin_client.post(f"/admin/preferences/strategypreference/{strategy.pk}/change/", {
        "name": "ALSAPRO 1", "enabled": "on", "products": "btcusdt NOSUCHCOINUSDT", "direction": "both", "leverage": "5",
        "margin_type": "cross", "sizing": "allocation", "allocation_pct": "12.5", "notes": "",
    })
    assert page.status_code == 200
    assert admin_message in page.content.decode()


def test_it_drops_spaces_around_a_strategy_name_counting_them_in_its_length(editor_api, strategy):
    response = editor_api.post("/preferences/leverage", {"strategy": " ALSAPRO 1\u3000", "value": 7}, format="json")
    assert response.status_code == 200
    assert stored()["leverage"] == 7
    response = editor_api.post("/preferences/leverage", {"strategy": "x" * 98 + "  ", "value": 7}, format="json")
    assert response.status_code == 201
    assert StrategyPreference.objects.filter(name="x" * 98).exists()


def test_it_answers_400_for_a_well_formed_value_the_form_refuses(editor_api, strategy):
    before = stored()
    response = editor_api.post("/preferences/trading_hours", {"strategy": "ALSAPRO 1", "value": "07:00-07:00"}, format="json")
    assert response.status_code == 400
    assert "starts and ends at the same time" in response.json()["trading_hours"][0]
    assert stored() == before


def test_it_takes_json_only(editor_api, strategy):
    response = editor_api.post("/preferences/leverage", {"strategy": "ALSAPRO 1", "value": "7"})
    assert response.status_code == 415
    assert stored()["leverage"] == 5


def test_it_reads_a_number_as_written_not_as_a_float(editor_api, strategy):
    body = '{"strategy": "ALSAPRO 1", "value": 12345678901234567.0123456789}'
    response = editor_api.post("/preferences/max_position_usdt", body, content_type="application/json")
    assert response.status_code == 200
    # The answer shows the value saved (SQLite itself keeps a decimal column as a float; PostgreSQL keeps it).
    assert response.json()["max_position_usdt"] == "12345678901234567.0123456789"
