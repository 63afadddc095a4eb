"""Per-symbol lanes: a leased row per symbol, so one worker at a time executes a symbol's signals.

The lease is taken with a conditional UPDATE (free, or its holder's lease lapsed) and every lease
time is the *database's* clock (`Now()`), so hosts whose clocks disagree still agree on who holds a
lane. A lane is held by one `Lane` object, named `host:pid:token`:
- while it is held, the process's keeper thread renews it every second (LANE_LEASE / 4), so a
  holder blocked in a slow exchange request keeps it, and a killed one loses it within LANE_LEASE;
- a holder on this host whose process is gone is dead *now*: `dead_lanes_free` frees its lanes
  without waiting for the lease (a worker restarted after a crash resumes at once);
- `Lane.check()` raises LaneLost once the lease is gone, and the order sender's compare-and-set
  only moves an order to `sent` while the lease is held (`held`).
"""

import logging
import os
import socket
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import DateTimeField, DurationField, Exists, ExpressionWrapper, Q, QuerySet, Value
from django.db.models.functions import Now

from trading.models import SymbolLane
from trading.reused import ReusedUpdate

logger = logging.getLogger(__name__)

HOST = socket.gethostname()[:60]


class LaneLost(Exception):
    """This worker no longer holds the lane: it must stop before sending anything."""


def _lease() -> timedelta:
    return timedelta(seconds=settings.LANE_LEASE)


def _lease_end(lease: timedelta | None = None) -> ExpressionWrapper:
    """`now + lease` on the database's clock."""
    return ExpressionWrapper(Now() + Value(_lease() if lease is None else lease, output_field=DurationField()),
                             output_field=DateTimeField())


def held(symbol: str, holder: str) -> Exists:
    """True while `holder` holds the symbol's lane under a live lease (a condition for an UPDATE)."""
    return Exists(SymbolLane.objects.filter(symbol=symbol, holder=holder, lease_until__gte=Now()))


def _take_update(*, symbol: str, holder: str, lease: timedelta) -> tuple[QuerySet[SymbolLane], dict[str, object]]:
    """Lease the lane to `holder` if it is free or its lease lapsed."""
    return (SymbolLane.objects.filter(symbol=symbol).filter(Q(holder="") | Q(lease_until__lt=Now())),
            {"holder": holder, "lease_until": _lease_end(lease)})


# Taking a lane is the first statement of every task: its SQL is written once (trading/reused.py).
_TAKE = ReusedUpdate(_take_update, symbol=SymbolLane._meta.get_field("symbol"),
                     holder=SymbolLane._meta.get_field("holder"), lease=DurationField())


class Lane:
    def __init__(self, symbol: str, holder: str) -> None:
        self.symbol = symbol
        self.holder = holder
        self.renewed_at = time.monotonic()
        self.lost = False

    @classmethod
    def acquire(cls, symbol: str) -> "Lane | None":
        """The symbol's lane if it is free (or its holder's lease lapsed), else None."""
        holder = f"{HOST}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # One statement once the symbol's row exists; it is created on the symbol's first signal only.
        taken = cls._take(symbol, holder)
        if not taken and not SymbolLane.objects.filter(symbol=symbol).exists():
            SymbolLane.objects.get_or_create(symbol=symbol)  # a row another worker created just now does as well
            taken = cls._take(symbol, holder)
        if not taken:
            return None
        lane = cls(symbol, holder)
        KEEPER.hold(lane)
        return lane

    @staticmethod
    def _take(symbol: str, holder: str) -> bool:
        """The conditional UPDATE that leases the lane to `holder` if it is free or its lease lapsed."""
        return _TAKE.run(symbol=symbol, holder=holder, lease=_lease()) == 1

    def renew(self) -> bool:
        """Extend the lease, only if it is still ours and has not lapsed; False marks it lost."""
        renewed = SymbolLane.objects.filter(symbol=self.symbol, holder=self.holder, lease_until__gte=Now()).update(
            lease_until=_lease_end()
        )
        if renewed:
            self.renewed_at = time.monotonic()
        else:
            self.lost = True
        return bool(renewed)

    def check(self) -> None:
        """Raise LaneLost unless the lease is held; renews it when the keeper has not lately."""
        if not self.lost and time.monotonic() - self.renewed_at > settings.LANE_LEASE / 4:
            self.renew()
        if self.lost:
            raise LaneLost(f"the {self.symbol} lane is no longer held by {self.holder}")

    def release(self) -> None:
        KEEPER.drop(self)
        SymbolLane.objects.filter(symbol=self.symbol, holder=self.holder).update(holder="", lease_until=None)


class _Keeper:
    """Renews every lane this process holds, every LANE_LEASE / 4 seconds, from a daemon thread."""

    def __init__(self) -> None:
        self.lanes: set[Lane] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def hold(self, lane: Lane) -> None:
        with self.lock:
            self.lanes.add(lane)
            if settings.LANE_KEEPER and (self.thread is None or not self.thread.is_alive()):
                self.thread = threading.Thread(target=self._run, name="lane-keeper", daemon=True)
                self.thread.start()

    def drop(self, lane: Lane) -> None:
        with self.lock:
            self.lanes.discard(lane)

    def holders(self) -> set[str]:
        with self.lock:
            return {lane.holder for lane in self.lanes}

    def _run(self) -> None:
        while True:
            time.sleep(settings.LANE_LEASE / 4)
            with self.lock:
                lanes = list(self.lanes)
            for lane in lanes:
                try:
                    lane.renew()
                except Exception:  # the database is away: the holder's own check() will say so
                    logger.warning("lane keeper: could not renew the %s lane", lane.symbol, exc_info=True)
                    connection.close()
            close_old_connections()


KEEPER = _Keeper()


def dead_lanes_free() -> list[str]:
    """Free the lanes held by processes of this host that are gone; the symbols freed."""
    freed = []
    for symbol, holder in SymbolLane.objects.exclude(holder="").filter(holder__startswith=f"{HOST}:").values_list(
        "symbol", "holder"
    ):
        if _holder_is_dead(holder) and SymbolLane.objects.filter(symbol=symbol, holder=holder).update(
            holder="", lease_until=None
        ):
            logger.warning("freed the %s lane of %s: its process is gone", symbol, holder)
            freed.append(symbol)
    return freed


def _holder_is_dead(holder: str) -> bool:
    _, pid_text, _ = holder.rsplit(":", 2)
    pid = int(pid_text)
    if pid == os.getpid():
        return holder not in KEEPER.holders()  # an earlier process with our pid, or a lane we dropped
    return process_gone(pid)


def process_gone(pid: int) -> bool:
    """Whether the process `pid` of this host has ended (an unreaped zombie has)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # another user's process: alive
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """A killed process nobody reaped (no init in a container) still answers kill(pid, 0)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def busy_symbols() -> set[str]:
    """Symbols whose lane is held under a live lease."""
    return set(SymbolLane.objects.exclude(holder="").filter(lease_until__gte=Now()).values_list("symbol", flat=True))
