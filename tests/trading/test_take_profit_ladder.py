"""The take-profit ladder (issue #20): `take_profit` as a list of up to 5 {"pct", "share"} levels, or the
alert's `tp` as a list of prices. Placed as reduce-only TAKE_PROFIT_MARKET algo orders of each level's
share (rounded down to the step, the remainder on the last level; a level below the minimum notional
merged into the next, said in the execution), re-placed when the position changes, cancelled when it
closes. Through POST /webhook → worker → the fake exchange (and the paper exchange), one-way and hedge."""

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
from trading.exchange.base import SymbolRules
from trading.models import Order, PaperPosition, PaperProtective, Position, ProtectiveOrder
from trading.stops import ladder_for, ladder_from_value
from trading.tasks import execute_signal

D = Decimal
LADDER = [{"pct": "2", "share": "50"}, {"pct": "4", "share": "30"}, {"pct": "6", "share": "20"}]


@pytest.fixture
def strategy(db) -> StrategyPreference:
    return strategy_create(sizing="allocation", allocation_pct=D(10), take_profit_ladder=LADDER)


def resting(fake: FakeBinance) -> list[tuple[str, str, str, str]]:
    return sorted((o["positionSide"], o["side"], o["triggerPrice"], o["quantity"]) for o in fake.algo_orders.values())


def levels() -> list[tuple[int, str, Decimal, Decimal]]:
    return list(ProtectiveOrder.objects.filter(status="active").order_by("level")
                .values_list("level", "side", "trigger_price", "quantity"))


def test_it_places_a_three_level_ladder_reduce_only_with_the_remainder_on_the_last(client, strategy, binance_fake):
    execution = alert(client)
    assert execution.status == "filled" and execution.protection_alarm == ""
    # 0.111: 50 % → 0.0555 → 0.055, 30 % → 0.0333 → 0.033, the rest 0.023; at 45,000 + 2 / 4 / 6 %.
    assert resting(binance_fake) == [("BOTH", "SELL", "45900.0", "0.055"), ("BOTH", "SELL", "46800.0", "0.033"),
                                     ("BOTH", "SELL", "47700.0", "0.023")]
    sent = [r.params for r in binance_fake.requests_to("/fapi/v1/algoOrder", "POST")]
    assert all(p["type"] == "TAKE_PROFIT_MARKET" and p["reduceOnly"] == "true" and "closePosition" not in p for p in sent)
    assert levels() == [(1, "SELL", D("45900"), D("0.055")), (2, "SELL", D("46800"), D("0.033")),
                        (3, "SELL", D("47700"), D("0.023"))]


def test_an_add_re_places_every_level_and_a_close_cancels_them(client, strategy, binance_fake):
    alert(client)
    alert(client)
    assert [q for *_, q in resting(binance_fake)] == ["0.111", "0.066", "0.045"]
    assert ProtectiveOrder.objects.filter(status="cancelled").count() == 3
    alert(client, "close")
    assert binance_fake.algo_orders == {} and not ProtectiveOrder.objects.filter(status="active").exists()


def test_a_level_below_the_minimum_notional_merges_into_the_next_and_the_execution_says_so(client, strategy,
                                                                                          binance_fake):
    strategy.take_profit_ladder = [{"pct": "1", "share": "1"}, {"pct": "2", "share": "49"}, {"pct": "3", "share": "50"}]
    strategy.save()
    execution = alert(client)
    assert resting(binance_fake) == [("BOTH", "SELL", "45900.0", "0.055"), ("BOTH", "SELL", "46350.0", "0.056")]
    assert ("take-profit level 1 (0.001 at 45450) is below the minimum notional 100 USDT: merged into level 2"
            in execution.reason)
    assert execution.protection_alarm == ""


