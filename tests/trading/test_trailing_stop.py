"""The trailing stop (issue #20): preference `trailing_stop` {"callback", "activation_pct"} and the
alert's `trail`. Placed after the entry as Binance's native TRAILING_STOP_MARKET algo order (callbackRate,
activatePrice, the position's quantity, reduce-only in one-way mode, positionSide in hedge mode),
re-placed when an add changes the quantity, cancelled when the position closes; triggered by the fake's
and the paper exchange's prices, and its fill reported by the stream. Through POST /webhook → worker."""

from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from preferences.models import StrategyPreference
from tests.fakes.binance_server import FakeBinance
from tests.support.forms import strategy_form
from tests.support.stream import settles
from tests.support.users import strategy_editor
from tests.support.webhook import alert, signal_queued, strategy_create, webhook_client, webhook_send  # noqa: F401 (the `client` fixture)
from trading.exchange import get_exchange, reset_exchange
from trading.models import Execution, Order, PaperPosition, PaperProtective, Position, ProtectiveOrder
from trading.tasks import execute_signal

D = Decimal
TRAILING = {"callback": "1", "activation_pct": "2"}


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return strategy_create(sizing="allocation", allocation_pct=D(10), trailing_stop=TRAILING)


def placed(fake: FakeBinance) -> list[dict]:
    return [r.params for r in fake.requests_to("/fapi/v1/algoOrder", "POST")]


def test_it_places_binances_trailing_stop_after_the_entry(client, strategy, binance_fake):
    execution = alert(client)
    assert execution.status == "filled" and execution.protection_alarm == ""
    (sent,) = placed(binance_fake)
    # 45,000 + 2 % = 45,900.0; the position's 0.111, reduce-only (one-way mode); no closePosition.
    assert {key: sent[key] for key in ("algoType", "type", "side", "quantity", "callbackRate", "activatePrice",
                                       "reduceOnly", "workingType")} == {
        "algoType": "CONDITIONAL", "type": "TRAILING_STOP_MARKET", "side": "SELL", "quantity": "0.111",
        "callbackRate": "1", "activatePrice": "45900.0", "reduceOnly": "true", "workingType": "MARK_PRICE"}
    assert "closePosition" not in sent and "triggerPrice" not in sent and "positionSide" not in sent
    stored = ProtectiveOrder.objects.get()
    assert (stored.kind, stored.status, stored.trigger_price, stored.quantity, stored.callback_rate) == (
        "trailing", "active", D("45900"), D("0.111"), D("1"))


def test_it_replaces_it_after_an_add_and_cancels_it_when_the_position_closes(client, strategy, binance_fake):
    alert(client)
    alert(client)  # the same entry price: only the quantity changes
    assert [(p["quantity"], p["activatePrice"]) for p in placed(binance_fake)] == [("0.111", "45900.0"), ("0.222", "45900.0")]
    assert [o["quantity"] for o in binance_fake.algo_orders.values()] == ["0.222"]
    assert list(ProtectiveOrder.objects.order_by("id").values_list("status", flat=True)) == ["cancelled", "active"]
    alert(client, "close")
    assert binance_fake.algo_orders == {} and not ProtectiveOrder.objects.filter(status="active").exists()


def test_the_alerts_trail_wins_and_without_an_activation_it_is_active_at_once(client, strategy, binance_fake):
    strategy.trailing_stop = None
    strategy.save()
    alert(client, "sell", trail=2.5)
    (sent,) = placed(binance_fake)
    assert (sent["side"], sent["callbackRate"], sent["quantity"]) == ("BUY", "2.5", "0.111")
    assert "activatePrice" not in sent
    assert ProtectiveOrder.objects.get().trigger_price == 0


@pytest.mark.parametrize("trail", [0.09, 10.1, 1.25, "x"])
def test_the_webhook_refuses_a_trail_outside_binances_range_naming_it(client, strategy, trail):
    response = webhook_send(client, trail=trail)
    assert response.status_code == 400 and "trail" in response.content.decode()
    assert not Execution.objects.exists()


def test_the_edges_of_binances_range_are_accepted(client, strategy, binance_fake):
    alert(client, trail=0.1)
    alert(client, "close")
    alert(client, trail=10)
    assert [p["callbackRate"] for p in placed(binance_fake)] == ["0.1", "10"]


@pytest.mark.django_db(transaction=True)
def test_the_fake_triggers_it_callback_back_from_the_best_price_and_the_stream_reports_it(client, strategy, stream):
    alert(client)
    (resting,) = ProtectiveOrder.objects.all()
    assert stream.move_price("BTCUSDT", "45899.9") == []  # not active yet
    assert stream.move_price("BTCUSDT", "46500") == []  # active; best 46,500 → triggers at 46,035
    assert stream.move_price("BTCUSDT", "46035.1") == []
    assert stream.move_price("BTCUSDT", "46035") == [resting.client_id]
    settles(lambda: Order.objects.filter(source=Order.Source.TRAILING_STOP, executed_qty=D("0.111")).exists())
    settles(lambda: Position.objects.get(symbol="BTCUSDT").amount == 0)
    filled = Order.objects.get(source=Order.Source.TRAILING_STOP)
    assert filled.protective == resting and filled.avg_price == D("46035")
    settles(lambda: ProtectiveOrder.objects.get().status == ProtectiveOrder.Status.TRIGGERED)


