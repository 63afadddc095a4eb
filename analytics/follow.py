"""The ledger follows the fills: each fill the user data stream reports brings a ledger import forward.

Binance books a fill's income (realized P&L, commission) a moment after the trade, and the import reads
it from `/fapi/v1/income` (weight 30 a call, every symbol at once). So the stream process runs one
LedgerFollower beside the stream, which queues `analytics.tasks.import_ledger_after_fills`:
- FOLLOW_DELAY after a fill, so the income is booked by the time the import reads it (a line booked
  later still is read by the next import: the next fill's, or the 5-minute one's, which re-reads the
  last 5 minutes);
- once for a burst: the delay runs from the burst's last fill, but no longer than FOLLOW_MAX_WAIT from
  its first, and imports are at least FOLLOW_DELAY apart. A fill less than FOLLOW_DELAY before an
  import gets another one after it.
The import reads the whole account, so one import covers every symbol filled in the burst; the task is
given their names for its log. Imports pending when the stream process stops are left to the
5-minute import.
"""

import math
import threading
import time

from django.db import close_old_connections, connection

from trading.queue import enqueue_task

IMPORT_TASK = "analytics.tasks.import_ledger_after_fills"
FOLLOW_DELAY = 2.0  # seconds from a burst's last fill to its import
FOLLOW_MAX_WAIT = 10.0  # seconds from a burst's first fill to its import, however long the burst
TICK = 0.1  # seconds between looks for an import fallen due


class LedgerFollower:
    """Which imports to queue when, after which fills (`take_due`, given the time), and the thread that
    queues them (`start`, `close`). Times are time.monotonic() seconds."""

    def __init__(self, *, delay: float | None = None, max_wait: float | None = None) -> None:
        self.delay = FOLLOW_DELAY if delay is None else delay
        self.max_wait = FOLLOW_MAX_WAIT if max_wait is None else max_wait
        self._lock = threading.Lock()  # fills are seen on the stream's thread, imports queued on ours
        self._fills: dict[str, float] = {}  # symbol → its latest fill not yet followed by an import
        self._first = 0.0  # when the first of those fills came
        self._imported = -math.inf  # when the last import was queued (monotonic seconds; none yet)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fill_seen(self, symbol: str, now: float | None = None) -> None:
        at = time.monotonic() if now is None else now
        with self._lock:
            if not self._fills:
                self._first = at
            self._fills[symbol] = at

    def take_due(self, now: float) -> list[str]:
        """The symbols whose fills an import should follow now; [] when none is due."""
        with self._lock:
            if not self._fills:
                return []
            burst_over = min(max(self._fills.values()) + self.delay, self._first + self.max_wait)
            if now < max(burst_over, self._imported + self.delay):
                return []
            symbols = sorted(self._fills)
            # A fill younger than the delay may not be booked yet: another import follows it.
            self._fills = {symbol: at for symbol, at in self._fills.items() if at > now - self.delay}
            self._first = min(self._fills.values(), default=now)
            self._imported = now
            return symbols

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ledger-follower", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(TICK):
                symbols = self.take_due(time.monotonic())
                if symbols:
                    close_old_connections()  # the ORM broker writes the job with this thread's connection
                    enqueue_task(IMPORT_TASK, *symbols)
        finally:
            connection.close()