@pytest.mark.django_db(transaction=True)
def test_the_levels_fill_one_by_one_and_nothing_is_left_at_the_exchange(client, strategy, stream):
    alert(client)
    first = ProtectiveOrder.objects.get(level=1)
    assert stream.move_price("BTCUSDT", "45900") == [first.client_id]
    settles(lambda: Position.objects.get(symbol="BTCUSDT").amount == D("0.056"))
    assert Order.objects.get(protective=first).executed_qty == D("0.055")
    assert len(stream.algo_orders) == 2  # the other levels rest on
    stream.move_price("BTCUSDT", "48000")
    settles(lambda: Position.objects.get(symbol="BTCUSDT").amount == 0)
    assert stream.algo_orders == {} and stream.position("BTCUSDT") == 0
    settles(lambda: set(ProtectiveOrder.objects.values_list("status", flat=True)) == {"triggered"})


def test_in_hedge_mode_each_side_has_its_ladder_by_position_side(client, strategy, binance_fake):
    binance_fake.hedge_mode = True
    alert(client)
    alert(client, "sell")
    assert resting(binance_fake) == [
        ("LONG", "SELL", "45900.0", "0.055"), ("LONG", "SELL", "46800.0", "0.033"), ("LONG", "SELL", "47700.0", "0.023"),
        ("SHORT", "BUY", "42300.0", "0.023"), ("SHORT", "BUY", "43200.0", "0.033"), ("SHORT", "BUY", "44100.0", "0.055")]
    assert all("reduceOnly" not in r.params for r in binance_fake.requests_to("/fapi/v1/algoOrder", "POST"))
    alert(client, "close_short")
    assert {o["positionSide"] for o in binance_fake.algo_orders.values()} == {"LONG"}


def test_the_alerts_list_of_prices_wins_with_equal_shares(client, strategy, binance_fake):
    alert(client, tp=[45500, "46000"])
    assert resting(binance_fake) == [("BOTH", "SELL", "45500.0", "0.055"), ("BOTH", "SELL", "46000.0", "0.056")]


def test_the_alerts_single_price_wins_as_one_take_profit(client, strategy, binance_fake):
    alert(client, tp=46000)
    (only,) = binance_fake.algo_orders.values()
    assert (only["triggerPrice"], only["closePosition"]) == ("46000.0", True)


@pytest.mark.parametrize("tp", [[], [1, 2, 3, 4, 5, 6], [45500, -1], [45500, None], [45500, "x"]])
def test_the_webhook_refuses_a_bad_list_of_prices_naming_tp(client, strategy, tp):
    response = webhook_send(client, tp=tp)
    assert response.status_code == 400 and '"tp"' in response.content.decode()


