"""Long-running processes put what loading the app allocated out of the garbage collector's full
collections (alsatrade/startup.py): the web process when its WSGI app loads, each django-q2 worker
when it is spawned. And a web process connects before its first webhook (trading.webhook.warm_up)."""

import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
from django.db import connection
from django_q.signals import post_spawn

from alsatrade.startup import startup_objects_freeze

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database_url(db, tmp_path) -> str:
    """The test run's PostgreSQL database (`db`: it exists, whichever tests run), or a SQLite file of
    the test's own."""
    database = connection.settings_dict
    if connection.vendor != "postgresql":
        return f"sqlite:///{tmp_path / 'web.sqlite3'}"
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def wsgi_loaded(code: str, database_url: str, **env: str) -> subprocess.CompletedProcess:
    """`import alsatrade.wsgi` (what a gunicorn worker does) in a fresh interpreter, then `code`,
    with the test run's Redis (when it has one)."""
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "alsatrade.settings", "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-c", "import alsatrade.wsgi\n" + code], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_the_wsgi_app_freezes_what_loading_it_allocated(database_url):
    frozen = wsgi_loaded("import gc; print(gc.get_freeze_count())", database_url)
    assert frozen.returncode == 0, frozen.stderr
    assert int(frozen.stdout.splitlines()[-1]) > 20_000  # Django, DRF and the apps: ~100,000 objects


def test_a_web_process_connects_before_its_first_webhook(database_url):
    """Its first webhook would otherwise pay for connecting (and, with Redis, importing redis-py and
    loading the rate limit's script) after stamping its receipt: ~70 ms on an idle machine, the
    window in which a younger signal is stored first (docs/EXECUTION.md, step 1)."""
    code = ("from django.db import connection; from trading.queue import broker; from trading.rate_limit import _SCRIPTS\n"
            "print(connection.connection is not None, broker.cache_info().currsize, len(_SCRIPTS))")
    loaded = wsgi_loaded(code, database_url)
    assert loaded.returncode == 0, loaded.stderr
    redis = bool(os.environ.get("REDIS_URL"))
    assert loaded.stdout.split() == ["True", "1", "1" if redis else "0"], loaded.stdout
    assert "warm-up" not in loaded.stdout + loaded.stderr


def test_a_process_forked_from_a_warmed_one_shares_no_database_connection(database_url):
    code = ("import os; from django.db import connection\n"
            "pid = os.fork()\n"
            "if pid == 0:\n    print('child', connection.connection is None); os._exit(0)\n"
            "os.waitpid(pid, 0)")
    loaded = wsgi_loaded(code, database_url)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines()[-1] == "child True"


@pytest.mark.parametrize(("redis_url", "error"), [("redis://127.0.0.1:1/0", "ConnectionError"), ("", "OperationalError")],
                         ids=["redis away", "database away"])
def test_a_web_process_starts_with_its_database_or_redis_away(redis_url, error):
    loaded = wsgi_loaded("print('started')", "postgres://nobody@127.0.0.1:1/none", REDIS_URL=redis_url)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines()[-1] == "started"
    assert f"webhook warm-up stopped early ({error}" in loaded.stdout + loaded.stderr


def test_every_worker_freezes_when_spawned():
    receivers = [receiver() if isinstance(receiver, weakref.ReferenceType) else receiver
                 for _, receiver, *_ in post_spawn.receivers]
    assert startup_objects_freeze in receivers
