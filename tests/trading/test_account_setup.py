"""Leverage and margin type read from the exchange, not assumed from our last change (issue #17): at a
worker's start, from the stream (tests/trading/test_user_stream.py), and before an opening order once
what is remembered is older than EXCHANGE_SETTINGS_MAX_AGE; a difference is set before the order and
said on the execution's decision. Positions carry the leverage and margin type in force."""

import itertools
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_q.signals import post_spawn
from rest_framework.test import APIClient

from preferences.models import StrategyPreference
from trading import account_setup
from trading.exchange import PermanentError, SymbolSettings, get_exchange, reset_exchange
from trading.exchange.paper import PaperExchange
from trading.models import Execution, PaperPosition, Position, Signal, SymbolSetting
from trading.tasks import execute_signal
from trading.upkeep import positions_reconcile

D = Decimal
_seq = itertools.count(1)
pytestmark = pytest.mark.django_db


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], leverage=5, allocation_pct=D(10))


@pytest.fixture
def paper(settings) -> PaperExchange:
    settings.EXCHANGE = "paper"
    reset_exchange()
    yield get_exchange()
    reset_exchange()


def execute(strategy: StrategyPreference, action: str = "buy", price: str = "45000") -> Execution:
    now = timezone.now()
    signal = Signal.objects.create(action=action, symbol="BTCUSDT", strategy=strategy.name, preference=strategy,
                                   price=D(price), status=Signal.Status.QUEUED, received_at=now, queued_at=now,
                                   idempotency_key=f"setup:{next(_seq)}")
    execute_signal(signal.pk, signal.symbol)
    return Execution.objects.get(signal=signal)


def remembered_for(seconds: float, account: str = "paper", symbol: str = "BTCUSDT") -> None:
    """As if what is remembered of `symbol` had been read `seconds` ago."""
    SymbolSetting.objects.filter(account=account, symbol=symbol).update(
        updated_at=timezone.now() - timedelta(seconds=seconds))


# --- the paper exchange: its leverage changed as someone would in Binance's app ----------------------
def test_it_reads_the_settings_before_the_first_order_and_says_what_it_changed(paper, strategy):
    execution = execute(strategy)
    assert execution.status == Execution.Status.FILLED, execution.reason
    # The paper account had Binance's default, 20x and cross: only the leverage was set.
    assert execution.decision["account_settings"] == ["leverage at the exchange was 20, set to 5 before the order"]
    assert PaperPosition.objects.get(symbol="BTCUSDT").leverage == 5
    position = Position.objects.get(symbol="BTCUSDT")
    assert (position.leverage, position.margin_type) == (5, "cross")


def test_the_execution_page_says_what_was_changed_before_the_order(paper, strategy, django_user_model, client):
    execution = execute(strategy)
    client.force_login(django_user_model.objects.create_user("trader", password="a-trader-password"))
    page = client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert "Account settings: leverage at the exchange was 20, set to 5 before the order." in page


def test_it_trusts_what_it_read_until_it_is_older_than_the_max_age(paper, strategy, settings):
    settings.EXCHANGE_SETTINGS_MAX_AGE = 300
    execute(strategy)
    PaperPosition.objects.filter(symbol="BTCUSDT").update(leverage=20)  # changed in "Binance's app"
    remembered_for(299)
    trusted = execute(strategy, "buy", "45001")
    assert "account_settings" not in trusted.decision  # not read again: the order went out at 20x
    assert PaperPosition.objects.get(symbol="BTCUSDT").leverage == 20

    remembered_for(301)
    checked = execute(strategy, "buy", "45002")
    assert checked.decision["account_settings"] == ["leverage at the exchange was 20, set to 5 before the order"]
    assert PaperPosition.objects.get(symbol="BTCUSDT").leverage == 5
    assert SymbolSetting.objects.get(symbol="BTCUSDT").updated_at > timezone.now() - timedelta(seconds=5)


def test_it_calls_a_value_stale_only_past_the_max_age():
    now = timezone.now()
    known = SymbolSetting(account="paper", symbol="BTCUSDT", leverage=5, margin_type="cross", updated_at=now)
    assert not account_setup.is_stale(known, now=now + timedelta(seconds=300), max_age=300)
    assert account_setup.is_stale(known, now=now + timedelta(seconds=300, microseconds=1), max_age=300)
    assert account_setup.is_stale(SymbolSetting(leverage=5, margin_type="", updated_at=now), now=now, max_age=300)
    assert account_setup.is_stale(SymbolSetting(leverage=None, margin_type="cross", updated_at=now), now=now, max_age=300)


