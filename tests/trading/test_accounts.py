"""The account registry (issue #19's foundation): keys encrypted at rest and rotated, each account's
adapter, its modes read from the exchange, and the `default` account's switch binding the strategies."""

import logging
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.fakes.binance_server import API_KEY, API_SECRET
from tests.support.webhook import alert, strategy_create, webhook_client  # noqa: F401 - the `client` fixture
from trading import keyring
from trading.accounts import AccountError, account_check, account_create, account_halt
from trading.exchange import exchange_for, get_exchange
from trading.exchange.binance import BinanceExchange
from trading.models import Account, Execution, Position

pytestmark = pytest.mark.django_db

KEY_A, KEY_B = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def _keys(settings):
    settings.FIELD_ENCRYPTION_KEYS = [KEY_A]
    keyring.reset()
    yield
    keyring.reset()


def binance_account(name: str = "second", **fields: object) -> Account:
    return account_create(**{"name": name, "exchange": "binance", "testnet": True, "api_key": API_KEY,
                             "api_secret": API_SECRET, "by": "ops", **fields})


# --- keyring ---------------------------------------------------------------------------------------
def test_a_secret_goes_in_as_a_token_and_comes_back():
    token = keyring.encrypt("s3cret-value")
    assert "s3cret-value" not in token and keyring.decrypt(token) == "s3cret-value"
    assert keyring.encrypt("s3cret-value") != token  # a fresh IV each time


def test_rotation_reads_with_both_keys_and_rekeys_under_the_first(settings, binance_fake):
    settings.BINANCE_BASE_URL = binance_fake.url
    account = binance_account()
    old_token = account.api_secret
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B, KEY_A]  # the new key first, the old one kept
    keyring.reset()
    assert keyring.decrypt(old_token) == API_SECRET
    out = StringIO()
    call_command("accounts_rekey", stdout=out)
    assert "1 account(s) re-encrypted" in out.getvalue()
    account.refresh_from_db()
    assert account.api_secret != old_token
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]  # the old key dropped: the rekeyed tokens still open
    keyring.reset()
    assert (keyring.decrypt(account.api_key), keyring.decrypt(account.api_secret)) == (API_KEY, API_SECRET)


def test_a_wrong_key_says_so_in_words(settings):
    token = keyring.encrypt("s3cret-value")
    settings.FIELD_ENCRYPTION_KEYS = [KEY_B]
    keyring.reset()
    with pytest.raises(keyring.KeyringError, match="cannot be decrypted with any key in FIELD_ENCRYPTION_KEY"):
        keyring.decrypt(token)
    Account.objects.create(name="lost", exchange="binance", api_key=token, api_secret=token)
    with pytest.raises(CommandError, match="account lost: .*cannot be decrypted.*nothing was changed"):
        call_command("accounts_rekey", stdout=StringIO())


def test_production_without_a_key_refuses_to_store_one(settings):
    settings.FIELD_ENCRYPTION_KEYS, settings.DEBUG = [], False
    keyring.reset()
    assert not keyring.configured()
    with pytest.raises(AccountError, match="FIELD_ENCRYPTION_KEY is not set"):
        binance_account()


def test_development_makes_its_key_once_in_a_private_file(settings, tmp_path):
    settings.FIELD_ENCRYPTION_KEYS, settings.DEBUG, settings.BASE_DIR = [], True, tmp_path
    keyring.reset()
    token = keyring.encrypt("s3cret-value")
    path = tmp_path / keyring.DEVELOPMENT_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600 and list(path.parent.iterdir()) == [path]
    keyring.reset()
    assert keyring.decrypt(token) == "s3cret-value"  # the same key read back


# --- accounts and their adapters -------------------------------------------------------------------
def test_the_default_account_is_the_environments(binance_settings):
    default = Account.objects.get(name="default")  # made by migration 0018
    assert (default.api_key, default.api_secret, default.key_hint) == ("", "", "")
    assert (default.venue, default.on_testnet, default.hint, default.environment) == ("binance", True, API_KEY[-4:], "testnet")
    assert exchange_for(default) is get_exchange()


def test_an_account_gets_its_own_adapter_with_its_keys_kept_until_it_changes(binance_settings):
    account = binance_account()
    exchange = exchange_for(account)
    assert isinstance(exchange, BinanceExchange) and exchange is not get_exchange()
    assert exchange.client.base_url == binance_settings.BINANCE_BASE_URL  # the flag is the environment's: the fake
    assert exchange.account_id == get_exchange().account_id  # the same key: the same exchange account
    assert exchange_for(Account.objects.get(pk=account.pk)) is exchange
    account.save()  # a change: a new adapter
    assert exchange_for(account) is not exchange


