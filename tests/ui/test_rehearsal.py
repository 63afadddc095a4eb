"""The strategy page's "Test an alert" box (issue #21): a pasted TradingView message, its placeholders
given sample values, through the webhook's checks and the worker's decision now — the decision or the
bad field, in under a second, with nothing stored and nothing sent (a request count at the fake)."""

import json
from decimal import Decimal

import pytest

from preferences.views import alert_message
from tests.support.webhook import strategy_create
from trading.models import Execution, Order, Signal
from trading.rehearsal import placeholders_filled

D = Decimal
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def strategy(binance_settings, db):
    return strategy_create(sizing="allocation", allocation_pct=D(10), products=["BTCUSDT"])


def check(trader_client, strategy, message: str, **headers: str):
    return trader_client.post(f"/ui/strategies/{strategy.pk}/rehearse/", {"message": message}, **(headers or HTMX))


def test_the_pages_own_message_would_trade_and_nothing_is_stored_or_sent(trader_client, strategy, binance_fake):
    page = trader_client.get(f"/ui/strategies/{strategy.pk}/")
    assert "Test an alert" in page.content.decode() and page.context["rehearse_message"] == alert_message(strategy.name)
    response = check(trader_client, strategy, alert_message(strategy.name))
    text = response.content.decode()
    rehearsal = response.context["rehearsal"]
    assert (rehearsal.status, rehearsal.outcome) == (202, "trade")
    assert rehearsal.summary.startswith("The webhook would queue it; the worker would now open long 0.")
    [leg] = rehearsal.legs
    assert (leg.purpose, leg.side, leg.entry) == ("open", "BUY", None)
    assert "market" in text and rehearsal.elapsed_ms < 1000
    assert "{{ticker}}" in rehearsal.filled and rehearsal.filled["{{ticker}}"] == "BTCUSDT"
    assert not Signal.objects.exists() and not Execution.objects.exists() and not Order.objects.exists()
    assert binance_fake.requests_to("/fapi/v1/order") == []


def test_a_bad_field_is_named_as_the_webhook_would(trader_client, strategy):
    message = alert_message(strategy.name).replace('"{{strategy.order.action}}"', '"hold"')
    rehearsal = check(trader_client, strategy, message).context["rehearsal"]
    assert rehearsal.status == 400 and "action" in rehearsal.fields
    assert rehearsal.summary.startswith("The webhook would refuse it (400): the alert has bad or missing fields: action")


def test_a_message_that_is_not_json_says_where(trader_client, strategy):
    rehearsal = check(trader_client, strategy, '{"action": "buy",}').context["rehearsal"]
    assert rehearsal.status == 400 and "the body is not valid JSON" in rehearsal.error


def test_a_limit_strategy_shows_the_limit_order(trader_client, strategy):
    strategy.entry, strategy.entry_offset_pct = "post_only", D(1)
    strategy.save()
    response = check(trader_client, strategy, alert_message(strategy.name))
    [leg] = response.context["rehearsal"].legs
    assert leg.entry is not None and leg.entry.post_only and leg.entry.price == D("44550")
    assert "post-only at 44,550, up to 60 s, then cancel" in response.content.decode()


def test_a_disabled_strategy_would_take_it_but_not_trade(trader_client, strategy):
    strategy.enabled = False
    strategy.save()
    rehearsal = check(trader_client, strategy, alert_message(strategy.name)).context["rehearsal"]
    assert (rehearsal.status, rehearsal.outcome) == (200, "filtered")


def test_a_hard_coded_old_time_is_stale(trader_client, strategy):
    message = alert_message(strategy.name).replace('"{{timenow}}"', '"2020-01-01T00:00:00Z"', 1)
    rehearsal = check(trader_client, strategy, message).context["rehearsal"]
    assert rehearsal.status == 400 and rehearsal.error.startswith("stale: sent")


def test_a_close_with_nothing_open_would_send_no_order(trader_client, strategy):
    message = json.dumps({"action": "close", "symbol": "{{ticker}}", "strategy": strategy.name, "time": "{{timenow}}"})
    rehearsal = check(trader_client, strategy, message).context["rehearsal"]
    assert rehearsal.status == 202 and rehearsal.summary.startswith("The webhook would queue it; the worker would send no order")


def test_without_javascript_it_answers_with_a_page(trader_client, strategy):
    response = trader_client.post(f"/ui/strategies/{strategy.pk}/rehearse/", {"message": "{}"})
    assert response.status_code == 200 and "Back to ALSAPRO 1" in response.content.decode()


def test_it_needs_a_login(client, strategy):
    response = client.post(f"/ui/strategies/{strategy.pk}/rehearse/", {"message": "{}"})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_unknown_placeholders_are_left_for_the_parser_to_name(strategy):
    text, filled = placeholders_filled('{"symbol": "{{ticker}}", "x": "{{nonsense}}"}', strategy)
    assert text.startswith('{"symbol": "BTCUSDT"') and "{{nonsense}}" in text and "{{nonsense}}" not in filled
