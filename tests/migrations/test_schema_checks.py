"""No process runs on a schema older than its code without saying so: the worker and the user data
stream refuse to start, /health names what is missing (alsatrade/schema.py)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client, override_settings

from tests.migrations.conftest import newest

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "health-token-for-these-tests"


def analytics_after_0005() -> list[str]:
    """What /health should name once analytics is taken back to 0005 (0006 on, however many come)."""
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    older = set(graph.forwards_plan(("analytics", "0005_snapshot_account_index")))
    return [f"{app}.{name}" for app, name in graph.forwards_plan(newest("analytics")[0]) if (app, name) not in older]


@override_settings(HEALTH_TOKEN=TOKEN)
def test_it_names_unapplied_migrations_in_health(migrator):
    migrator.apply_tested_migration([("analytics", "0005_snapshot_account_index")])
    response = Client().get("/health", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 503
    check = response.json()["migrations"]
    assert check["ok"] is False
    assert check["unapplied_migrations"] == analytics_after_0005()
    assert check["error"].startswith(f"{len(analytics_after_0005())} migration(s) not applied: analytics.0006_snapshot_accounts")
    assert check["error"].endswith(": run manage.py migrate")

    migrator.apply_tested_migration(newest("analytics"))
    response = Client().get("/health", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.json()["migrations"] == {"ok": True, "unapplied_migrations": []}


@pytest.mark.slow
@pytest.mark.parametrize(("command", "process"), [("qcluster", "The worker (qcluster)"),
                                                  ("userstream", "The user data stream (userstream)")])
def test_it_refuses_to_start_on_an_unmigrated_database(tmp_path, command, process):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": f"sqlite:///{tmp_path / 'new.sqlite3'}"}
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, "manage.py", command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        pytest.fail(f"{command} started on an unmigrated database")
    assert child.returncode == 1, out + err
    assert time.monotonic() - started < 10
    assert f"{process} refuses to start on an old schema (" in err
    assert err.rstrip().endswith("run manage.py migrate first."), err
