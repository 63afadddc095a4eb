"""The accounts page (/ui/accounts/) and the admin's accounts: what each account is, its switch for
users who may change it, and never a key or its encrypted form."""

import pytest
from django.contrib.auth.models import Permission

from tests.fakes.binance_server import API_KEY, API_SECRET
from tests.support.keys import encryption_key  # noqa: F401 (the fixture)
from trading import keyring
from trading.accounts import account_create
from trading.models import Account

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("encryption_key")]


@pytest.fixture
def second(binance_settings, binance_fake) -> Account:
    binance_fake.hedge_mode = True
    return account_create(name="second", exchange="binance", testnet=True, api_key=API_KEY, api_secret=API_SECRET,
                          by="ops")


@pytest.fixture
def operator_client(client, trader):
    trader.user_permissions.add(Permission.objects.get(codename="change_account"))
    client.force_login(trader)
    return client


def secrets_of(account: Account) -> list[str]:
    return [API_KEY, API_SECRET, account.api_key, account.api_secret]


def test_it_sends_an_anonymous_visitor_to_the_login_page(client):
    assert client.get("/ui/accounts/")["Location"] == "/accounts/login/?next=/ui/accounts/"


def test_it_shows_every_account_and_which_one_the_strategies_trade(trader_client, second):
    page = trader_client.get("/ui/accounts/").content.decode()
    assert 'aria-current="page">Accounts</a>' in page
    assert "The strategies trade the <strong>default</strong> account today" in page
    assert "second" in page and "testnet" in page and "hedge" in page and f"…{API_KEY[-4:]}" in page
    assert not any(secret in page for secret in secrets_of(second))
    assert "Halt second" not in page and "needs the <em>Can change account</em> permission" in page
    assert trader_client.post("/ui/accounts/default/halt/", {"halted": "true"}).status_code == 403
    assert not Account.objects.get(name="default").halted


def test_an_operator_halts_and_resumes_an_account_from_the_page(operator_client, trader, second):
    page = operator_client.get("/ui/accounts/").content.decode()
    assert "Halt default" in page and "Halt second" in page and 'name="csrfmiddlewaretoken"' in page
    answer = operator_client.post("/ui/accounts/default/halt/", {"halted": "true", "reason": "incident"}, follow=True)
    assert answer.redirect_chain[-1][0] == "/ui/accounts/"
    assert "Account default halted." in answer.content.decode() and "Resume default" in answer.content.decode()
    default = Account.objects.get(name="default")
    assert (default.halted, default.halted_reason, default.changed_by) == (True, "incident", trader.username)
    refused = operator_client.post("/ui/accounts/second/halt/", {"halted": "true", "flatten": "on"}, follow=True)
    assert "does not trade yet" in refused.content.decode() and not Account.objects.get(name="second").halted
    assert operator_client.post("/ui/accounts/nope/halt/", {"halted": "true"}).status_code == 404
    operator_client.post("/ui/accounts/default/halt/", {"halted": "false"})
    assert not Account.objects.get(name="default").halted


def test_the_admin_never_renders_a_key(admin_client, second, binance_fake):
    listed = admin_client.get("/admin/trading/account/").content.decode()
    change = admin_client.get(f"/admin/trading/account/{second.pk}/change/").content.decode()
    history = admin_client.get(f"/admin/trading/account/{second.pk}/history/").content.decode()
    for page in (listed, change, history):
        assert not any(secret in page for secret in secrets_of(second))
    assert f"…{API_KEY[-4:]}" in change and 'type="password" name="new_api_key"' in change


def test_the_admin_adds_an_account_only_with_a_key_the_exchange_accepts(admin_client, binance_settings):
    form = {"name": "third", "exchange": "binance", "testnet": "on", "new_api_key": API_KEY,
            "new_api_secret": "not-the-secret-000"}
    refused = admin_client.post("/admin/trading/account/add/", form)
    assert refused.status_code == 200 and "check the API secret (Binance -1022" in refused.content.decode()
    assert "not-the-secret-000" not in refused.content.decode()  # a password input is not filled again
    assert admin_client.post("/admin/trading/account/add/", {**form, "new_api_secret": API_SECRET}).status_code == 302
    third = Account.objects.get(name="third")
    assert keyring.decrypt(third.api_secret) == API_SECRET and third.position_mode == "one_way"


def test_the_admin_keeps_the_keys_when_left_blank(admin_client, second):
    url = f"/admin/trading/account/{second.pk}/change/"
    assert admin_client.post(url, {"halted": "on", "halted_reason": "paused"}).status_code == 302
    account = Account.objects.get(pk=second.pk)
    assert (account.api_key, account.api_secret) == (second.api_key, second.api_secret)
    assert account.halted and account.halted_reason == "paused"


def test_the_dashboard_says_when_the_traded_account_is_halted(trader_client):
    Account.objects.filter(name="default").update(halted=True, halted_reason="rotating keys")
    text = trader_client.get("/ui/").content.decode()
    assert 'data-account-halt="default"' in text and "Account default is halted." in text and "rotating keys" in text
    live = trader_client.get("/ui/", headers={"HX-Request": "true"}).content.decode()  # the 3-second refresh too
    assert 'data-account-halt="default"' in live
    Account.objects.filter(name="default").update(halted=False)
    assert "data-account-halt" not in trader_client.get("/ui/", headers={"HX-Request": "true"}).content.decode()
