"""Breakeven (issue #20): `breakeven_after` (a ladder level) and `breakeven_to` (entry | previous_tp).
After that level of the take-profit ladder fills at the exchange (seen on the user data stream), the
stop-loss moves to the entry price plus the fees paid, or to the previous level's price; the rest of
the ladder closes the position and nothing is left open. Through POST /webhook → worker → the fake."""

from decimal import ROUND_CEILING, Decimal

import pytest
from django.contrib.auth.models import Permission
from django.db.models import F
from rest_framework.test import APIClient

from preferences.models import StrategyPreference
from tests.fakes.binance_server import FakeBinance
from tests.support.queue import queued_jobs, run_queued_jobs
from tests.support.stream import settles
from tests.support.webhook import alert, signal_queued, strategy_create, webhook_client  # noqa: F401 (the `client` fixture)
from trading.exchange import get_exchange, reset_exchange
from trading.exchange.paper import TRIGGER_PREFIX, _trigger_events
from trading.live import event_apply
from trading.models import Order, PaperOrder, PaperProtective, Position, ProtectiveOrder
from trading.tasks import execute_signal

D = Decimal
LADDER = [{"pct": "2", "share": "50"}, {"pct": "4", "share": "30"}, {"pct": "6", "share": "20"}]
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def strategy() -> StrategyPreference:
    return strategy_create(sizing="allocation", allocation_pct=D(10), stop_loss=D(2), take_profit_ladder=LADDER,
                           breakeven_after=1)


def held() -> Decimal:
    return Position.objects.get(symbol="BTCUSDT", position_side="BOTH").amount


def stops(fake: FakeBinance) -> list[str]:
    return [o["triggerPrice"] for o in fake.algo_orders.values() if o["orderType"] == "STOP_MARKET"]


def level_fills(fake: FakeBinance, price: str, remaining: str) -> None:
    """The price reaches a level: its fill comes on the stream, and the settle job it queues runs."""
    assert fake.move_price("BTCUSDT", price)
    settles(lambda: held() == D(remaining))
    settles(lambda: any(job["func"] == "trading.tasks.settle_protection" for job in queued_jobs()))
    run_queued_jobs()


def test_after_level_1_the_stop_moves_to_the_entry_plus_fees_and_the_rest_closes_the_position(client, strategy, stream):
    alert(client)
    assert stops(stream) == ["44100.0"]
    level_fills(stream, "45900", "0.056")
    fees = sum(Order.objects.values_list("commission", flat=True))
    assert fees > 0  # the entry's and level 1's
    breakeven = ((D(45000) + fees / D("0.056")) / D("0.1")).to_integral_value(rounding=ROUND_CEILING) * D("0.1")
    assert stops(stream) == [f"{breakeven:f}"]
    moved = ProtectiveOrder.objects.get(kind="stop_loss", status="active")
    assert (moved.trigger_price, moved.level) == (breakeven, 1)
    assert ProtectiveOrder.objects.get(kind="stop_loss", level=0).status == "cancelled"
    assert len(stream.algo_orders) == 3  # the moved stop and levels 2 and 3
    stream.move_price("BTCUSDT", "48000")  # levels 2 and 3 close the rest
    settles(lambda: held() == 0)
    settles(lambda: any(job["func"] == "trading.tasks.settle_protection" for job in queued_jobs()))
    run_queued_jobs()
    assert stream.algo_orders == {} and stream.position("BTCUSDT") == 0
    assert not ProtectiveOrder.objects.filter(status__in=["active", "placing"]).exists()


def test_a_second_settle_of_the_same_level_keeps_the_breakeven_stop(client, strategy, stream):
    """The chaos ladder phase's finding: two settle jobs for one level (a fill's event and its trigger's),
    the second reading a fee more: it re-placed the stop under the same client id (a no-op at the
    exchange) and then cancelled "the old one", which was that very stop. The position was left bare."""
    from trading.exchange import get_exchange
    from trading.protection import position_settle

    alert(client)
    level_fills(stream, "45900", "0.056")
    [moved] = stops(stream)
    Order.objects.filter(purpose="open").update(commission=F("commission") + D("1"))  # a fee read later
    assert position_settle("BTCUSDT", get_exchange()) == ""
    assert stops(stream) == [moved]  # still protected, at the price it was placed at
    assert ProtectiveOrder.objects.get(kind="stop_loss", status="active").level == 1


def test_to_the_previous_level_after_level_2(client, strategy, stream):
    strategy.breakeven_after, strategy.breakeven_to = 2, "previous_tp"
    strategy.save()
    alert(client)
    level_fills(stream, "45900", "0.056")
    assert stops(stream) == ["44100.0"]  # level 1 is not the strategy's level: the stop stays
    level_fills(stream, "46800", "0.023")
    assert stops(stream) == ["45900.0"]  # level 1's price
    assert ProtectiveOrder.objects.get(kind="stop_loss", status="active").level == 2


def test_without_breakeven_the_stop_stays(client, strategy, stream):
    strategy.breakeven_after = None
    strategy.save()
    alert(client)
    level_fills(stream, "45900", "0.056")
    assert stops(stream) == ["44100.0"]


def test_in_hedge_mode_the_sides_stop_moves_with_its_position_side(client, strategy, stream):
    stream.hedge_mode = True
    alert(client)
    assert stream.move_price("BTCUSDT", "45900")
    settles(lambda: Position.objects.get(symbol="BTCUSDT", position_side="LONG").amount == D("0.056"))
    settles(lambda: any(job["func"] == "trading.tasks.settle_protection" for job in queued_jobs()))
    run_queued_jobs()
    (stop,) = [o for o in stream.algo_orders.values() if o["orderType"] == "STOP_MARKET"]
    assert stop["positionSide"] == "LONG" and D(stop["triggerPrice"]) > 45000
    assert ProtectiveOrder.objects.get(kind="stop_loss", status="active").client_id.endswith("-s1-l")


def test_the_api_sets_breakeven_and_refuses_a_bad_value_naming_it(strategy, django_user_model):
    user = django_user_model.objects.create_user("editor", password="an-editor-password", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="change_strategypreference"))
    api = APIClient()
    api.force_authenticate(user)

    def post(kind, value):
        return api.post(f"/preferences/{kind}", {"strategy": "ALSAPRO 1", "value": value}, format="json")

    assert post("breakeven_after", 5).json()["breakeven_after"] == 5
    assert post("breakeven_to", "previous_tp").json()["breakeven_to"] == "previous_tp"
    assert post("breakeven_after", None).json()["breakeven_after"] is None
    for kind, value in (("breakeven_after", 0), ("breakeven_after", 6), ("breakeven_to", "stop")):
        answer = post(kind, value)
        assert answer.status_code == 400 and kind in answer.json()


def test_the_paper_exchange_moves_the_stop_too(strategy, settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    signal = signal_queued(strategy, "be")
    execute_signal(signal.pk)
    paper = get_exchange()
    paper.observe_price("BTCUSDT", D("45900"))  # level 1 fills on the paper exchange
    for paper_order in PaperOrder.objects.filter(client_order_id__startswith=TRIGGER_PREFIX):
        for event in _trigger_events(paper_order):  # what its stream reports
            event_apply(event, paper)
    run_queued_jobs()  # the settle job the fill queued
    assert held() == D("0.056")
    (stop,) = PaperProtective.objects.filter(kind="stop_loss", status="open")
    assert stop.trigger > 45000 and ProtectiveOrder.objects.get(kind="stop_loss", status="active").level == 1
    reset_exchange()
