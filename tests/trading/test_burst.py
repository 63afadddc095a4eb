"""The bar-close benchmark's CI-sized variant (bench/burst.py, docs/BENCHMARKS.md): 30 alerts over 10
symbols within half a second through a real deployment — gunicorn, a qcluster with its order threads, the
fake exchange 50 ms away enforcing Binance's order rate limits — every alert filled exactly once.

On a throw-away SQLite file; with the Redis broker when REDIS_URL is set (its job queue is purged), else
the ORM broker."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_it_fills_every_alert_of_a_bar_close_once():
    redis = os.environ.get("REDIS_URL", "")
    broker = ["--brokers", "redis", "--redis-url", redis] if redis.startswith("redis://") else ["--brokers", "orm"]
    command = [sys.executable, "bench/burst.py", "--alerts", "30", "--symbols", "10", "--rtt", "0.05", "--runs", "1",
               *broker]
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, f"{result.stdout[-6000:]}\n{result.stderr[-4000:]}"
    assert "every alert filled once, no client order id twice, no 429" in result.stdout
    assert "RESULT: PASS" in result.stdout
