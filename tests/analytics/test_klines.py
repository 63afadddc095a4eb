"""The exchange's 1-minute klines imported (analytics/klines.py): read as exact Decimals, paged, only the
minutes missing, weight-aware, through the Binance adapter and the paper exchange's price feed."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
import requests
from django.core.management import CommandError, call_command

from analytics.klines import klines_import
from analytics.models import Kline as KlineRow
from trading.exchange import PermanentError, UnknownSymbol, get_exchange, reset_exchange
from trading.exchange.base import Kline, klines_weight
from trading.exchange.paper import PaperExchange

pytestmark = pytest.mark.django_db

D = Decimal
START = datetime(2026, 11, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
KLINES = "/fapi/v1/klines"


def ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


class Sleeps(list):
    """An injected sleep: remembers each wait instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def sleeps() -> Sleeps:
    return Sleeps()


def held(symbol: str = "BTCUSDT") -> list[datetime]:
    return list(KlineRow.objects.filter(symbol=symbol).order_by("open_time").values_list("open_time", flat=True))


# --- the adapter's page ----------------------------------------------------------------------------
def test_the_binance_adapter_reads_a_page_as_exact_decimals_in_utc(binance_exchange, binance_fake):
    binance_fake.kline_path["BTCUSDT"] = [
        (ms(START + MINUTE), "45010.10", "45020.00", "44990.05", "45000.30", "12.3450"),
        (ms(START), "45000.10", "45015.50", "44995.00", "45010.10", "0.001"),
        (ms(START + 2 * MINUTE), "1", "1", "1", "1", "1"),  # past endTime: not answered
    ]
    klines = binance_exchange.get_klines("BTCUSDT", start_ms=ms(START), end_ms=ms(START + MINUTE), limit=1500)

    assert klines == [
        Kline("BTCUSDT", START, D("45000.10"), D("45015.50"), D("44995.00"), D("45010.10"), D("0.001")),
        Kline("BTCUSDT", START + MINUTE, D("45010.10"), D("45020.00"), D("44990.05"), D("45000.30"), D("12.3450")),
    ]
    assert str(klines[0].open) == "45000.10" and klines[0].open_time.tzinfo == UTC  # the string's digits, not a float's
    [sent] = binance_fake.requests_to(KLINES)
    assert sent.method == "GET" and sent.params == {"symbol": "BTCUSDT", "interval": "1m", "startTime": str(ms(START)),
                                                    "endTime": str(ms(START + MINUTE)), "limit": "1500"}
    # Weight 10 for a limit over 1000, as the weight header said.
    assert binance_exchange.request_weight() == (len(binance_fake.requests) + 9, 2400)


def test_the_adapter_asks_at_most_1500_and_names_an_unknown_symbol(binance_exchange, binance_fake):
    klines = binance_exchange.get_klines("ETHUSDT", start_ms=ms(START), end_ms=ms(START + 3000 * MINUTE), limit=5000)
    assert len(klines) == 1500 and {kline.close for kline in klines} == {D("3000")}
    assert binance_fake.requests_to(KLINES)[-1].params["limit"] == "1500"
    with pytest.raises(UnknownSymbol):
        binance_exchange.get_klines("NOPEUSDT", start_ms=ms(START), end_ms=ms(START), limit=1)


