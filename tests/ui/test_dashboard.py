from datetime import timedelta

import pytest
from django.utils import timezone

from tests.ui.records import make_account, make_execution
from trading.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def test_it_shows_empty_states_on_a_new_install(trader_client):
    response = trader_client.get("/ui/")
    assert response.status_code == 200
    text = response.content.decode()
    assert "No account snapshot yet" in text
    assert "No open positions." in text
    assert "No executions yet" in text
    assert "No account snapshots yet" in text
    assert 'id="equity-chart"' not in text


def test_it_shows_balances_positions_executions_and_the_equity_curve(trader_client):
    make_account()
    execution = make_execution(1)
    text = trader_client.get("/ui/").content.decode()
    assert "10,000.00" in text  # balance
    assert "9,000.25" in text  # available
    assert "ETHUSDT" in text and "Short" in text and "-1.5" in text and "2,500.1" in text and "10×" in text
    assert f'href="/ui/executions/{execution.pk}/"' in text
    assert 'data-status="filled"' in text and ">Filled<" in text
    assert 'id="equity-points"' in text and 'id="equity-chart"' in text


def test_it_polls_a_fragment_rendered_by_the_same_view(trader_client):
    text = trader_client.get("/ui/").content.decode()
    assert 'hx-get="/ui/"' in text
    assert 'hx-trigger="every 3s"' in text


def test_it_answers_htmx_with_the_live_fragment_only(trader_client):
    make_account()
    make_execution(1)
    response = trader_client.get("/ui/", headers={"HX-Request": "true"})
    text = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in text and "<nav" not in text and "equity-chart" not in text
    assert "Open positions" in text and "Last executions" in text and "9,000.25" in text
    assert "HX-Request" in response["Vary"]


def test_it_says_when_data_is_stale(trader_client):
    make_account(age=timedelta(minutes=4))
    text = trader_client.get("/ui/").content.decode()
    assert "Data is stale" in text
    assert "Worker down" not in text


def test_it_says_nothing_of_staleness_when_data_is_fresh(trader_client):
    make_account()
    text = trader_client.get("/ui/").content.decode()
    assert "Data is stale" not in text
    assert "Worker down" not in text


def test_it_says_when_the_worker_has_never_beaten(trader_client):
    make_account(heartbeat_age=None)
    assert "Worker down" in trader_client.get("/ui/", headers={"HX-Request": "true"}).content.decode()


def test_it_says_when_the_worker_heartbeat_is_old(trader_client):
    make_account()
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(seconds=46))
    assert "Worker down" in trader_client.get("/ui/").content.decode()


def test_it_reads_a_bounded_number_of_queries(trader_client, django_assert_max_num_queries):
    make_account()
    for n in range(30):
        make_execution(n)
    # One query per panel, whatever the number of rows (the orders the exchange reported, the kill switch, the
    # traded account's own switch, the positions' protective orders: one each).
    with django_assert_max_num_queries(14):  # + the user's permissions (kill switch), the locked strategies
        trader_client.get("/ui/")
    with django_assert_max_num_queries(10):
        trader_client.get("/ui/", headers={"HX-Request": "true"})


def test_it_lists_the_orders_the_exchange_reported(trader_client):
    from decimal import Decimal

    from trading.models import Order

    make_account()
    assert "Orders the exchange reported" not in trader_client.get("/ui/").content.decode()  # none: no panel
    Order.objects.create(execution=None, source=Order.Source.LIQUIDATION, client_order_id="autoclose-17000000000001",
                         exchange_order_id="991", symbol="ETHUSDT", side="BUY", quantity=Decimal("1.5"),
                         executed_qty=Decimal("1.5"), avg_price=Decimal("2600"), realized_pnl=Decimal("-149.85"),
                         status=Order.Status.FILLED, purpose="close")
    text = trader_client.get("/ui/", headers={"HX-Request": "true"}).content.decode()
    assert "Orders the exchange reported" in text and "-149.85" in text
    assert 'title="Liquidation by the exchange">Liquidation<' in text
