"""The chaos proof's deployment pieces (bench/chaos.py): a database and a Redis database of the run's
own, a peek at the database without Django, and the two worker clusters with the thread that kills
one of them at random every few seconds (and one of the qclusters at moments planned into the load's
bar-close bursts) and starts it again at once."""

import contextlib
import ctypes
import math
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common import ROOT


@contextlib.contextmanager
def database(kind: str, server_url: str, keep: bool):
    """A database nobody else uses, dropped afterwards (unless `keep`); yields its URL."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="alsatrade-chaos-")
        yield f"sqlite:///{folder}/chaos.sqlite3"
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        return
    import psycopg

    name = f"chaos_{os.getpid()}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield urlsplit(server_url)._replace(path=f"/{name}").geturl()
    finally:
        if not keep:
            with psycopg.connect(server_url, autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def broker(kind: str, redis_url: str):
    """The Redis database the run owns, emptied before and after; None for the ORM broker."""
    if kind == "orm":
        yield None
        return
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield redis_url
    finally:
        client.flushdb()


class Peek:
    """Counts read straight from the database while the run goes on (no Django in this process)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def scalar(self, sql: str) -> int:
        return int(self.rows(sql)[0][0])

    def rows(self, sql: str) -> list[tuple]:
        if self.url.startswith("sqlite"):
            with contextlib.closing(sqlite3.connect(self.url.removeprefix("sqlite:///"), timeout=20)) as connection:
                return connection.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as connection:
            return connection.execute(sql).fetchall()


def become_subreaper() -> None:
    """Adopt the orphans of a killed cluster and reap them, as systemd would. PID 1 of this machine
    does not reap: a killed worker would stay a zombie, alive to `kill(pid, 0)`, and its lanes would
    wait out their lease instead of being freed at once (trading/lanes.py)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


class Cluster:
    """One `manage.py qcluster` (sentinel, workers, monitor, pusher) in a process group of its own;
    or, with command="userstream", the user data stream process."""

    def __init__(self, name: str, env: dict, logs: Path, command: str = "qcluster") -> None:
        self.name, self.env, self.command = name, env, command
        self.log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 (open for the run's length)
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "manage.py", self.command], cwd=ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def pids(self) -> set[int]:
        members = set()
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError, ValueError, IndexError):
                if entry.name.isdigit() and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) == self.process.pid:
                    members.add(int(entry.name))
        return members

    def kill(self) -> set[int]:
        """SIGKILL every process of the cluster at once; nothing gets to clean up. The pids killed."""
        members = self.pids() | {self.process.pid}
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        _reap(members - {self.process.pid})
        return members

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the sentinel stops its own workers
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def _reap(pids: set[int], patience: float = 2.0) -> None:
    deadline = time.time() + patience
    waiting = set(pids)
    while waiting and time.time() < deadline:
        for pid in list(waiting):
            try:
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    waiting.discard(pid)
            except ChildProcessError:
                pass  # not adopted yet (its parent is still being torn down), or reaped by someone else
        time.sleep(0.01)


@dataclass
class Kill:
    at: float
    cluster: str
    lanes_held: int  # lanes its processes held at the kill: work interrupted mid-way
    planned: bool = False  # a kill planned into a bar-close burst (Killer.plan), not a random one


class Killer(threading.Thread):
    """Every `every` s (± half), SIGKILL one cluster (or the stream process) at random and start it
    again at once; and at each moment given to plan(), one of the worker clusters likewise."""

    def __init__(self, clusters: list[Cluster], every: float, seed: int, peek: Peek) -> None:
        super().__init__(name="killer", daemon=True)
        self.clusters, self.every, self.rng, self.peek = clusters, every, random.Random(seed), peek
        self.planned_rng = random.Random(f"{seed} planned")  # the random kills draw as they did without plans
        self.kills: list[Kill] = []
        self.planned: list[float] = []  # epoch seconds, earliest first
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.killing_stream = threading.Lock()  # held through each kill and restart of the stream process
        self.stream_quiet_until = 0.0  # epoch seconds: the stream process is not killed before then
        self.spared = 0  # kills of the stream skipped for it (quiet_stream)

    def quiet_stream(self, seconds: float) -> None:
        """Keep the user data stream alive for `seconds` from now (a kill of it drawn meanwhile is skipped):
        the exchange's own fills (a protective order triggered) reach us only through the stream,
        which Binance does not replay. Returns once a kill of the stream under way has finished."""
        with self.lock:
            self.stream_quiet_until = max(self.stream_quiet_until, time.time() + seconds)
        with self.killing_stream:
            pass

    def plan(self, moments: list[float]) -> None:
        """Also kill a worker cluster (a qcluster, never the stream process) at each of these moments."""
        with self.lock:
            self.planned = sorted(self.planned + moments)

    def run(self) -> None:
        random_due = time.time() + self.every * self.rng.uniform(0.5, 1.5)
        while not self.stopping.is_set():
            with self.lock:
                planned_due = self.planned[0] if self.planned else math.inf
            due = min(random_due, planned_due)
            if time.time() < due:  # short waits, so that a plan made meanwhile is kept
                self.stopping.wait(min(0.02, due - time.time()))
                continue
            if planned_due <= random_due:
                with self.lock:
                    self.planned.pop(0)
                workers = [cluster for cluster in self.clusters if cluster.command == "qcluster"]
                self.kill(self.planned_rng.choice(workers), planned=True)
            else:
                self.kill(self.rng.choice(self.clusters), planned=False)
                random_due = time.time() + self.every * self.rng.uniform(0.5, 1.5)

    def kill(self, victim: Cluster, *, planned: bool) -> None:
        """SIGKILL the victim, start it again, and record how many lanes it held."""
        stream = victim.command == "userstream"
        with self.killing_stream if stream else contextlib.nullcontext():
            with self.lock:
                if stream and self.stream_quiet_until > time.time():
                    self.spared += 1  # the ladder phase is moving prices: this kill of the stream is skipped
                    return
            holders = [row[0] for row in self.peek.rows("SELECT holder FROM trading_symbollane WHERE holder <> ''")]
            at = time.time()
            killed = victim.kill()
            victim.start()
            held = sum(1 for holder in holders if int(holder.rsplit(":", 2)[1]) in killed)
            self.kills.append(Kill(at, victim.name, held, planned))

    def stop(self) -> None:
        self.stopping.set()
        self.join()