def test_a_pages_weight_follows_binances_table_by_limit():
    assert [klines_weight(limit) for limit in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [1, 1, 2, 2, 5, 5, 10, 10]


def test_the_fake_answers_klines_as_binance_does(binance_fake):
    answer = requests.get(f"{binance_fake.url}{KLINES}", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=5)
    rows = answer.json()
    # No startTime: the newest 500 (the default limit), up to the minute open now; weight 5 for 500.
    assert len(rows) == 500 and rows[-1][0] <= binance_fake.server_ms() < rows[-1][0] + 60_000
    assert [row[0] - rows[0][0] for row in rows[:3]] == [0, 60_000, 120_000] and rows[0][6] == rows[0][0] + 59_999
    assert answer.headers["X-MBX-USED-WEIGHT-1M"] == "5"
    too_many = requests.get(f"{binance_fake.url}{KLINES}", params={"symbol": "BTCUSDT", "interval": "1m", "limit": 1501},
                            timeout=5)
    assert too_many.status_code == 400 and too_many.json()["code"] == -1130


# --- the import --------------------------------------------------------------------------------------
def test_it_pages_3000_minutes_in_two_requests_and_holds_each_minute(binance_exchange, binance_fake):
    binance_fake.set_price("BTCUSDT", "45123.45")
    waits = sleeps()
    result = klines_import(binance_exchange, "BTCUSDT", START, START + 3000 * MINUTE, sleep=waits)

    assert (result.minutes, result.missing, result.pages, result.added, result.waited) == (3000, 3000, 2, 3000, 0.0)
    first, second = binance_fake.requests_to(KLINES)
    assert (first.params["startTime"], first.params["endTime"], first.params["limit"]) == (
        str(ms(START)), str(ms(START + 1499 * MINUTE)), "1500")
    assert (second.params["startTime"], second.params["endTime"], second.params["limit"]) == (
        str(ms(START + 1500 * MINUTE)), str(ms(START + 2999 * MINUTE)), "1500")
    assert held() == [START + n * MINUTE for n in range(3000)]  # [start, end): the end minute is not in it
    row = KlineRow.objects.get(symbol="BTCUSDT", open_time=START + 2999 * MINUTE)
    assert (row.open, row.high, row.low, row.close) == (D("45123.45"),) * 4
    assert waits == []  # the fake's weight is far below the limit


def test_a_second_import_of_the_same_period_asks_nothing(binance_exchange, binance_fake):
    klines_import(binance_exchange, "BTCUSDT", START, START + 3000 * MINUTE, sleep=sleeps())
    asked = len(binance_fake.requests_to(KLINES))

    again = klines_import(binance_exchange, "BTCUSDT", START + 100 * MINUTE, START + 2000 * MINUTE, sleep=sleeps())

    assert len(binance_fake.requests_to(KLINES)) == asked == 2
    assert (again.minutes, again.missing, again.pages, again.added) == (1900, 0, 0, 0)
    assert "already held" in str(again)


def test_a_gap_in_the_middle_is_filled_with_one_page_of_just_its_minutes(binance_exchange, binance_fake):
    klines_import(binance_exchange, "BTCUSDT", START, START + 3000 * MINUTE, sleep=sleeps())
    gap = (START + 1490 * MINUTE, START + 1509 * MINUTE)  # across the first import's page boundary
    KlineRow.objects.filter(open_time__range=gap).delete()
    before = len(binance_fake.requests_to(KLINES))

    result = klines_import(binance_exchange, "BTCUSDT", START, START + 3000 * MINUTE, sleep=sleeps())

    [filled] = binance_fake.requests_to(KLINES)[before:]
    assert (filled.params["startTime"], filled.params["endTime"], filled.params["limit"]) == (
        str(ms(gap[0])), str(ms(gap[1])), "20")
    assert (result.missing, result.pages, result.added) == (20, 1, 20)
    assert held() == [START + n * MINUTE for n in range(3000)]


def test_it_waits_for_the_minute_to_turn_when_a_page_would_pass_80_percent_of_the_weight(binance_exchange, binance_fake):
    binance_fake.weight_used = 1915  # + 10 for a page of 1500: past 1920, 80 % of 2400
    now = datetime(2026, 12, 1, 12, 0, 15, tzinfo=UTC).timestamp()  # 15 s into a minute
    waits = sleeps()

    result = klines_import(binance_exchange, "BTCUSDT", START, START + 3000 * MINUTE, sleep=waits, clock=lambda: now)

    # The first page: no weight known yet. Before the second, the fake's answer said 1915 used.
    assert waits == [46.0] and result.waited == 46.0  # to the minute's turn, and a second's margin
    assert (result.pages, result.added) == (2, 3000)
    assert "waited 46 s" in str(result)


def test_it_goes_on_without_waiting_up_to_80_percent_of_the_weight(binance_exchange, binance_fake):
    binance_fake.weight_used = 1910  # + 10 = 1920: exactly 80 %
    waits = sleeps()
    result = klines_import(binance_exchange, "BTCUSDT", START, START + 3000 * MINUTE, sleep=waits)
    assert waits == [] and result.pages == 2


@pytest.mark.parametrize(("start", "end", "words"), [
    (START, START + timedelta(days=90, minutes=1), "90.0 days long: import at most 90 days at a time"),
    (START, START, "the period is empty"),
    (START + MINUTE, START, "the period is empty"),
    (datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 3, tzinfo=UTC), "the period ends in the future"),
    (datetime(2026, 11, 1), datetime(2026, 11, 2), "with their time zone"),
], ids=["longer than 90 days", "empty", "backwards", "in the future", "naive"])
def test_it_refuses_a_period_it_cannot_import_in_words(binance_exchange, binance_fake, start, end, words):
    now = datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match=words):
        klines_import(binance_exchange, "BTCUSDT", start, end, sleep=sleeps(), clock=lambda: now)
    assert binance_fake.requests_to(KLINES) == []


def test_a_period_ending_now_imports_only_the_minutes_that_closed(binance_exchange, binance_fake):
    now = datetime(2026, 11, 1, 0, 30, 40, tzinfo=UTC).timestamp()  # 00:30 is still open
    result = klines_import(binance_exchange, "BTCUSDT", START, datetime.fromtimestamp(now, UTC), sleep=sleeps(),
                           clock=lambda: now)
    assert (result.minutes, result.added) == (30, 30) and held()[-1] == START + 29 * MINUTE


class RacingExchange:
    """An exchange whose answer arrives after another import of the same period wrote those minutes."""

    def __init__(self, inner):
        self.inner, self.raced = inner, False

    def request_weight(self):
        return None

    def get_klines(self, symbol, *, start_ms, end_ms, limit):
        if not self.raced:
            self.raced = True
            klines_import(self.inner, symbol, START, START + 10 * MINUTE, sleep=sleeps())
        return self.inner.get_klines(symbol, start_ms=start_ms, end_ms=end_ms, limit=limit)


