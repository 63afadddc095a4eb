import ipaddress
import socket
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


class Network:
    """DNS and connections for the tests: a name resolves to what the test says, and a connection
    goes nowhere but this machine's loopback (the receiver). Every lookup and connection is recorded."""

    LOCAL = ("127.0.0.1", "::1")

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[str, ...]]] = {}
        self.lookups: list[str] = []
        self.connected: list[str] = []

    def resolve(self, host: str, *addresses: str) -> None:
        self.answers[host] = [addresses]

    def rebind(self, host: str, first: str, then: str) -> None:
        """The first lookup answers `first`, every later one `then` (DNS rebinding)."""
        self.answers[host] = [(first,), (then,)]

    def getaddrinfo(self, host, port, *args, **kwargs):
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:  # an address, as socket.create_connection passes it: nothing to look up
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        self.lookups.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self.answers[host]
        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))
                for address in addresses]

    def create_connection(self, address, *args, **kwargs):
        self.connected.append(address[0])
        if address[0] not in self.LOCAL:
            raise ConnectionRefusedError(f"the tests' network ends at this machine ({address[0]})")
        return REAL_CREATE_CONNECTION(address, *args, **kwargs)


REAL_GETADDRINFO, REAL_CREATE_CONNECTION = socket.getaddrinfo, socket.create_connection


@pytest.fixture(autouse=True)
def network(monkeypatch) -> Network:
    fake = Network()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", fake.create_connection)
    return fake


@pytest.fixture(autouse=True)
def _notify_settings(settings, receiver):
    # The receiver is plain http on 127.0.0.1: what the destination checks keep out otherwise.
    settings.NOTIFY_ALLOW_PRIVATE_ADDRESSES = True
    settings.NOTIFY_ALLOWED_HOSTS = []
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
