"""`manage.py userstream`: keep the exchange's user data stream open and apply its events
(trading/live.py) until SIGTERM or Ctrl-C. One per account; a second is harmless (events apply once)."""

import signal
import threading
from types import FrameType

from django.core.management.base import BaseCommand

from alsatrade.schema import schema_current_or_refuse
from trading.exchange import get_exchange
from trading.live import stream_run


class Command(BaseCommand):
    help = "Apply the exchange's live account events (fills, liquidations, protective fills, funding) as they happen."

    def handle(self, *args: str, **options: object) -> None:
        schema_current_or_refuse("The user data stream (userstream)")
        stop = threading.Event()

        def request_stop(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        exchange = get_exchange()
        if exchange.user_stream() is None:
            self.stdout.write(f"The {exchange.name} exchange has no user data stream: waiting idle until stopped.")
            stop.wait()
            return
        self.stdout.write(f"User data stream of {exchange.account_id}: applying events until stopped.")
        stream_run(exchange, stop)