def test_it_corrects_the_margin_type_before_the_leverage_and_says_both(paper, strategy):
    PaperPosition.objects.create(symbol="BTCUSDT", leverage=10, margin_type="isolated")
    execution = execute(strategy)
    assert execution.decision["account_settings"] == [
        "margin type at the exchange was isolated, set to cross before the order",
        "leverage at the exchange was 10, set to 5 before the order",
    ]
    row = PaperPosition.objects.get(symbol="BTCUSDT")
    assert (row.leverage, row.margin_type) == (5, "cross")


def test_it_sends_nothing_when_the_exchange_already_has_the_strategys_settings(paper, strategy, monkeypatch):
    PaperPosition.objects.create(symbol="BTCUSDT", leverage=5, margin_type="cross")
    monkeypatch.setattr(PaperExchange, "set_leverage", lambda *args: pytest.fail("set although already 5"))
    execution = execute(strategy)
    assert execution.status == Execution.Status.FILLED and "account_settings" not in execution.decision


def test_a_close_never_reads_or_sets_the_settings(paper, strategy, monkeypatch):
    execute(strategy)
    remembered_for(3600)
    monkeypatch.setattr(PaperExchange, "get_symbol_settings", lambda *args: pytest.fail("read for a close"))
    assert execute(strategy, "close").status == Execution.Status.FILLED


def test_it_goes_by_what_it_knew_when_the_exchange_cannot_say(paper, strategy, monkeypatch):
    def refused(*args: object) -> None:
        raise PermanentError("symbolConfig is not served here", code="-5000")

    monkeypatch.setattr(PaperExchange, "get_symbol_settings", refused)
    execution = execute(strategy)
    assert execution.status == Execution.Status.FILLED
    assert execution.decision["account_settings"] == ["margin type set to cross before the order",
                                                      "leverage set to 5 before the order"]


# --- positions carry what is in force ------------------------------------------------------------
def test_positions_show_their_leverage_and_margin_type_in_the_api_and_on_the_dashboard(paper, strategy,
                                                                                       django_user_model, client):
    strategy.margin_type = "isolated"
    strategy.save()
    execute(strategy)
    user = django_user_model.objects.create_user("reader", password="a-reader-password")
    api = APIClient()
    api.force_authenticate(user)
    [listed] = api.get("/positions").json()["results"]
    assert (listed["symbol"], listed["leverage"], listed["margin_type"]) == ("BTCUSDT", 5, "isolated")
    [summarised] = api.get("/account/summary").json()["positions"]
    assert (summarised["leverage"], summarised["margin_type"]) == (5, "isolated")
    client.force_login(user)
    page = client.get("/ui/").content.decode()
    assert "5×" in page and "isolated" in page


def test_a_reconciliation_writes_what_the_exchange_has_in_force(binance_exchange, binance_fake):
    binance_fake.set_position("BTCUSDT", "0.010", "45000")
    binance_fake.leverage["BTCUSDT"] = 7
    binance_fake.change_margin_type_in_app("BTCUSDT", "ISOLATED")
    Position.objects.create(symbol="BTCUSDT", amount=D("0.010"), entry_price=D("45000"), leverage=5, margin_type="cross")
    positions_reconcile(binance_exchange, timezone.now())
    position = Position.objects.get(symbol="BTCUSDT")
    assert (position.amount, position.leverage, position.margin_type) == (D("0.010"), 7, "isolated")


def test_a_position_first_seen_at_the_exchange_comes_with_its_settings(paper):
    paper.observe_price("ETHUSDT", D("3000"))
    PaperPosition.objects.create(symbol="ETHUSDT", amount=D("1"), entry_price=D("3000"), leverage=3,
                                 margin_type="isolated")
    positions_reconcile(paper, timezone.now())
    position = Position.objects.get(symbol="ETHUSDT")
    assert (position.amount, position.leverage, position.margin_type) == (D("1"), 3, "isolated")


