"""Real worker processes for the fault tests: `manage.py qcluster` against the test database and the
fake exchange, started, killed with SIGKILL, and restarted as an operator (or systemd) would."""

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.db import connection

from tests.fakes.binance_server import API_KEY, API_SECRET, FakeBinance
from trading.models import WorkerHeartbeat

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The test database, for a subprocess to share."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def worker_env(fake: FakeBinance, **extra: str) -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "DATABASE_URL": database_url(),
            "EXCHANGE": "binance", "BINANCE_BASE_URL": fake.url, "BINANCE_API_KEY": API_KEY,
            "BINANCE_API_SECRET": API_SECRET, "BINANCE_RECV_WINDOW": "5000", "BINANCE_TIMEOUT": "5",
            "LANE_KEEPER": "1", "Q_WORKERS": "2", "LOG_LEVEL": "warning", **extra}


class Worker:
    """One qcluster (its sentinel and worker processes, in a process group of their own)."""

    def __init__(self, env: dict[str, str]):
        self.log = tempfile.NamedTemporaryFile(prefix="qcluster-", suffix=".log", delete=False)
        self.started_at = time.time()
        self.process = subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self) -> None:
        """SIGKILL every process of the cluster at once: nothing gets to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-5000:]


def wait_for_worker(since: float, timeout: float = 30) -> None:
    """Until a worker process of a cluster started after `since` beat (its recovery watch runs)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        beat = (WorkerHeartbeat.objects.filter(name__startswith="worker:").order_by("-beat_at")
                .values_list("beat_at", flat=True).first())
        if beat is not None and beat.timestamp() >= since:
            return
        time.sleep(0.1)
    raise TimeoutError("no worker started")
