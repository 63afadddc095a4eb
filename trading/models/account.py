"""The exchange accounts this deployment knows (issue #19's registry). Today the strategies trade the
`default` account only, the environment's (EXCHANGE, BINANCE_*): its row holds no keys and reads what
it is from the settings. Other accounts hold their API keys encrypted (trading/keyring.py) and wait
for the fan-out that will let strategies trade them.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from alsatrade.settings import is_loopback  # the settings' own test of a local exchange URL

DEFAULT = "default"
# Binance USDⓈ-M futures' own hosts per environment (testnet flag → REST base URL, user stream URL).
BINANCE_URLS = {
    True: ("https://demo-fapi.binance.com", "wss://fstream.binancefuture.com/ws"),
    False: ("https://fapi.binance.com", "wss://fstream.binance.com/private/ws"),
}


class Account(models.Model):
    """One exchange account. The secrets are Fernet tokens: only trading/keyring.py opens them, on
    their way into an adapter; no form, answer, log line or history row carries them."""

    class Exchange(models.TextChoices):
        BINANCE = "binance", "Binance USDⓈ-M futures"
        PAPER = "paper", "paper (simulated)"

    class PositionMode(models.TextChoices):
        UNKNOWN = "", "unknown"
        ONE_WAY = "one_way", "one-way"
        HEDGE = "hedge", "hedge"

    name = models.SlugField(unique=True, help_text="`default` is the environment's account (EXCHANGE, BINANCE_*).")
    exchange = models.CharField(max_length=10, choices=Exchange.choices, default=Exchange.PAPER)
    testnet = models.BooleanField(default=True, help_text="Binance's test environment (demo-fapi), not real money.")
    # Fernet tokens (trading/keyring.py), never the keys; not editable: no model form shows them.
    api_key = models.TextField(blank=True, editable=False)
    api_secret = models.TextField(blank=True, editable=False)
    key_hint = models.CharField(max_length=4, blank=True, help_text="The API key's last four characters.")
    # As last read from the exchange (trading/accounts.py account_check).
    position_mode = models.CharField(max_length=8, choices=PositionMode.choices, blank=True, default="")
    multi_assets = models.BooleanField(null=True, blank=True, help_text="Multi-assets margin mode; empty: not read, "
                                       "or the exchange has none (paper).")
    modes_read_at = models.DateTimeField(null=True, blank=True)
    # This account's own kill switch; the `default` account's binds the strategies as the global one does.
    halted = models.BooleanField(default=False)
    halted_reason = models.CharField(max_length=255, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Every change kept, the encrypted keys excepted: a history row must not become a copy of a secret.
    history = HistoricalRecords(excluded_fields=["api_key", "api_secret"])

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    def create_default_if_missing(cls) -> None:
        """The `default` row, made if a flushed database lost it (migration 0018 makes it), without a
        save: two requests at once do not both try to insert it."""
        Account.objects.bulk_create([Account(name=DEFAULT)], ignore_conflicts=True)

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT

    @property
    def venue(self) -> str:
        """The exchange it trades on: the environment's EXCHANGE for `default`."""
        return settings.EXCHANGE if self.is_default else self.exchange

    @property
    def on_testnet(self) -> bool:
        return settings.BINANCE_USE_TESTNET if self.is_default else self.testnet

    @property
    def hint(self) -> str:
        """What a page may show of the key: its last four characters ("" for paper)."""
        if self.venue != self.Exchange.BINANCE:
            return ""
        return settings.BINANCE_API_KEY[-4:] if self.is_default else self.key_hint

    @property
    def binance_urls(self) -> tuple[str, str]:
        """(REST base URL, user stream URL). The environment's when the testnet flag is the environment's
        (BINANCE_BASE_URL may point at a proxy or a local fake); Binance's own host otherwise."""
        if self.is_default or self.testnet == settings.BINANCE_USE_TESTNET:
            return settings.BINANCE_BASE_URL, settings.BINANCE_STREAM_URL
        return BINANCE_URLS[self.testnet]

    @property
    def environment(self) -> str:
        """paper, testnet or production: decided by where the orders go, as settings.py decides it. A
        host other than Binance's test ones may be production (a proxy): said so."""
        if self.venue == self.Exchange.PAPER:
            return "paper"
        host = (urlsplit(self.binance_urls[0]).hostname or "").lower()
        if host in settings.BINANCE_TEST_HOSTS:
            return "testnet"
        if is_loopback(host):  # a local fake or tunnel: the flag says which environment it stands for
            return "testnet" if self.on_testnet else "production"
        return "production"