# --- at a worker's start -------------------------------------------------------------------------------
def test_a_worker_reads_every_enabled_symbol_at_start_and_says_what_differs(binance_exchange, binance_fake, strategy,
                                                                          caplog):
    StrategyPreference.objects.create(name="off", products=["DOGEUSDT"], enabled=False)
    binance_fake.leverage["BTCUSDT"] = 25
    binance_fake.change_margin_type_in_app("ETHUSDT", "ISOLATED")
    Position.objects.create(symbol="ETHUSDT", amount=D("1"), entry_price=D("3000"))
    differences = account_setup.settings_read(binance_exchange)
    assert differences == ["BTCUSDT: leverage at the exchange is 25, ALSAPRO 1 wants 5: set before its next opening order"]
    rows = {row.symbol: (row.leverage, row.margin_type) for row in SymbolSetting.objects.all()}
    assert rows == {"BTCUSDT": (25, "cross"), "ETHUSDT": (20, "isolated")}  # not DOGEUSDT: its strategy is off
    assert (Position.objects.get(symbol="ETHUSDT").leverage, Position.objects.get(symbol="ETHUSDT").margin_type) == (
        20, "isolated")
    [read] = binance_fake.requests_to("/fapi/v1/symbolConfig")
    assert "symbol" not in read.params  # several symbols: one request for all


def test_a_read_never_overwrites_a_setting_made_after_it_began(binance_exchange, binance_fake, strategy):
    SymbolSetting.objects.create(account=binance_exchange.account_id, symbol="BTCUSDT", leverage=5, margin_type="cross")
    Position.objects.create(symbol="BTCUSDT", amount=D("0.010"), entry_price=D("45000"), leverage=5)
    account_setup._remember(binance_exchange.account_id, SymbolSettings("BTCUSDT", 25, "cross"),
                            read_started=timezone.now() - timedelta(seconds=1))
    assert SymbolSetting.objects.get(symbol="BTCUSDT").leverage == 5
    assert Position.objects.get(symbol="BTCUSDT").leverage == 5
    account_setup._remember(binance_exchange.account_id, SymbolSettings("BTCUSDT", 25, "cross"),
                            read_started=timezone.now() + timedelta(seconds=1))  # a read begun after it
    assert SymbolSetting.objects.get(symbol="BTCUSDT").leverage == 25
    assert Position.objects.get(symbol="BTCUSDT").leverage == 25


@pytest.mark.django_db(transaction=True)
def test_each_worker_process_reads_them_as_it_starts_in_the_background(binance_exchange, binance_fake, strategy):
    uids = [key[0] for key, *_ in post_spawn.receivers]
    assert "trading.account_setup.settings_read_at_start" in uids
    binance_fake.leverage["BTCUSDT"] = 25
    account_setup.settings_read_at_start()
    [thread] = [thread for thread in threading.enumerate() if thread.name == "exchange-settings"]
    thread.join(timeout=5)
    assert SymbolSetting.objects.get(symbol="BTCUSDT").leverage == 25


# --- the fake Binance: leverage changed in its app, noticed by the stale read ---------------------------
@pytest.mark.django_db(transaction=True)
def test_a_leverage_changed_at_binance_is_read_when_stale_and_the_next_order_goes_out_at_the_strategys(
        committed_client, binance_settings, binance_fake, strategy):
    from tests.trading.test_end_to_end import alert
    from trading.webhook import RATE_LIMITER

    RATE_LIMITER.reset()
    binance_settings.EXCHANGE_SETTINGS_MAX_AGE = 300
    first = alert(committed_client)
    assert binance_fake.order_leverage[Execution.objects.get(signal=first).orders.get().client_order_id] == 5
    binance_fake.change_leverage_in_app("BTCUSDT", 25)  # no stream runs: only a read can notice
    remembered_for(301, account=get_exchange().account_id)
    second = Execution.objects.get(signal=alert(committed_client, price=45001))
    assert second.decision["account_settings"] == ["leverage at the exchange was 25, set to 5 before the order"]
    assert binance_fake.order_leverage[second.orders.get().client_order_id] == 5
    assert [r.params["leverage"] for r in binance_fake.requests_to("/fapi/v1/leverage")] == ["5", "5"]
    assert Position.objects.get(symbol="BTCUSDT").leverage == 5
