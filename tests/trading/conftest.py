from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.binance_server import FakeBinance
from tests.support.stream import stream_running
from trading.closed_first import stream_connected
from trading.exchange import binance_stream, reset_exchange


@pytest.fixture
def stream(binance_settings: Any, binance_fake: FakeBinance, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBinance]:
    """`stream_run` in a thread, as `manage.py userstream` runs it, connected to the fake; the test starts
    once it reports itself connected (test_user_stream.py has its own, waiting for a heartbeat)."""
    binance_settings.BINANCE_STREAM_URL = binance_fake.ws_url
    monkeypatch.setattr(binance_stream, "RECV_TIMEOUT", 0.2)  # quick to notice `stop` in teardown
    reset_exchange()
    with stream_running(binance_fake, ready=stream_connected):
        yield binance_fake
