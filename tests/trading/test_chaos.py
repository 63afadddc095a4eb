"""The chaos proof's short variant (bench/chaos.py, docs/BENCHMARKS.md): 200 webhooks at 50/s through a
real deployment — PostgreSQL, the Redis broker, gunicorn, two qcluster processes SIGKILLed at random,
the fake exchange failing orders at random — end with nothing lost, doubled or misreported.

It needs the PostgreSQL server and the Redis of DATABASE_URL and REDIS_URL (CI's PostgreSQL + Redis
run): it creates and drops a database of its own on that server and uses Redis database 11."""

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.chaos]

ROOT = Path(__file__).resolve().parents[2]


def servers() -> tuple[str, str]:
    """The PostgreSQL server (its maintenance database) and a Redis database the run may flush."""
    database, redis = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not database.startswith(("postgres://", "postgresql://", "pgsql://")) or not redis.startswith("redis://"):
        pytest.skip("the chaos proof runs on PostgreSQL with the Redis broker: set DATABASE_URL=postgres://… and "
                    "REDIS_URL=redis://… (CI's PostgreSQL + Redis run does)")
    server = urlsplit(database)._replace(scheme="postgres", path="/postgres").geturl()
    return server, urlsplit(redis)._replace(path="/11").geturl()


def test_it_loses_doubles_and_misreports_nothing_while_workers_die_and_the_exchange_fails():
    server, redis = servers()
    command = [sys.executable, "bench/chaos.py", "--signals", "200", "--rate", "50", "--timeout", "100",
               "--database-url", server, "--redis-url", redis]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, f"{result.stdout[-8000:]}\n{result.stderr[-4000:]}"
    assert "RESULT: PASS" in result.stdout
