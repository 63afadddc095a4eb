from datetime import timedelta

import pytest
from django.utils import timezone

from tests.ui.records import make_execution

pytestmark = pytest.mark.django_db


def test_it_shows_an_empty_list_on_a_new_install(trader_client):
    response = trader_client.get("/ui/executions/")
    assert response.status_code == 200
    assert "No executions match." in response.content.decode()


def test_it_lists_executions_with_readable_numbers(trader_client):
    execution = make_execution(1)
    text = trader_client.get("/ui/executions/").content.decode()
    assert f'href="/ui/executions/{execution.pk}/"' in text
    assert "45,000.5" in text and "45000.5000000000" not in text
    assert ">Filled<" in text


def test_it_filters_by_status_strategy_and_symbol(trader_client):
    make_execution(1)
    make_execution(2, status="rejected")
    make_execution(3, strategy="Other", symbol="ETHUSDT")
    assert trader_client.get("/ui/executions/?status=rejected").content.decode().count('data-status="') == 1
    by_strategy = trader_client.get("/ui/executions/?strategy=Other").content.decode()
    assert by_strategy.count('data-status="') == 1 and "ETHUSDT" in by_strategy
    assert trader_client.get("/ui/executions/?symbol=ethusdt").content.decode().count('data-status="') == 1


def test_it_ignores_a_filter_value_it_does_not_know(trader_client):
    make_execution(1)
    response = trader_client.get("/ui/executions/?status=bogus")
    assert response.status_code == 200
    assert response.content.decode().count('data-status="') == 1


def test_it_pages_by_fifty_keeping_the_filters(trader_client):
    for n in range(51):
        make_execution(n)
    first = trader_client.get("/ui/executions/?status=filled").content.decode()
    assert first.count('data-status="') == 50
    assert 'href="?status=filled&amp;page=2"' in first
    assert trader_client.get("/ui/executions/?status=filled&page=2").content.decode().count('data-status="') == 1


def test_it_lists_200_executions_in_a_fixed_number_of_queries(trader_client, django_assert_max_num_queries):
    for n in range(200):
        make_execution(n)
    with django_assert_max_num_queries(5):
        response = trader_client.get("/ui/executions/")
    assert response.content.decode().count('data-status="') == 50
    with django_assert_max_num_queries(5):
        trader_client.get("/ui/executions/?status=filled&strategy=ALSAPRO+1&symbol=BTCUSDT&page=3")


def test_it_shows_the_stage_timeline_in_milliseconds(trader_client):
    execution = make_execution(1)
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    for stage in ("Received", "Queued", "Started", "Sent", "Acknowledged", "Finished"):
        assert f'<span class="stage">{stage}</span>' in text
    assert "+2.0 ms" in text and "+8.0 ms" in text and "+28.0 ms" in text and "+5.0 ms" in text
    assert "45.0 ms" in text  # received to finished


def test_it_shows_the_decision_the_orders_and_the_slippage(trader_client):
    execution = make_execution(1)
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert "Allocation (% of equity)" in text and "0.111111111111" in text and "10,000" in text
    assert "open long 0.111" in text
    assert "ui-1-1" in text  # the order's client id
    assert "0.11 bps" in text


def test_it_never_shows_a_passphrase(trader_client):
    execution = make_execution(1)
    # Storage never keeps it; were a future change to, the page still must not show it.
    execution.signal.payload = {"action": "buy", "passphrase": "hunter2-secret", "nested": {"passphrase": "hunter3"}}
    execution.signal.save()
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert "hunter2-secret" not in text and "hunter3" not in text and "passphrase" not in text
    assert "&quot;action&quot;: &quot;buy&quot;" in text


def test_it_shows_a_decision_it_cannot_read_as_stored(trader_client):
    execution = make_execution(1, decision={"legs": [{"purpose": "open"}]})
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert "not in the plan format" in text and "&quot;purpose&quot;: &quot;open&quot;" in text


def test_it_shows_an_execution_that_never_sent_anything(trader_client):
    execution = make_execution(1, status="nothing", decision={}, sent_at=None, acknowledged_at=None, fill_price=None,
                               slippage_bps=None)
    execution.orders.all().delete()
    execution.finished_at = execution.started_at + timedelta(milliseconds=3)
    execution.save()
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert text.count("did not happen") == 2
    assert "No orders were sent." in text and "No decision recorded" in text


def test_it_answers_404_for_an_unknown_execution(trader_client):
    assert trader_client.get("/ui/executions/999/").status_code == 404


def test_it_keeps_the_detail_page_to_a_few_queries(trader_client, django_assert_max_num_queries):
    execution = make_execution(1, received_at=timezone.now())
    with django_assert_max_num_queries(5):
        trader_client.get(f"/ui/executions/{execution.pk}/")