def test_in_hedge_mode_it_names_the_side_and_is_not_reduce_only(client, strategy, binance_fake):
    binance_fake.hedge_mode = True
    alert(client)
    alert(client, "sell")
    sides = {p["positionSide"]: p for p in placed(binance_fake)}
    assert (sides["LONG"]["side"], sides["LONG"]["activatePrice"]) == ("SELL", "45900.0")
    assert (sides["SHORT"]["side"], sides["SHORT"]["activatePrice"]) == ("BUY", "44100.0")
    assert all("reduceOnly" not in p for p in placed(binance_fake))
    alert(client, "close_long")
    assert [o["positionSide"] for o in binance_fake.algo_orders.values()] == ["SHORT"]


def test_the_paper_exchange_tracks_the_best_price_and_triggers_at_the_callback(strategy, settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    signal = signal_queued(strategy, "trail")
    execute_signal(signal.pk)
    paper = get_exchange()
    protective = PaperProtective.objects.get()
    assert (protective.kind, protective.trigger, protective.callback_rate, protective.extreme) == (
        "trailing", D("45900"), D("1"), None)
    paper.observe_price("BTCUSDT", D("45899.9"))
    assert PaperProtective.objects.get().extreme is None
    paper.observe_price("BTCUSDT", D("45900"))  # at the activation price: active
    assert PaperProtective.objects.get().extreme == D("45900")
    paper.observe_price("BTCUSDT", D("47000"))
    paper.observe_price("BTCUSDT", D("46600"))  # the best stays 47,000; 1 % back is 46,530
    assert PaperProtective.objects.get().extreme == D("47000")
    paper.observe_price("BTCUSDT", D("46530.1"))
    assert PaperPosition.objects.get(symbol="BTCUSDT").amount == D("0.111")
    paper.observe_price("BTCUSDT", D("46530"))
    assert PaperPosition.objects.get(symbol="BTCUSDT").amount == 0
    assert PaperProtective.objects.get().status == "triggered"
    reset_exchange()


@pytest.fixture
def editor(django_user_model):
    return strategy_editor(django_user_model)


@pytest.mark.parametrize("value", [{"callback": 0.09}, {"callback": 10.5}, {"callback": 1, "activation_pct": 101},
                                   {"activation_pct": 2}, {"callback": 1, "other": 1}, 5])
def test_the_api_refuses_a_trailing_stop_outside_the_range_naming_it(editor, strategy, value):
    api = APIClient()
    api.force_authenticate(editor)
    answer = api.post("/preferences/trailing_stop", {"strategy": "ALSAPRO 1", "value": value}, format="json")
    assert answer.status_code == 400 and "trailing_stop" in answer.json(), answer.content
    strategy.refresh_from_db()
    assert strategy.trailing_stop == TRAILING


def test_it_sets_the_trailing_stop_through_the_api_the_page_and_the_admin(editor, strategy, admin_client):
    api = APIClient()
    api.force_authenticate(editor)
    answer = api.post("/preferences/trailing_stop", {"strategy": "ALSAPRO 1", "value": {"callback": 0.1}}, format="json")
    assert answer.status_code == 200 and answer.json()["trailing_stop"] == {"callback": "0.1", "activation_pct": None}
    edge = api.post("/preferences/trailing_stop", {"strategy": "ALSAPRO 1", "value": {"callback": 10, "activation_pct": 0}},
                    format="json")
    assert edge.status_code == 200 and edge.json()["trailing_stop"] == {"callback": "10", "activation_pct": None}
    assert api.post("/preferences/trailing_stop", {"strategy": "ALSAPRO 1", "value": {"callback": 1.25}},
                    format="json").status_code == 400  # Binance's steps of 0.1: the form's check
    assert api.post("/preferences/trailing_stop", {"strategy": "ALSAPRO 1", "value": None},
                    format="json").json()["trailing_stop"] is None
    form = strategy_form(trailing_stop_0="1.5", trailing_stop_1="3")
    page = Client()
    page.force_login(editor)
    shown = page.get(f"/ui/strategies/{strategy.pk}/").content.decode()
    assert 'name="trailing_stop_0"' in shown and 'name="trailing_stop_1"' in shown
    assert page.post(f"/ui/strategies/{strategy.pk}/", form).status_code == 302
    strategy.refresh_from_db()
    assert strategy.trailing_stop == {"callback": "1.5", "activation_pct": "3"}
    refused = page.post(f"/ui/strategies/{strategy.pk}/", {**form, "trailing_stop_0": "11"})
    assert refused.status_code == 200 and "callback 11 is not from 0.1 to 10" in refused.content.decode()
    admin = reverse("admin:preferences_strategypreference_change", args=[strategy.pk])
    assert admin_client.post(admin, {**form, "trailing_stop_0": "", "trailing_stop_1": ""}).status_code == 302
    strategy.refresh_from_db()
    assert strategy.trailing_stop is None
