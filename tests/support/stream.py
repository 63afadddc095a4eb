"""The user data stream as `manage.py userstream` runs it, in a thread of the test, against the fake."""

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection

from trading.exchange import get_exchange
from trading.live import HEARTBEAT, stream_run
from trading.models import WorkerHeartbeat


def eventually(check: Callable[[], bool], within: float = 1.0) -> float:
    """Seconds until `check()` held; fails if it did not within `within` seconds."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within} s")
        time.sleep(0.01)
    return time.monotonic() - started


def stream_heard() -> bool:
    return WorkerHeartbeat.objects.filter(name=HEARTBEAT).exists()


@contextmanager
def stream_running(fake: object, *, ready: Callable[[], bool] = stream_heard, within: float = 3.0) -> Iterator[None]:
    """`stream_run` in a thread until the block ends; the block starts once the fake has the stream's
    connection and `ready()` holds. The caller points BINANCE_STREAM_URL at the fake first."""
    stop = threading.Event()

    def run() -> None:
        try:
            stream_run(get_exchange(), stop)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    fake.wait_for_stream()  # type: ignore[attr-defined]
    eventually(ready, within=within)
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()


def settles(check: Callable[[], object], within: float = 2.0) -> None:
    """`eventually` for a check that returns any truthy value, with the longer wait the webhook tests allow."""
    eventually(lambda: bool(check()), within=within)