def test_a_production_account_goes_to_binances_own_host(binance_settings):
    account = Account(name="live", exchange="binance", testnet=False, api_key=keyring.encrypt(API_KEY),
                      api_secret=keyring.encrypt(API_SECRET))
    assert account.binance_urls == ("https://fapi.binance.com", "wss://fstream.binance.com/private/ws")
    assert account.environment == "production"
    exchange = exchange_for(account)
    assert isinstance(exchange, BinanceExchange) and exchange.client.base_url == "https://fapi.binance.com"
    assert exchange.account_id.startswith("binance-live-")


def test_the_check_reads_and_keeps_the_modes(binance_settings, binance_fake):
    binance_fake.hedge_mode, binance_fake.multi_assets = True, True
    account = binance_account()
    assert (account.position_mode, account.multi_assets) == ("hedge", True) and account.modes_read_at
    binance_fake.hedge_mode, binance_fake.multi_assets = False, False
    check = account_check(Account.objects.get(pk=account.pk))
    assert (check.position_mode, check.multi_assets) == ("one_way", False)
    assert Account.objects.filter(pk=account.pk, position_mode="one_way", multi_assets=False).exists()


def test_a_refused_key_is_said_in_binances_words_and_nothing_is_stored(binance_settings, binance_fake):
    with pytest.raises(AccountError, match=r"refused the key: the API key was refused: .*\(Binance -2015"):
        binance_account(api_key="not-the-key-0000")
    with pytest.raises(AccountError, match=r"signature was refused: check the API secret \(Binance -1022"):
        binance_account(api_secret="not-the-secret-0000")
    assert not Account.objects.filter(name="second").exists()


def test_default_and_paper_and_a_taken_name_are_refused(binance_settings):
    with pytest.raises(AccountError, match="`default` is the environment's account"):
        binance_account("default")
    with pytest.raises(AccountError, match="paper accounts other than `default` are not supported yet"):
        binance_account(exchange="paper")
    binance_account()
    with pytest.raises(AccountError, match="an account named 'second' exists already"):
        binance_account()


def test_no_secret_reaches_a_log_line_or_a_history_row(binance_settings, binance_fake, caplog):
    caplog.set_level(logging.DEBUG)
    account = binance_account()
    account_halt(account, halted=True, reason="checking", by="ops")
    with pytest.raises(AccountError):
        binance_account("third", api_secret="wrong-secret-abcdefgh")
    text = caplog.text
    assert API_SECRET not in text and API_KEY not in text and "wrong-secret-abcdefgh" not in text
    assert "account second added by ops" in text
    history = list(account.history.values())
    assert len(history) == 2
    for row in history:
        assert "api_key" not in row and "api_secret" not in row
        assert API_SECRET not in str(row) and API_KEY not in str(row) and account.api_secret not in str(row)


# --- the default account's switch ------------------------------------------------------------------
def test_halting_default_refuses_the_next_open_and_lets_a_close_through(client):
    strategy_create()
    assert alert(client, "buy").status == Execution.Status.FILLED
    account_halt(Account.objects.get(name="default"), halted=True, reason="rotating keys", by="ops")
    refused = alert(client, "buy", symbol="BTCUSDT", price=45100)
    assert refused.status == Execution.Status.SKIPPED
    assert "trading is halted by account 'default''s kill switch: rotating keys" in refused.reason
    closed = alert(client, "close")
    assert closed.status == Execution.Status.FILLED
    assert Position.objects.get(symbol="BTCUSDT").amount == 0
    account_halt(Account.objects.get(name="default"), halted=False, by="ops")
    assert alert(client, "buy").status == Execution.Status.FILLED


def test_another_accounts_halt_is_kept_and_binds_nothing_yet(client):
    strategy_create()
    account = binance_account()
    account_halt(account, halted=True, reason="not funded", by="ops")
    assert Account.objects.get(pk=account.pk).halted
    assert alert(client, "buy").status == Execution.Status.FILLED
    with pytest.raises(AccountError, match="does not trade yet"):
        account_halt(account, halted=True, flatten=True, by="ops")


def test_debug_refuses_a_production_account(settings, binance_settings):
    settings.DEBUG = True  # settings.py refuses EXCHANGE=binance to production with DEBUG=1 alike
    with pytest.raises(AccountError, match="DEBUG=1 with a production account"):
        binance_account(testnet=False)


def test_the_check_command_reads_every_account_and_names_a_refused_one(binance_settings, binance_fake):
    binance_account()
    binance_fake.hedge_mode = True
    out = StringIO()
    call_command("accounts_check", stdout=out)
    assert out.getvalue().splitlines() == ["default (testnet): position mode hedge, multi-assets off",
                                           "second (testnet): position mode hedge, multi-assets off"]
    assert Account.objects.get(name="default").position_mode == "hedge"
    binance_fake.key_refused = True
    err = StringIO()
    with pytest.raises(CommandError, match="2 account"):
        call_command("accounts_check", stdout=StringIO(), stderr=err)
    assert "second (testnet): the exchange (testnet) refused the key: the API key was refused" in err.getvalue()
    with pytest.raises(CommandError, match="no account named nope"):
        call_command("accounts_check", "nope")
