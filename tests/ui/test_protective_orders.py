"""Protective orders on the pages: every one an execution placed on its page, each open position's live
ones on the dashboard (the rows made directly, as trading/protection.py records them)."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from preferences.models import StrategyPreference
from tests.ui.records import make_account, make_execution, make_protective
from trading.models import Position

pytestmark = pytest.mark.django_db

MINUTES = timedelta(minutes=1)


def ladder(execution, *, symbol="BTCUSDT", position_side="BOTH", side="SELL", breakeven=True):
    """A long's stop, 3-level ladder and trailing stop, placed 10 minutes ago; level 1 then filled and the
    stop moved to breakeven (a new stop placed, the old one cancelled) when `breakeven`."""
    mine = {"symbol": symbol, "position_side": position_side, "side": side}
    make_protective(execution, "stop_loss", "43200", status="cancelled" if breakeven else "active", ago=10 * MINUTES, **mine)
    make_protective(execution, "take_profit", "46000", level=1, quantity="0.037", ago=10 * MINUTES,
                    status="triggered" if breakeven else "active", **mine)
    make_protective(execution, "take_profit", "47000", level=2, quantity="0.037", ago=10 * MINUTES, **mine)
    make_protective(execution, "take_profit", "48000", level=3, quantity="0.037", ago=10 * MINUTES, **mine)
    make_protective(execution, "trailing", "47500", quantity="0.111", callback="1.00", ago=10 * MINUTES, **mine)
    if breakeven:
        make_protective(execution, "stop_loss", "45010", level=1, ago=MINUTES, **mine)


def test_the_execution_page_lists_its_protective_orders_stop_first_then_the_ladder_then_the_trail(trader_client):
    execution = make_execution(1)
    ladder(execution)
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    section = text[text.index("Protective orders"):]
    assert re.findall(r'data-protective="([^"]+)"', section) == [
        "stop_loss", "stop_loss-1", "take_profit-1", "take_profit-2", "take_profit-3", "trailing"]
    for words in ("Take-profit 1 of 3", "Take-profit 2 of 3", "Take-profit 3 of 3", "Trailing stop",
                  "Stop-loss moved to breakeven after take-profit 1 filled", "replaced by the stop below",
                  "activation 47,500, callback 1.0 %", "43,200", "45,010", "46,000", "47,000", "48,000"):
        assert words in section, words
    assert section.count("whole position") == 2  # the two stops: closePosition
    assert section.count(">0.037<") == 3 and ">0.111<" in section
    assert 'data-status="cancelled">Cancelled<' in section
    assert 'data-status="triggered">Triggered<' in section
    assert section.count('data-status="active">Active<') == 4
    assert "No protective orders" not in text


def test_the_execution_page_says_why_one_was_refused(trader_client):
    execution = make_execution(1, protection_alarm="take-profit level 1 at 44000 was refused: Order would immediately trigger.")
    make_protective(execution, "take_profit", "44000", level=1, quantity="0.111", status="rejected",
                    error_message="Order would immediately trigger.")
    make_protective(execution, "trailing", "0", quantity="0.111", callback="0.5", status="placing")
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert 'data-status="rejected">Rejected<' in text and "Order would immediately trigger." in text
    assert "Not protected as the strategy asks: take-profit level 1 at 44000 was refused" in text
    assert "active at once, callback 0.5 %" in text and 'data-status="placing">Placing<' in text


def test_the_execution_page_says_when_none_was_asked_for(trader_client):
    execution = make_execution(1)
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert "No protective orders: neither the strategy nor the alert asked for any." in text


def test_the_execution_page_does_not_say_none_was_asked_for_when_the_strategy_asks(trader_client):
    execution = make_execution(1)
    execution.signal.preference = StrategyPreference.objects.create(name="ALSAPRO 1", stop_loss=Decimal("2"))
    execution.signal.save()
    text = trader_client.get(f"/ui/executions/{execution.pk}/").content.decode()
    assert "No protective orders" not in text
    assert "This execution placed no protective orders." in text


def test_the_execution_page_reads_its_protective_orders_in_one_query(trader_client, django_assert_max_num_queries):
    execution = make_execution(1)
    ladder(execution)
    with django_assert_max_num_queries(6):
        trader_client.get(f"/ui/executions/{execution.pk}/")


def open_long(symbol, position_side="BOTH", amount="0.111"):
    return Position.objects.create(symbol=symbol, position_side=position_side, amount=Decimal(amount),
                                   entry_price=Decimal("45000"), mark_price=Decimal("45100"), leverage=5)


def positions_cell(text, symbol):
    row = re.search(rf"<tr>\s*<td>{symbol}<.*?</tr>", text, re.S)
    assert row, symbol
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row.group(0).split("</td>")[-2]))


def test_the_dashboard_shows_each_open_positions_live_protective_orders(trader_client):
    make_account()  # an ETHUSDT short, unprotected
    open_long("BTCUSDT")
    ladder(make_execution(1))
    text = trader_client.get("/ui/").content.decode()
    assert "<th>Protection</th>" in text
    # The stop moved to breakeven: the cancelled one and the triggered level 1 are not live.
    assert positions_cell(text, "BTCUSDT").strip() == (
        "SL 45,010 breakeven · TP2 47,000 ×0.037 · TP3 48,000 ×0.037 · Trail 1.0 % from 47,500")
    assert "43,200" not in text and "46,000" not in text
    assert positions_cell(text, "ETHUSDT").strip() == "None"


def test_the_dashboard_shows_a_whole_ladder_in_its_order(trader_client):
    open_long("BTCUSDT")
    ladder(make_execution(1), breakeven=False)
    text = trader_client.get("/ui/", headers={"HX-Request": "true"}).content.decode()  # the htmx poll's fragment too
    assert "<html" not in text
    assert positions_cell(text, "BTCUSDT").strip() == (
        "SL 43,200 · TP1 46,000 ×0.037 · TP2 47,000 ×0.037 · TP3 48,000 ×0.037 · Trail 1.0 % from 47,500")


def test_the_dashboard_matches_protective_orders_by_symbol_and_position_side(trader_client):
    open_long("BTCUSDT", "LONG")
    Position.objects.create(symbol="BTCUSDT", position_side="SHORT", amount=Decimal("-0.2"), entry_price=Decimal("45000"))
    execution = make_execution(1)
    make_protective(execution, "stop_loss", "43200", position_side="LONG")
    make_protective(execution, "stop_loss", "46800", position_side="SHORT", side="BUY", status="placing")
    make_protective(execution, "stop_loss", "44000", symbol="SOLUSDT")  # no open position: not shown
    text = trader_client.get("/ui/").content.decode()
    rows = [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", row.split("</td>")[-2])).strip()
            for row in re.findall(r"<tr>\s*<td>BTCUSDT<.*?</tr>", text, re.S)]
    assert rows == ["SL 43,200", "SL 46,800 placing"]
    assert "44,000" not in text


def test_the_dashboard_reads_protective_orders_in_one_query_whatever_the_number_of_positions(trader_client):
    make_account()

    def queries():
        with CaptureQueriesContext(connection) as captured:
            assert trader_client.get("/ui/").status_code == 200
        with CaptureQueriesContext(connection) as polled:
            assert trader_client.get("/ui/", headers={"HX-Request": "true"}).status_code == 200
        return len(captured), len(polled)

    open_long("BTCUSDT")
    ladder(make_execution(1))
    few = queries()
    for n, symbol in enumerate(("SOLUSDT", "XRPUSDT", "BNBUSDT", "DOGEUSDT", "ADAUSDT"), 2):
        open_long(symbol)
        ladder(make_execution(n, symbol=symbol), symbol=symbol)
    text = trader_client.get("/ui/").content.decode()
    assert text.count("TP2 47,000 ×0.037") == 6
    assert queries() == few
