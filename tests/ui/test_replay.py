"""The replay page (/ui/replay/): the form queues a run, the run's page polls its progress and then shows
Reality beside the two replays, the equity curves and the alerts that differ."""

from decimal import Decimal

import pytest
from django.test import Client

from analytics.models import ReplayRun
from preferences.models import StrategyPreference
from tests.analytics.test_replay_runs import END, START, flat_bars_with_a_dip, recorded_alerts
from tests.support.queue import queued_jobs, run_queued_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSA", sizing="signal", stop_loss=Decimal("3"))


def form(**fields) -> dict:
    return {"strategy": "ALSA", "start": "2026-11-01T00:00", "end": "2026-11-01T02:00", "slippage_bps": "0", **fields}


def test_it_is_behind_a_login_and_in_the_nav(trader_client, strategy):
    anonymous = Client()
    assert anonymous.get("/ui/replay/").status_code == 302
    assert anonymous.get("/ui/replay/1/").status_code == 302
    assert anonymous.get("/ui/replay/1/", headers={"HX-Request": "true"})["HX-Redirect"].startswith("/accounts/login/")
    page = trader_client.get("/ui/replay/").content.decode()
    assert 'href="/ui/replay/" aria-current="page">Replay</a>' in page
    assert '<option value="ALSA">ALSA</option>' in page and 'type="datetime-local"' in page


def test_a_replay_from_the_form_to_its_three_columns(trader_client, strategy, binance_settings, binance_fake):
    flat_bars_with_a_dip(binance_fake)
    recorded_alerts()

    answer = trader_client.post("/ui/replay/", form(stop_loss="2"))

    run = ReplayRun.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/ui/replay/{run.pk}/"
    assert (run.start, run.end, run.overrides, run.slippage_bps) == (START, END, {"stop_loss": "2"}, Decimal(0))
    assert run.created_by == "trader"
    queued = trader_client.get(f"/ui/replay/{run.pk}/").content.decode()
    assert 'hx-trigger="every 1s"' in queued and "<progress" in queued
    poll = trader_client.get(f"/ui/replay/{run.pk}/", headers={"HX-Request": "true"})
    assert poll.status_code == 200 and 'hx-get="/ui/replay/' in poll.content.decode()

    run_queued_jobs()

    poll = trader_client.get(f"/ui/replay/{run.pk}/", headers={"HX-Request": "true"})
    assert poll.headers["HX-Refresh"] == "true"  # done: the whole page, whose charts are drawn on load
    page = trader_client.get(f"/ui/replay/{run.pk}/").content.decode()
    assert "every 1s" not in page
    for column in ("Reality", "Replay, recorded settings", "Replay, new settings"):
        assert column in page
    assert "4.50" in page and "-10.50" in page  # the recorded and new net P&L, to the cent
    # One chart, a line per column: Reality, the recorded settings, the new settings.
    assert page.count('data-chart="lines"') == 1 and 'data-points="replay-curve-0 replay-curve-1 replay-curve-2"' in page
    assert all(f'id="replay-curve-{n}"' in page for n in range(3)) and page.count('class="legend-') == 3
    assert "stop-loss" in page and "Alerts whose outcome differs (2)" in page
    assert '<div class="table-wrap">' in page


def test_a_bad_setting_is_shown_beside_its_field(trader_client, strategy):
    answer = trader_client.post("/ui/replay/", form(leverage="500", take_profit_ladder='[{"pct": 2, "share": 40}]'))
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "a whole number from 1 to 125" in page
    assert not ReplayRun.objects.exists() and not queued_jobs()


def test_a_future_period_is_refused(trader_client, strategy):
    answer = trader_client.post("/ui/replay/", form(end="2099-01-01T00:00"))
    assert "in the future" in answer.content.decode()
    assert not ReplayRun.objects.exists()


def test_a_failed_run_says_why_and_a_run_can_be_deleted(trader_client, strategy):
    run = ReplayRun.objects.create(strategy="ALSA", start=START, end=END, status="failed", error="no symbol rules for X")
    page = trader_client.get(f"/ui/replay/{run.pk}/").content.decode()
    assert "The replay failed: no symbol rules for X" in page
    assert f"#{run.pk}" in trader_client.get("/ui/replay/").content.decode()

    answer = trader_client.post(f"/ui/replay/{run.pk}/delete/")

    assert answer.status_code == 302 and not ReplayRun.objects.exists()
