"""A strategy's products are the exchange's tradable symbols: `BTC` is stored as BTCUSDT, an unknown one
is refused by name with the nearest that trade, through the admin's form, the pages and the API alike."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from preferences.forms import StrategyPreferenceForm
from preferences.models import StrategyPreference
from preferences.symbols import resolve, resolve_one

TRADABLE = frozenset({"BTCUSDT", "ETHUSDT", "1000PEPEUSDT", "SOLUSDT"})


@pytest.mark.parametrize("typed", ["BTC", "btc", "BTCUSDT", "btcusdt", "BTCUSDT.P", "BINANCE:BTCUSDT.P", "BTCUSDTPERP"])
def test_it_resolves_every_form_a_trader_types_to_the_perpetual(typed):
    assert resolve_one(typed, TRADABLE) == "BTCUSDT"


def test_it_resolves_a_base_asset_with_a_multiplier_prefix():
    assert resolve_one("1000pepe", TRADABLE) == "1000PEPEUSDT"


def test_it_names_the_unknown_symbols_and_the_nearest_that_trade():
    resolved = resolve(["BTC", "NOPEUSDT", "ETHUSTD"], TRADABLE)
    assert resolved.symbols == ("BTCUSDT",)
    assert resolved.unknown == ("NOPEUSDT", "ETHUSTD")
    assert "ETHUSDT" in resolved.suggestions
    assert resolved.problem().startswith("not a tradable USDⓈ-M perpetual: NOPEUSDT, ETHUSTD (nearest: ")


def test_it_keeps_one_of_each_symbol_in_the_order_given():
    assert resolve(["eth", "BTC", "ETHUSDT.P"], TRADABLE).symbols == ("ETHUSDT", "BTCUSDT")


def form(products: str, instance: StrategyPreference | None = None) -> StrategyPreferenceForm:
    data = {"name": "S", "enabled": "on", "products": products, "direction": "both", "leverage": "1",
            "margin_type": "cross", "sizing": "auto", "allocation_pct": "10", "price_tolerance_pct": "5"}
    return StrategyPreferenceForm(data=data, instance=instance or StrategyPreference())


@pytest.mark.django_db
def test_it_stores_btc_as_btcusdt():
    saved = form("BTC, eth").save()
    assert StrategyPreference.objects.get(pk=saved.pk).products == ["BTCUSDT", "ETHUSDT"]


@pytest.mark.django_db
def test_it_refuses_an_unknown_symbol_by_name():
    bound = form("BTC, NOPEUSDT")
    assert not bound.is_valid()
    assert "NOPEUSDT" in bound.errors["products"][0]
    assert not StrategyPreference.objects.exists()


@pytest.mark.django_db
def test_it_does_not_ask_the_exchange_again_for_symbols_already_saved():
    legacy = StrategyPreference.objects.create(name="S", products=["DELISTEDUSDT"])
    assert form("DELISTEDUSDT", legacy).is_valid()  # saved before the check existed: another change still saves
    assert not form("DELISTEDUSDT, NOPEUSDT", legacy).is_valid()


@pytest.mark.django_db
def test_it_answers_400_naming_the_symbol_through_the_api(django_user_model):
    user = django_user_model.objects.create_user("api")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["change_strategypreference",
                                                                       "add_strategypreference"]))
    api = APIClient()
    api.force_authenticate(user)
    response = api.post("/preferences/product", {"strategy": "S", "value": ["BTC", "NOPEUSDT"]}, format="json")
    # Well-formed (the schema's 400s), refused for the exchange's list of the moment.
    assert response.status_code == 400 and "NOPEUSDT" in response.json()["product"][0]
    good = api.post("/preferences/product", {"strategy": "S", "value": "btc, SOLUSDT.P"}, format="json")
    assert good.status_code == 201 and good.json()["products"] == ["BTCUSDT", "SOLUSDT"]
