"""The replay API (analytics/api.py): POST /replay queues a run, GET /replay/{id} follows it, DELETE
removes it; a bad field is a 400 naming it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from analytics.models import ReplayRun
from preferences.models import StrategyPreference
from tests.analytics.test_replay_runs import END, START, flat_bars_with_a_dip, recorded_alerts
from tests.support.queue import queued_jobs, run_queued_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSA", sizing="signal", stop_loss=Decimal("3"))


def body(**fields) -> dict:
    return {"strategy": "ALSA", "from": "2026-11-01T00:00:00Z", "to": "2026-11-01T02:00:00Z", **fields}


def test_a_replay_round_trip(api, strategy, binance_settings, binance_fake):
    flat_bars_with_a_dip(binance_fake)
    recorded_alerts()

    answer = api.post("/replay", body(preferences={"stop_loss": 2}, slippage_bps=0), format="json")

    assert answer.status_code == 202, answer.json()
    run_id = answer.json()["id"]
    assert answer.json() == {"id": run_id, "status": "queued"}
    queued = api.get(f"/replay/{run_id}").json()
    assert (queued["status"], queued["progress"], queued["reality"], queued["differences"]) == ("queued", 0, None, None)
    assert (queued["from"], queued["to"]) == ("2026-11-01T00:00:00Z", "2026-11-01T02:00:00Z")

    run_queued_jobs()

    done = api.get(f"/replay/{run_id}").json()
    assert (done["status"], done["progress"], done["preferences"], done["slippage_bps"]) == ("done", 100, {"stop_loss": "2"}, "0")
    assert (done["recorded"]["net_pnl"], done["changed"]["net_pnl"]) == ("4.4975", "-10.495")
    assert done["reality"]["net_pnl"] == "0" and done["reality"]["trades"] == 0
    assert done["recorded"]["equity_curve"][0] == {"time": "2026-11-01T00:10:00Z", "equity": "10000"}
    assert [row["changed"]["exits"] for row in done["differences"]] == ["stop-loss", ""]
    assert done["created_by"] == "reader"
    assert done["differences_total"] == 2 and done["alerts"] == 2 and done["notes"]
    assert [run["id"] for run in api.get("/replay").json()] == [run_id]

    assert api.delete(f"/replay/{run_id}").status_code == 204
    assert api.get(f"/replay/{run_id}").status_code == 404
    assert api.get("/replay").json() == []


def test_the_slippage_defaults_to_2_bps(api, strategy):
    answer = api.post("/replay", body(), format="json")
    assert answer.status_code == 202
    assert ReplayRun.objects.get().slippage_bps == Decimal(2)


@pytest.mark.parametrize(("fields", "named"), [
    ({"from": "2026-11-01"}, "from"),
    ({"to": "yesterday"}, "to"),
    ({"from": "2026-11-01T03:00:00Z"}, "from"),  # after `to`
    ({"from": "2026-07-01T00:00:00Z"}, "from"),  # over 90 days
    ({"to": (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}, "to"),
    ({"slippage_bps": -1}, "slippage_bps"),
    ({"slippage_bps": "2"}, "slippage_bps"),
    ({"preferences": {"leverage": 500}}, "leverage"),
    ({"preferences": {"stop_loss": "three"}}, "stop_loss"),
    ({"preferences": {"take_profit": [{"pct": 2, "share": 40}]}}, "take_profit"),
    ({"preferences": {"trading_hours": "mon 07:00-08:00"}}, "trading_hours"),
    ({"preferences": []}, "preferences"),
    ({"strategy": ""}, "strategy"),
])
def test_a_bad_field_is_a_400_naming_it(api, strategy, fields, named):
    answer = api.post("/replay", body(**fields), format="json")
    assert answer.status_code == 400, answer.json()
    assert named in answer.json()
    assert not ReplayRun.objects.exists() and not queued_jobs()


def test_an_unknown_strategy_is_a_404_naming_it(api, strategy):
    answer = api.post("/replay", body(strategy="NOPE"), format="json")
    assert answer.status_code == 404
    assert "NOPE" in answer.json()["detail"]


def test_a_run_is_behind_a_login_and_a_bad_id_is_refused(api, client, strategy):
    assert client.get("/replay").status_code == 401
    assert api.get("/replay/abc").status_code == 400
    assert api.get(f"/replay/{2**63}").status_code == 404
    assert api.delete("/replay/12345").status_code == 404


def test_a_failed_run_says_why(api, strategy, settings):
    run = ReplayRun.objects.create(strategy="ALSA", start=START, end=END, status="failed",
                                   error="no symbol rules for NOPEUSDT")
    answer = api.get(f"/replay/{run.pk}").json()
    assert (answer["status"], answer["error"], answer["changed"]) == ("failed", "no symbol rules for NOPEUSDT", None)
