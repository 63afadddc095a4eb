"""`manage.py exchange_check` and /health's staff detail (issue #17): a line per thing the account needs,
in plain words with what to do, against the fake Binance with its switches flipped; non-zero exit
status when a line fails."""

from io import StringIO

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command

from preferences.models import StrategyPreference
from trading.exchange import CheckState, reset_exchange
from trading.exchange.binance_setup import clock_line

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _strategies(db) -> None:
    StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5)
    StrategyPreference.objects.create(name="old", products=["DOGEUSDT"], enabled=False)
    cache.delete("health:exchange_setup")


def check() -> tuple[bool, dict[str, str]]:
    """Whether the command passed, and its lines by name: "STATE text"."""
    out = StringIO()
    try:
        call_command("exchange_check", stdout=out, no_color=True)
        passed = True
    except CommandError:
        passed = False
    lines = {}
    for row in out.getvalue().splitlines()[1:]:
        state, _, rest = row.partition(" ")
        name, _, text = rest.strip().partition(": ")
        if state in ("OK", "WARNING", "FAILED"):
            lines[name] = f"{state} {text}"
    return passed, lines


def test_it_passes_every_line_on_an_account_set_up_as_expected(binance_settings, binance_fake):
    passed, lines = check()
    assert passed
    assert list(lines) == ["clock", "API key", "trading", "position mode", "multi-assets mode", "BTCUSDT", "ETHUSDT"]
    assert all(text.startswith("OK ") for text in lines.values()), lines
    assert "DOGEUSDT" not in lines  # its strategy is disabled


def test_a_refused_key_says_what_to_check(binance_settings, binance_fake):
    binance_fake.key_refused = True
    passed, lines = check()
    assert not passed
    assert lines["API key"].startswith("FAILED a signed read failed: the API key was refused: check the key, "
                                       "its IP allow-list and that Futures is enabled (Binance -2015")
    assert "trading" not in lines  # nothing more can be read with that key


def test_an_account_that_may_not_trade_fails(binance_settings, binance_fake):
    binance_fake.can_trade = False
    passed, lines = check()
    assert not passed and lines["trading"].startswith("FAILED the account may not trade USDⓈ-M futures")


def test_a_trading_lock_fails_with_when_it_ends(binance_settings, binance_fake):
    binance_fake.trading_lock = ("BTCUSDT", 1893456000000)  # 2030-01-01 00:00 UTC
    passed, lines = check()
    assert not passed
    assert lines["trading"] == ("FAILED Binance's trading rules lock BTCUSDT until 2030-01-01 00:00 UTC (indicator UFR): "
                                "no order goes out until then")


def test_hedge_mode_is_said_as_supported(binance_settings, binance_fake):
    binance_fake.hedge_mode = True
    passed, lines = check()
    assert passed
    assert lines["position mode"].startswith("OK hedge mode, supported: a buy opens or adds the long")


def test_multi_assets_mode_is_a_warning(binance_settings, binance_fake):
    binance_fake.multi_assets = True
    passed, lines = check()
    assert passed and lines["multi-assets mode"].startswith("WARNING on: margin is shared across assets")


@pytest.mark.parametrize(("listing", "said"), [
    ({"status": "SETTLING"}, "FAILED ETHUSDT is SETTLING, not TRADING"),
    ({"contractType": "CURRENT_QUARTER"}, "FAILED ETHUSDT is a CURRENT_QUARTER contract, not a perpetual"),
])
def test_a_symbol_that_cannot_be_traded_fails(binance_settings, binance_fake, listing, said):
    binance_fake.listing["ETHUSDT"] = listing
    passed, lines = check()
    assert not passed and lines["ETHUSDT"].startswith(said) and lines["BTCUSDT"].startswith("OK")


def test_a_symbol_binance_does_not_list_fails(binance_settings, binance_fake):
    StrategyPreference.objects.create(name="typo", products=["BTCUSDTT"])
    passed, lines = check()
    assert not passed and lines["BTCUSDTT"].startswith("FAILED BTCUSDTT is not listed on Binance USDⓈ-M futures")


def test_an_unreachable_exchange_fails_at_once(binance_settings):
    binance_settings.BINANCE_BASE_URL = "http://127.0.0.1:9"  # nothing listens on the discard port
    reset_exchange()
    passed, lines = check()
    assert not passed and list(lines) == ["connection"]
    assert lines["connection"].startswith("FAILED Binance could not be reached at http://127.0.0.1:9")


def test_the_clock_line_warns_from_one_second_apart():
    assert clock_line(999).state is CheckState.OK and clock_line(-999).state is CheckState.OK
    assert clock_line(1000).state is CheckState.WARNING and clock_line(-1000).state is CheckState.WARNING
    assert clock_line(-1000).text.startswith("this server's clock is 1000 ms ahead of Binance's")
    assert clock_line(12).text == "this server's clock is 12 ms behind Binance's (corrected on every signed request)"


def test_a_clock_behind_binances_is_measured(binance_settings, binance_fake):
    binance_fake.clock_offset_ms = 3000
    passed, lines = check()
    assert passed and lines["clock"].startswith("WARNING this server's clock is ")
    said_ms = int(lines["clock"].split("clock is ")[1].split(" ms")[0])
    assert 2900 <= said_ms <= 3100 and "ms behind Binance's" in lines["clock"]


def test_the_paper_exchange_passes_and_says_it_is_paper(settings):
    settings.EXCHANGE = "paper"
    reset_exchange()
    passed, lines = check()
    reset_exchange()
    assert passed
    assert all(text.startswith("OK paper exchange") for name, text in lines.items() if not name.endswith("USDT"))
    assert lines["BTCUSDT"] == "OK BTCUSDT: paper exchange, a bundled perpetual"


def test_health_shows_the_lines_to_staff_only(binance_settings, binance_fake, client, admin_client):
    binance_fake.multi_assets = True
    anonymous = client.get("/health").json()
    assert "exchange_setup" not in anonymous
    setup = admin_client.get("/health").json()["exchange_setup"]
    assert setup["ok"] is True  # a warning only
    multi_assets = next(line for line in setup["lines"] if line["name"] == "multi-assets mode")
    assert multi_assets["state"] == "warning" and multi_assets["text"].startswith("on: margin is shared")
    binance_fake.key_refused = True
    reads = len(binance_fake.requests_to("/fapi/v1/accountConfig"))
    assert admin_client.get("/health").json()["exchange_setup"]["ok"] is True  # cached for a minute
    assert len(binance_fake.requests_to("/fapi/v1/accountConfig")) == reads
    cache.delete("health:exchange_setup")
    refused = admin_client.get("/health").json()["exchange_setup"]
    assert refused["ok"] is False and "the API key was refused" in refused["lines"][1]["text"]


@pytest.mark.parametrize("exchange", ["paper", "binance"])
def test_it_says_when_no_enabled_strategy_lists_a_symbol(binance_settings, exchange):
    binance_settings.EXCHANGE = exchange
    reset_exchange()
    StrategyPreference.objects.update(enabled=False)
    passed, lines = check()
    reset_exchange()
    assert passed and lines["symbols"] == "OK no enabled strategy lists a symbol: none to check"
