"""analytics 0008_replay_runs: a new table, empty on an existing deployment (rolling-safe: the previous
release never touches it); going back drops it."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import connection

from tests.migrations.conftest import schema_at

BEFORE = ("analytics", "0007_klines")
REPLAYS = ("analytics", "0008_replay_runs")


def test_it_adds_an_empty_replay_table_and_goes_back(migrator):
    old = schema_at(migrator, [BEFORE])
    kline = old.apps.get_model("analytics", "Kline").objects.create(
        symbol="BTCUSDT", open_time=datetime(2026, 11, 1, tzinfo=UTC), open=Decimal(1), high=Decimal(1), low=Decimal(1),
        close=Decimal(1), volume=Decimal(1))
    assert "analytics_replayrun" not in connection.introspection.table_names()

    new = migrator.apply_tested_migration([REPLAYS])
    replay_run = new.apps.get_model("analytics", "ReplayRun")
    assert not replay_run.objects.exists()  # an existing deployment: none until asked for
    run = replay_run.objects.create(strategy="ALSA", start=datetime(2026, 11, 1, tzinfo=UTC),
                                    end=datetime(2026, 11, 2, tzinfo=UTC), overrides={"stop_loss": "2"})
    run.refresh_from_db()
    assert (run.status, run.progress, run.slippage_bps, run.result, run.overrides) == (
        "queued", 0, Decimal(2), None, {"stop_loss": "2"})
    assert new.apps.get_model("analytics", "Kline").objects.filter(pk=kline.pk).exists()

    back = migrator.apply_tested_migration([BEFORE])
    assert "analytics_replayrun" not in connection.introspection.table_names()
    assert back.apps.get_model("analytics", "Kline").objects.filter(pk=kline.pk).exists()
