"""Many orders in flight from one worker process: its order threads, owned by one object.

django-q2 runs one task at a time in each worker process, so a task that waits on the exchange holds
the whole process: at a 200 ms round trip a bar-close burst waited alerts × round trip ÷ processes.
Instead `execute_signal` hands its symbol's drain (trading/services.py `symbol_drain`) to this
process's `ORDER_THREADS` and returns; up to WORKER_THREADS drains run at once, each on its own
thread and database connection. Nothing else changes: the symbol's lane still orders its signals
(one drain per symbol at a time, in the whole deployment), the compare-and-set still sends each
order once, and a process that dies with drains in its threads is a dead lane holder like any
other: recovery (trading/recovery.py) frees its lanes and queues their pending signals again.

- A task for a symbol whose drain is already waiting or running in this process adds nothing: that
  drain looks once more when it ends (`again`), so a signal committed meanwhile is not left behind.
- When every thread is busy, the task waits for one (up to PERMIT_PATIENCE), so the process takes
  no more tasks and the other worker processes take them.
- Threads start on demand and end after THREAD_IDLE seconds without work, closing their database
  connections; a worker process that stops (django-q2's STOP, or recycling) lets its drains finish.
- Outside a qcluster worker (tests, `manage.py shell`, a synchronous queue) the pool is not started
  and the drain runs in the caller's thread, as before.
"""

import logging
import queue
import threading
from collections.abc import Callable
from multiprocessing import util as multiprocessing_util

from django.conf import settings
from django.db import close_old_connections, connections

logger = logging.getLogger(__name__)

THREAD_IDLE = 120.0  # seconds an idle order thread waits for work before it ends (and closes its connections)
PERMIT_PATIENCE = 25.0  # seconds a task waits for a free thread; well below django-q2's task timeout (60 s)
_STOP = ""


class OrderThreads:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.size = 0  # 0: not started in this process; work runs in the caller's thread
        self.work: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.jobs: dict[str, tuple[Callable[[], object], bool]] = {}  # key → (its work, holds a permit), while waiting or running
        self.again: set[str] = set()  # keys asked for again while their work runs
        self.threads: set[threading.Thread] = set()
        self.permits = threading.BoundedSemaphore(1)

    @property
    def started(self) -> bool:
        return self.size > 0

    def start(self, size: int | None = None) -> None:
        """Run work on up to `size` threads (WORKER_THREADS) from now on, in this process."""
        with self.lock:
            if self.started:
                return
            self.size = size or settings.WORKER_THREADS
            self.permits = threading.BoundedSemaphore(self.size)
        # Let running drains finish when the worker process ends (multiprocessing runs this as the
        # process's work function returns); idle threads leave at once.
        multiprocessing_util.Finalize(self, OrderThreads.stop, args=(self,), exitpriority=100)

    def submit(self, key: str, work: Callable[[], object]) -> bool:
        """Run `work` on a thread, unless work for `key` is already waiting or running here: it then
        runs once more when it ends. False when folded into that one."""
        with self.lock:
            if key in self.jobs:
                self.again.add(key)
                return False
        permitted = self.permits.acquire(timeout=PERMIT_PATIENCE)
        if not permitted:  # drains are bounded by their deadline; this only guards the task's own timeout
            logger.warning("all %d order threads busy for %.0f s: %s waits in line", self.size, PERMIT_PATIENCE, key)
        with self.lock:
            if key in self.jobs:  # submitted by another thread while this one waited
                self.again.add(key)
                if permitted:
                    self.permits.release()
                return False
            self.jobs[key] = (work, permitted)
            self.work.put(key)
            if len(self.jobs) > len(self.threads) and len(self.threads) < self.size:
                # Daemon: an interpreter that exits without stop() must not wait THREAD_IDLE on an idle one.
                thread = threading.Thread(target=self._serve, name=f"orders-{len(self.threads) + 1}", daemon=True)
                self.threads.add(thread)
                thread.start()
        return True

    def busy(self) -> int:
        """Keys whose work is waiting or running."""
        with self.lock:
            return len(self.jobs)

    def stop(self, timeout: float | None = None) -> None:
        """Let the work under way finish, end every thread, and run inline from now on."""
        with self.lock:
            threads, self.size = list(self.threads), 0
            for _ in threads:
                self.work.put(_STOP)
        for thread in threads:
            thread.join(timeout)

    def _serve(self) -> None:
        try:
            while (key := self._next()) is not None:
                self._run(key)
        finally:
            connections.close_all()  # this thread's connections: nobody else would ever close them

    def _next(self) -> str | None:
        """The next key to work on; None when this thread ends (stopped, or idle too long)."""
        while True:
            try:
                key = self.work.get(timeout=THREAD_IDLE)
            except queue.Empty:
                with self.lock:
                    if self.work.empty():  # under the lock: submit() puts and counts threads under it
                        self.threads.discard(threading.current_thread())
                        return None
                continue
            if key == _STOP:
                with self.lock:
                    self.threads.discard(threading.current_thread())
                return None
            return key

    def _run(self, key: str) -> None:
        work, permitted = self.jobs[key]
        while True:
            close_old_connections()  # as Django does around a request: drop a broken or too old one
            try:
                work()
            except Exception:
                logger.exception("order thread: the work for %s failed; recovery queues its signals again", key)
            finally:
                close_old_connections()
            with self.lock:
                if key not in self.again:
                    del self.jobs[key]
                    break
                self.again.discard(key)
        if permitted:
            self.permits.release()


ORDER_THREADS = OrderThreads()


def order_threads_start(**_: object) -> None:
    """django-q2's post_spawn receiver: every worker process keeps many orders in flight."""
    ORDER_THREADS.start()
