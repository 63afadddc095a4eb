from decimal import Decimal

import pytest

from notifications.models import Channel
from preferences.models import StrategyPreference
from tests.notifications.receiver import Receiver
from trading.exchange import reset_exchange

TELEGRAM_TOKEN = "123456789:AAEhBOweik6ad9r_QXMENQjcrGbqCr4K-ab"
DISCORD_PATH = "/api/webhooks/112233445566778899/Zx9-discord_webhook_token_ABCDEFghijk"


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _notify_settings(settings, receiver):
    settings.NOTIFY_TELEGRAM_API = receiver.url
    settings.NOTIFY_TIMEOUT = 1.0
    settings.NOTIFY_SEND_IN_THREAD = False  # the job sends itself; one test runs the thread
    settings.NOTIFY_BASE_URL = ""
    settings.EXCHANGE = "paper"
    settings.PAPER_BALANCE = Decimal("10000")
    reset_exchange()
    yield
    reset_exchange()


@pytest.fixture
def strategy() -> StrategyPreference:
    return StrategyPreference.objects.create(
        name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5, allocation_pct=Decimal(10)
    )


@pytest.fixture
def telegram(receiver) -> Channel:
    return Channel.objects.create(name="desk chat", kind="telegram", telegram_bot_token=TELEGRAM_TOKEN,
                                  telegram_chat_id="-100200300")


@pytest.fixture
def discord(receiver) -> Channel:
    return Channel.objects.create(name="discord ops", kind="discord", discord_webhook_url=receiver.url + DISCORD_PATH)


@pytest.fixture
def email() -> Channel:
    return Channel.objects.create(name="mail", kind="email", email_to="trader@example.com,\nops@example.com")
