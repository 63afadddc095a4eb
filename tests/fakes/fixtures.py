"""Pytest fixtures for the fake Binance server and an adapter pointed at it."""

import pytest

from tests.fakes.binance_server import API_KEY, API_SECRET, FakeBinance
from trading.exchange import reset_exchange


@pytest.fixture(scope="session")
def _binance_server():
    server = FakeBinance()
    yield server
    server.stop()


@pytest.fixture
def binance_fake(_binance_server) -> FakeBinance:
    """The fake, with a fresh account for each test."""
    _binance_server.reset()
    return _binance_server


@pytest.fixture
def binance_settings(binance_fake, settings):
    """Settings that make get_exchange() the Binance adapter, talking to the fake."""
    settings.EXCHANGE = "binance"
    settings.BINANCE_BASE_URL = binance_fake.url
    settings.BINANCE_API_KEY = API_KEY
    settings.BINANCE_API_SECRET = API_SECRET
    settings.BINANCE_TIMEOUT = 1.0
    settings.BINANCE_RECV_WINDOW = 1000
    reset_exchange()
    yield settings
    reset_exchange()


@pytest.fixture
def binance_exchange(binance_settings):
    from trading.exchange import get_exchange

    return get_exchange()