def test_the_paper_exchange_fills_each_level_for_its_quantity(strategy, settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    signal = signal_queued(strategy, "ladder")
    execute_signal(signal.pk)
    assert sorted(PaperProtective.objects.values_list("trigger", "quantity")) == [
        (D("45900"), D("0.055")), (D("46800"), D("0.033")), (D("47700"), D("0.023"))]
    get_exchange().observe_price("BTCUSDT", D("46000"))  # past level 1 only
    assert PaperPosition.objects.get(symbol="BTCUSDT").amount == D("0.056")
    get_exchange().observe_price("BTCUSDT", D("47700"))
    assert PaperPosition.objects.get(symbol="BTCUSDT").amount == 0
    assert set(PaperProtective.objects.values_list("status", flat=True)) == {"triggered"}
    reset_exchange()


@pytest.fixture
def api(django_user_model) -> APIClient:
    client = APIClient()
    client.force_authenticate(strategy_editor(django_user_model))
    return client


def set_take_profit(api: APIClient, value: object):
    return api.post("/preferences/take_profit", {"strategy": "ALSAPRO 1", "value": value}, format="json")


def test_the_api_takes_a_number_or_a_ladder_each_clearing_the_other(api, strategy):
    answer = set_take_profit(api, 3)
    assert answer.status_code == 200 and (answer.json()["take_profit"], answer.json()["take_profit_ladder"]) == ("3", None)
    five = [{"pct": n, "share": 20} for n in range(1, 6)]
    answer = set_take_profit(api, five)
    assert answer.status_code == 200 and answer.json()["take_profit"] is None
    strategy.refresh_from_db()
    assert strategy.take_profit is None and strategy.take_profit_ladder == [
        {"pct": str(n), "share": "20"} for n in range(1, 6)]
    assert set_take_profit(api, None).json()["take_profit_ladder"] is None


@pytest.mark.parametrize("value", [
    [{"pct": 2, "share": 50}, {"pct": 4, "share": 49}],  # the shares sum to 99
    [{"pct": 2, "share": 50}, {"pct": 4, "share": 51}],
    [{"pct": n, "share": 10} for n in range(1, 7)],  # six levels
    [{"pct": 4, "share": 50}, {"pct": 2, "share": 50}],  # not nearest first
    [{"pct": 2, "share": 50}, {"pct": 2, "share": 50}],
    [{"pct": 0, "share": 100}],
    [{"pct": 2}],
    [],
])
def test_the_api_refuses_a_bad_ladder_naming_take_profit(api, strategy, value):
    answer = set_take_profit(api, value)
    assert answer.status_code == 400 and "take_profit" in answer.json(), answer.content
    strategy.refresh_from_db()
    assert strategy.take_profit_ladder == LADDER


def test_the_strategy_page_edits_the_ladder_as_rows(api, strategy, admin_client):
    user = api.handler._force_user
    page = Client()
    page.force_login(user)
    shown = page.get(f"/ui/strategies/{strategy.pk}/").content.decode()
    assert 'name="take_profit_ladder_0" value="2"' in shown and 'name="take_profit_ladder_5" value="20"' in shown
    assert 'name="take_profit_ladder_9"' in shown  # five rows of (pct, share)
    form = strategy_form(take_profit_ladder_0="1.5", take_profit_ladder_1="60", take_profit_ladder_2="3",
                         take_profit_ladder_3="40")
    assert page.post(f"/ui/strategies/{strategy.pk}/", form).status_code == 302
    strategy.refresh_from_db()
    assert strategy.take_profit_ladder == [{"pct": "1.5", "share": "60"}, {"pct": "3", "share": "40"}]
    both = page.post(f"/ui/strategies/{strategy.pk}/", {**form, "take_profit": "2"})
    assert both.status_code == 200 and "Set either a take-profit % or a ladder, not both." in both.content.decode()
    admin = reverse("admin:preferences_strategypreference_change", args=[strategy.pk])
    assert admin_client.post(admin, {**form, "take_profit_ladder_0": "", "take_profit_ladder_1": "",
                                     "take_profit_ladder_2": "", "take_profit_ladder_3": ""}).status_code == 302
    strategy.refresh_from_db()
    assert strategy.take_profit_ladder is None


@pytest.mark.parametrize(("min_notional", "placed"), [(D("45.45"), [(1, D("0.001")), (2, D("0.054")), (3, D("0.056"))]),
                                                      (D("45.46"), [(2, D("0.055")), (3, D("0.056"))])])
def test_a_level_exactly_at_the_minimum_notional_stays(min_notional, placed):
    rules = SymbolRules(symbol="BTCUSDT", step_size=D("0.001"), min_qty=D("0.001"), max_qty=D(120), tick_size=D("0.1"),
                        min_notional=min_notional)
    levels = ladder_from_value([{"pct": "1", "share": "1"}, {"pct": "2", "share": "49"}, {"pct": "3", "share": "50"}])
    assert levels is not None
    wanted = ladder_for(amount=D("0.111"), entry=D(45000), rules=rules, levels=levels)  # level 1: 0.001 × 45,450
    assert [(p.level, p.quantity) for p in wanted.protections] == placed
    assert bool(wanted.notes) == (len(placed) == 2)
