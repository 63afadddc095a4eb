"""`manage.py import_klines SYMBOL [SYMBOL…] --from 2026-11-01 --to 2026-11-08`: import the exchange's
1-minute klines of those symbols for [from, to) (UTC; a date is its midnight), the minutes not held
yet only (analytics/klines.py). One line per symbol; exits non-zero when any symbol failed."""

from argparse import ArgumentParser, ArgumentTypeError
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from analytics.klines import klines_import
from trading.exchange import ExchangeError, get_exchange


def utc_time(text: str) -> datetime:
    """2026-11-01, or 2026-11-01T12:30 (UTC unless an offset is given)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a date (2026-11-01) or a time (2026-11-01T12:30)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


class Command(BaseCommand):
    help = ("Import the exchange's 1-minute klines of the symbols for a period (at most 90 days; --to is not "
            "included), for what-if replays. Minutes already held are not asked for again.")

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("symbols", nargs="+", metavar="SYMBOL", help="e.g. BTCUSDT")
        parser.add_argument("--from", dest="start", type=utc_time, required=True,
                            help="the period's start, UTC: 2026-11-01 or 2026-11-01T12:30")
        parser.add_argument("--to", dest="end", type=utc_time, required=True,
                            help="the period's end, UTC, not included: 2026-11-08 imports up to 2026-11-07 23:59")

    def handle(self, *args: str, **options: object) -> None:
        start, end = options["start"], options["end"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        symbols = options["symbols"]
        assert isinstance(symbols, list)
        exchange = get_exchange()
        failed = 0
        wanted = list(dict.fromkeys(str(name).upper() for name in symbols))
        for symbol in wanted:
            try:
                result = klines_import(exchange, symbol, start, end)
            except ValueError as error:
                raise CommandError(str(error)) from None  # the period: the same for every symbol
            except ExchangeError as error:
                failed += 1
                self.stdout.write(self.style.ERROR(f"{symbol}: failed: {error.reason}"))
                continue
            self.stdout.write(str(result))
        if failed:
            raise CommandError(f"{failed} of {len(wanted)} symbols failed: see above; running the command again "
                               "imports only what is still missing.")