def test_two_imports_of_one_period_at_once_both_succeed(binance_exchange, binance_fake):
    result = klines_import(RacingExchange(binance_exchange), "BTCUSDT", START, START + 10 * MINUTE, sleep=sleeps())
    assert result.pages == 1 and held() == [START + n * MINUTE for n in range(10)]


# --- the command ------------------------------------------------------------------------------------
def test_the_command_prints_a_line_per_symbol(binance_settings, binance_fake):
    out = StringIO()
    call_command("import_klines", "BTCUSDT", "ethusdt", "--from", "2026-11-01", "--to", "2026-11-02T01:00", stdout=out)
    assert out.getvalue().splitlines() == [
        "BTCUSDT: 1500 of 1500 missing minutes added (1500 in the period), 1 page",
        "ETHUSDT: 1500 of 1500 missing minutes added (1500 in the period), 1 page",
    ]
    out = StringIO()
    call_command("import_klines", "BTCUSDT", "--from", "2026-11-01", "--to", "2026-11-02", stdout=out)
    assert out.getvalue() == "BTCUSDT: all 1440 minutes already held; nothing asked of the exchange\n"
    assert KlineRow.objects.filter(symbol="ETHUSDT").count() == 1500


def test_the_command_says_which_symbol_failed_and_why(binance_settings, binance_fake):
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 2 symbols failed"):
        call_command("import_klines", "NOPEUSDT", "BTCUSDT", "--from", "2026-11-01", "--to", "2026-11-01T00:10",
                     stdout=out)
    nope, btc = out.getvalue().splitlines()
    assert nope.startswith("NOPEUSDT: failed: the symbol is not traded on Binance USDⓈ-M futures")
    assert btc == "BTCUSDT: 10 of 10 missing minutes added (10 in the period), 1 page"
    with pytest.raises(CommandError, match="import at most 90 days"):
        call_command("import_klines", "BTCUSDT", "--from", "2026-01-01", "--to", "2026-11-01", stdout=StringIO())
    with pytest.raises(CommandError, match="is not a date"):
        call_command("import_klines", "BTCUSDT", "--from", "yesterday", "--to", "2026-11-01", stdout=StringIO())


# --- the paper exchange -------------------------------------------------------------------------------
@pytest.fixture
def paper(settings) -> PaperExchange:
    settings.EXCHANGE = "paper"
    reset_exchange()
    yield get_exchange()
    reset_exchange()


def test_the_paper_exchange_has_no_history_without_a_price_feed(paper, settings):
    settings.PAPER_PRICE_FEED = ""
    with pytest.raises(PermanentError, match="keeps no price history: set PAPER_PRICE_FEED=https://fapi.binance.com"):
        paper.get_klines("BTCUSDT", start_ms=ms(START), end_ms=ms(START + MINUTE), limit=2)
    with pytest.raises(PermanentError, match="keeps no price history"):
        klines_import(paper, "BTCUSDT", START, START + 10 * MINUTE, sleep=sleeps())
    assert held() == []


def test_the_paper_exchange_reads_klines_from_its_price_feed(paper, settings, binance_fake):
    settings.PAPER_PRICE_FEED = binance_fake.url
    assert paper.request_weight() is None  # nothing read from the feed yet
    binance_fake.weight_used = 2000
    binance_fake.kline_path["ETHUSDT"] = [(ms(START + n * MINUTE), "3000.5", "3001.25", "2999.75", f"3000.{n}", "7.5")
                                          for n in range(5)]
    assert paper.get_klines("ETHUSDT", start_ms=ms(START), end_ms=ms(START + MINUTE), limit=2) == [
        Kline("ETHUSDT", START, D("3000.5"), D("3001.25"), D("2999.75"), D("3000.0"), D("7.5")),
        Kline("ETHUSDT", START + MINUTE, D("3000.5"), D("3001.25"), D("2999.75"), D("3000.1"), D("7.5")),
    ]
    # Public: no key, no signature; and the feed's weight is watched.
    [sent] = binance_fake.requests_to(KLINES)
    assert "signature" not in sent.params and sent.params["interval"] == "1m" and sent.params["limit"] == "2"
    assert paper.request_weight() == (2000, 2400)

    now = datetime(2026, 12, 1, 12, 0, 50, tzinfo=UTC).timestamp()
    waits = sleeps()
    result = klines_import(paper, "ETHUSDT", START, START + 5 * MINUTE, sleep=waits, clock=lambda: now)
    assert (result.pages, result.added, waits) == (1, 5, [11.0])  # the weight the feed said a moment ago
    assert [row.close for row in KlineRow.objects.filter(symbol="ETHUSDT")] == [D(f"3000.{n}") for n in range(5)]
    with pytest.raises(UnknownSymbol):
        paper.get_klines("NOPEUSDT", start_ms=ms(START), end_ms=ms(START), limit=1)
