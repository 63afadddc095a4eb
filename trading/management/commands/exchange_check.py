"""`manage.py exchange_check`: is the exchange account set up as Alsa Trade expects? A line per check,
in plain words with what to do; exits non-zero when any line failed (warnings are said, not failed)."""

from django.core.management.base import BaseCommand, CommandError

from trading.account_setup import setup_check
from trading.exchange import CheckState, get_exchange

MARKS = {CheckState.OK: "OK", CheckState.WARNING: "WARNING", CheckState.FAILED: "FAILED"}


class Command(BaseCommand):
    help = ("Check the exchange account: the API key, permission to trade, position and multi-assets modes, "
            "the clock, and every symbol an enabled strategy trades.")

    def handle(self, *args: str, **options: object) -> None:
        exchange = get_exchange()
        self.stdout.write(f"Exchange account {exchange.account_id}:")
        lines = setup_check(exchange)
        for line in lines:
            style = {CheckState.OK: self.style.SUCCESS, CheckState.WARNING: self.style.WARNING}.get(
                line.state, self.style.ERROR)
            self.stdout.write(f"{style(MARKS[line.state].ljust(7))} {line.name}: {line.text}")
        failed = sum(line.state is CheckState.FAILED for line in lines)
        if failed:
            raise CommandError(f"{failed} of {len(lines)} checks failed: see above for what to do.")
        self.stdout.write("The account is ready to trade.")
