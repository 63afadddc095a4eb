"""`/accounts`: the registry as scripts see it. Keys go in once, verified by the exchange, and never
come back out; adding and halting need their permissions."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from tests.fakes.binance_server import API_KEY, API_SECRET
from tests.support.keys import encryption_key  # noqa: F401 (the fixture)
from trading.models import Account, Position, Signal

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("encryption_key")]


BODY = {"name": "second", "exchange": "binance", "testnet": True, "api_key": API_KEY, "api_secret": API_SECRET}


@pytest.fixture
def operator(django_user_model):
    user = django_user_model.objects.create_user("operator", password="an-operator-password")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_account", "change_account"]))
    return user


@pytest.fixture
def operator_api(operator) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator)
    return client


def test_it_lists_the_default_account_from_the_environment(api, binance_settings):
    [default] = api.get("/accounts").json()
    assert default == {"name": "default", "exchange": "binance", "environment": "testnet", "position_mode": "",
                       "multi_assets": None, "key_hint": API_KEY[-4:], "halted": False, "halted_reason": ""}


def test_it_adds_an_account_once_the_exchange_accepts_its_key(operator_api, binance_settings, binance_fake):
    binance_fake.hedge_mode = True
    answer = operator_api.post("/accounts", BODY, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json() == {"name": "second", "exchange": "binance", "environment": "testnet", "position_mode": "hedge",
                             "multi_assets": False, "key_hint": API_KEY[-4:], "halted": False, "halted_reason": ""}
    listed = operator_api.get("/accounts")
    assert [account["name"] for account in listed.json()] == ["default", "second"]
    for response in (answer, listed):
        assert API_KEY.encode() not in response.content and API_SECRET.encode() not in response.content
    stored = Account.objects.get(name="second")
    assert API_KEY not in stored.api_key and API_SECRET not in stored.api_secret  # tokens, not the keys
    assert stored.api_secret.encode() not in listed.content


@pytest.mark.parametrize(("change", "words"), [
    ({"api_secret": "not-the-secret-000"}, "the request signature was refused: check the API secret (Binance -1022"),
    ({"api_key": "not-the-key-0000000"}, "the API key was refused: check the key, its IP allow-list"),
    ({"name": "default"}, "`default` is the environment's account"),
    ({"exchange": "paper"}, "paper accounts other than `default` are not supported yet"),
])
def test_it_refuses_an_account_in_words(operator_api, binance_settings, change, words):
    answer = operator_api.post("/accounts", {**BODY, **change}, format="json")
    assert answer.status_code == 400 and words in answer.json()["detail"]
    assert not Account.objects.exclude(name="default").exists()
    assert "not-the-secret-000" not in answer.content.decode()


def test_it_refuses_a_taken_name_and_a_name_that_is_not_a_slug(operator_api, binance_settings):
    assert operator_api.post("/accounts", BODY, format="json").status_code == 201
    again = operator_api.post("/accounts", BODY, format="json")
    assert again.status_code == 400 and again.json() == {"detail": "an account named 'second' exists already"}
    for name in ("two words", "second\n", ""):
        assert list(operator_api.post("/accounts", {**BODY, "name": name}, format="json").json()) == ["name"]


def test_it_says_when_the_exchange_cannot_be_asked(operator_api, binance_settings):
    binance_settings.BINANCE_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    answer = operator_api.post("/accounts", BODY, format="json")
    assert answer.status_code == 503 and "could not be asked" in answer.json()["detail"]
    assert not Account.objects.exclude(name="default").exists()


def test_adding_and_halting_need_their_permissions(api, binance_settings):
    assert api.post("/accounts", BODY, format="json").status_code == 403
    answer = api.post("/accounts/default/halt", {"halted": True}, format="json")
    assert answer.status_code == 403 and "trading.change_account" in answer.json()["detail"]
    assert not Account.objects.get(name="default").halted and not Account.objects.exclude(name="default").exists()


def test_it_halts_an_account_by_name(operator_api, binance_settings):
    assert operator_api.post("/accounts/nope/halt", {"halted": True}, format="json").status_code == 404
    answer = operator_api.post("/accounts/default/halt", {"halted": True, "reason": "incident"}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["halted"], answer.json()["halted_reason"], answer.json()["flattening"]) == (True, "incident", [])
    default = Account.objects.get(name="default")
    assert (default.halted, default.halted_reason, default.changed_by) == (True, "incident", "operator")
    answer = operator_api.post("/accounts/default/halt", {"halted": False}, format="json")
    assert answer.json()["halted"] is False and not Account.objects.get(name="default").halted


def test_flatten_closes_the_default_accounts_positions_and_only_its(operator_api, binance_settings):
    Position.objects.create(symbol="BTCUSDT", amount="0.002")
    answer = operator_api.post("/accounts/default/halt", {"halted": True, "flatten": True}, format="json")
    [signal_id] = answer.json()["flattening"]
    assert Signal.objects.get(pk=signal_id).action == "close"
    operator_api.post("/accounts", BODY, format="json")
    refused = operator_api.post("/accounts/second/halt", {"halted": True, "flatten": True}, format="json")
    assert refused.status_code == 400 and "does not trade yet" in refused.json()["detail"]
    assert not Account.objects.get(name="second").halted
