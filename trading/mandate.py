"""May this worker still act on this signal? One object answers, for every stage of an execution.

A `Mandate` joins the two limits on acting: the signal's deadline (EXECUTION_MAX_DELAY after its
receipt: no order leaves later) and the symbol's lane (only its holder sends). Every wait and retry
goes through it: it sleeps in slices of at most a quarter of the lease, checking the lane between
slices, refuses a sleep that would end past the deadline, and raises LaneLost as soon as the lane is
gone — so a holder woken from a 25 s Retry-After never sends once another worker has taken over.
"""

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.utils import timezone

from trading.exchange import RetryableError
from trading.lanes import Lane

T = TypeVar("T")

FIRST_PAUSE = 0.2  # seconds before the first retry of a retryable error without Retry-After
LONGEST_PAUSE = 5.0


class GaveUp(Exception):
    """Waiting any longer would pass the signal's deadline."""


class Mandate:
    def __init__(self, *, lane: Lane, received_at: datetime) -> None:
        self.lane = lane
        self.deadline = received_at + timedelta(seconds=settings.EXECUTION_MAX_DELAY)
        self.received_at = received_at
        self.budget_waited = 0.0  # seconds spent waiting for the order budget (trading/order_budget.py)

    def age(self) -> float:
        """Seconds since the signal was received."""
        return (timezone.now() - self.received_at).total_seconds()

    def too_late(self) -> bool:
        """No order may be sent any more (lookups of orders already sent may go on)."""
        return timezone.now() > self.deadline

    def check(self) -> None:
        """Before any request: raises LaneLost unless this worker still holds the lane."""
        self.lane.check()

    def sleep(self, seconds: float, *, why: str, grace: float = 0.0) -> None:
        """Sleep in slices, checking the lane between them; GaveUp (with `why`) if the sleep would
        end more than `grace` seconds past the deadline."""
        if timezone.now() + timedelta(seconds=seconds) > self.deadline + timedelta(seconds=grace):
            raise GaveUp(why)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, settings.LANE_LEASE / 4))
            self.check()

    def wait_for_budget(self, seconds: float) -> None:
        """Sleep until the order budget's moment for this order, as any wait (GaveUp past the deadline)."""
        if seconds > 0:
            self.sleep(seconds, why=f"the order budget would only allow it in {seconds:.1f} s")
            self.budget_waited += seconds

    def retrying(self, call: Callable[..., T], *args: object) -> T:
        """`call(*args)`, again after each RetryableError (honouring its Retry-After) while the
        deadline allows. Only for calls that change nothing when they fail: reads and settings."""
        pause = FIRST_PAUSE
        while True:
            self.check()
            try:
                return call(*args)
            except RetryableError as error:
                self.sleep(error.retry_after or pause, why=error.reason)
                pause = min(pause * 2, LONGEST_PAUSE)
