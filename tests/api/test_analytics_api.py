"""GET /analytics/summary and GET /account/history: access, the page's own figures, strict parameters,
and a bounded number of queries over a large history."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from analytics.templatetags.ui_tags import amount
from tests.ui.bulk_records import bulk_history
from tests.ui.test_analytics import D1, D2, D3, MIDNIGHT, at, figure, make_history, row, snapshot

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()  # the figures are cached by a fingerprint of the data; each test starts anew
    yield
    cache.clear()


@pytest.fixture
def browser_session(client, reader):
    """One logged-in session for both the page and the API (session authentication)."""
    client.force_login(reader)
    return client


@pytest.mark.parametrize("url", ["/analytics/summary", "/account/history"])
def test_it_refuses_an_anonymous_caller(url):
    response = APIClient().get(url)
    assert response.status_code in (401, 403)
    assert "credentials were not provided" in response.json()["detail"]


def test_it_refuses_a_wrong_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/analytics/summary").status_code == 401


def test_it_answers_a_new_install_with_zeros_and_nulls(api):
    response = api.get("/analytics/summary")
    assert response.status_code == 200
    body = response.json()
    assert body["period"]["name"] == "Last 30 days"
    assert body["pnl"] == {"net": "0", "realized": "0", "commission": "0", "funding": "0", "fees": "0"}
    assert body["stats"]["trades"] == 0 and body["stats"]["win_rate"] is None and body["stats"]["profit_factor"] is None
    assert body["max_drawdown"] == {"amount": "0", "pct": None, "peak": None, "peak_at": None, "trough": None,
                                    "trough_at": None}
    assert body["by_strategy"] == body["days"] == []
    assert [stage["count"] for stage in body["latency"]] == [0] * 5
    assert api.get("/account/history").json() == {"count": 0, "next": None, "previous": None, "results": []}


def test_it_answers_the_hand_computed_figures_as_exact_strings(api):
    make_history()
    body = api.get("/analytics/summary?period=all").json()
    assert body["pnl"] == {"net": "40.084", "realized": "52.004", "commission": "-10.67", "funding": "-1.25",
                           "fees": "-11.92"}
    stats = body["stats"]
    assert (stats["trades"], stats["open_trades"], stats["wins"], stats["losses"], stats["break_even"]) == (3, 1, 1, 1, 1)
    assert stats["win_rate"] == "50"
    assert (stats["average_win"], stats["average_loss"]) == ("95.95", "-54.12")
    assert stats["profit_factor"] == "1.77291205"  # 95.95 ÷ 54.12, to 8 decimals
    assert stats["expectancy"] == "13.94466667"  # (95.95 − 54.12 + 0.004) ÷ 3
    assert body["max_drawdown"]["amount"] == "80" and body["max_drawdown"]["pct"] == "0.79207921"
    assert body["max_drawdown"]["peak_at"] == at(D1, 13).isoformat().replace("+00:00", "Z")
    assert body["max_drawdown"]["trough_at"] == at(D3, 8).isoformat().replace("+00:00", "Z")
    assert body["current_drawdown"]["amount"] == "30"
    assert {group["name"]: group["pnl"]["net"] for group in body["by_strategy"]} == {
        "(unattributed)": "-1.5", "S1": "41.83", "S2": "-0.246"}
    assert [(group["name"], group["pnl"], group["stats"]["win_rate"]) for group in body["by_side"]] == [
        ("long", None, "100"), ("short", None, "0")]
    assert [(day["period"], day["pnl"]["net"]) for day in body["days"]][-1] == (f"{D1:%Y-%m-%d}", "95.95")
    queue = body["latency"][0]
    assert (queue["stage"], queue["between"], queue["count"], queue["p50"], queue["p99"]) == (
        "queue", "received → queued", 7, "4", "7")


QUERIES = ["period=all", f"period=range&start={D2:%Y-%m-%d}&end={D2:%Y-%m-%d}", "period=all&strategy=S2",
           "period=all&symbol=BTCUSDT", f"start={D3:%Y-%m-%d}", "period=7d"]


@pytest.mark.parametrize("query", QUERIES)
def test_it_answers_the_figures_the_page_shows(browser_session, query):
    make_history()
    page = browser_session.get(f"/ui/analytics/?{query}").content.decode()
    body = browser_session.get(f"/analytics/summary?{query}").json()
    pnl, stats = body["pnl"], body["stats"]
    shown = {name: figure(page, name) for name in (
        "net", "realized", "commission", "funding", "trades", "win-rate", "outcomes", "average-win", "average-loss",
        "profit-factor", "expectancy", "max-drawdown", "current-drawdown")}
    assert shown == {
        "net": amount(pnl["net"], 2), "realized": amount(pnl["realized"], 2),
        "commission": amount(pnl["commission"], 2), "funding": amount(pnl["funding"], 2),
        "trades": str(stats["trades"]),
        "win-rate": "—" if stats["win_rate"] is None else f"{amount(stats['win_rate'], 1)} %",
        "outcomes": f"{stats['wins']} won · {stats['losses']} lost · {stats['break_even']} break-even",
        "average-win": amount(stats["average_win"], 2), "average-loss": amount(stats["average_loss"], 2),
        "profit-factor": amount(stats["profit_factor"], 2), "expectancy": amount(stats["expectancy"], 2),
        "max-drawdown": amount(body["max_drawdown"]["amount"], 2),
        "current-drawdown": amount(body["current_drawdown"]["amount"], 2),
    }
    for group in body["by_strategy"] + body["by_symbol"]:
        assert f">{amount(group['pnl']['net'], 2)}<" in row(page, "group", group["name"])
    for day in body["days"]:
        assert f"<strong>{amount(day['pnl']['net'], 2)}</strong>" in row(page, "period", day["period"])
    for stage in body["latency"]:
        assert f">{amount(stage['p50'], 1)}<" in row(page, "stage", stage["stage"])


@pytest.mark.parametrize(("query", "named"), [
    ("period=1y", "period"),
    ("period=", "period"),
    ("start=2024-13-01", "start"),
    ("start=2024-1-5", "start"),
    ("start=20240105", "start"),
    ("end=yesterday", "end"),
    ("end=", "end"),
    ("strategy=", "strategy"),
    ("symbol=BTC%00USDT", "symbol"),
])
def test_it_answers_400_naming_a_bad_parameter(api, query, named):
    make_history()
    response = api.get(f"/analytics/summary?{query}")
    assert response.status_code == 400
    assert list(response.json()) == [named]


@pytest.mark.parametrize(("query", "period"), [
    ("strategy=NOBODY", "Last 30 days"),
    ("symbol=DOGEUSDT", "Last 30 days"),
    (f"start={D3:%Y-%m-%d}&end={D1:%Y-%m-%d}", f"{D3:%Y-%m-%d} to {D1:%Y-%m-%d}"),
])
def test_it_answers_zero_figures_where_the_page_would_refuse(api, query, period):
    """What the schema allows is answered: a strategy or symbol without trades, a "From" after the "To"."""
    make_history()
    response = api.get(f"/analytics/summary?{query}")
    assert response.status_code == 200
    body = response.json()
    assert body["period"]["name"] == period
    assert (body["pnl"]["net"], body["stats"]["trades"], body["days"]) == ("0", 0, [])


def test_it_reads_a_range_without_days_as_all_time(api):
    make_history()
    response = api.get("/analytics/summary?period=range")
    assert response.status_code == 200
    assert response.json()["period"] == {"name": "All time", "start": None, "end": None}
    assert response.json()["stats"]["trades"] == api.get("/analytics/summary?period=all").json()["stats"]["trades"] > 0


def test_it_reads_a_range_to_the_end_of_the_calendar_as_open_ended(api):
    make_history()
    body = api.get(f"/analytics/summary?start={D2:%Y-%m-%d}&end=9999-12-31").json()
    assert (body["period"]["start"], body["period"]["end"]) == (D2.isoformat().replace("+00:00", "Z"), None)
    assert body["pnl"]["net"] == "-55.866"  # D2 −55.62, D3 0.254, D4 −0.5


def test_it_lists_the_current_accounts_snapshots_newest_first_paginated(api):
    for minutes in range(60):
        snapshot(MIDNIGHT + timedelta(minutes=minutes), f"{10_000 + minutes}.5000")
    snapshot(MIDNIGHT + timedelta(hours=2), "1", account="binance-live-0123")  # another account: not listed
    body = api.get("/account/history").json()
    assert body["count"] == 60
    assert len(body["results"]) == 50 and body["next"].endswith("/account/history?page=2")
    newest = body["results"][0]
    assert (newest["equity"], newest["wallet_balance"], newest["unrealized_pnl"]) == ("10059.5", "10059.5", "0")
    assert newest["taken_at"] == (MIDNIGHT + timedelta(minutes=59)).isoformat().replace("+00:00", "Z")
    assert newest["account"] == "paper"
    assert [item["equity"] for item in api.get("/account/history?page=2").json()["results"]][-1] == "10000.5"


def test_it_reads_a_bounded_number_of_queries_over_a_large_history(api, django_assert_max_num_queries):
    bulk_history(executions=10_000, ledger=50_000, snapshots=2_000)
    for url in ("/analytics/summary?period=all", "/analytics/summary?period=7d&strategy=TREND",
                f"/analytics/summary?start={D1:%Y-%m-%d}&symbol=ETHUSDT"):
        cache.clear()
        with django_assert_max_num_queries(13):
            assert api.get(url).status_code == 200
        with django_assert_max_num_queries(8):  # the same again: from the cache
            api.get(url)
    with django_assert_max_num_queries(3):  # the token, the count, the page
        assert len(api.get("/account/history?page=3").json()["results"]) == 50
