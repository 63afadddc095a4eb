"""`manage.py accounts_check [NAME …]`: each account's position mode and multi-assets mode read from its
exchange with its own key, kept on its row (what the accounts page and `GET /accounts` show) and
printed. Reads only. The `default` account is read through the environment's adapter; an account the
exchange refuses is named with Binance's words, and the command ends with an error.
"""

import argparse

from django.core.management.base import BaseCommand, CommandError

from trading.accounts import AccountError, account_check, accounts_listed

SHOWN = {True: "on", False: "off", None: "none (paper)"}


class Command(BaseCommand):
    help = "Read each account's position and multi-assets modes from its exchange, and keep them."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="Only these accounts (default: every one).")

    def handle(self, *args: object, **options: object) -> None:
        names = options["names"]
        assert isinstance(names, list)
        accounts = [account for account in accounts_listed() if not names or account.name in names]
        unknown = sorted(set(names) - {account.name for account in accounts})
        if unknown:
            raise CommandError(f"no account named {', '.join(unknown)}")
        failed = 0
        for account in accounts:
            try:
                check = account_check(account)
            except AccountError as error:
                self.stderr.write(f"{account.name} ({account.environment}): {error}")
                failed += 1
                continue
            mode = account.PositionMode(check.position_mode).label
            self.stdout.write(f"{account.name} ({account.environment}): position mode {mode}, "
                              f"multi-assets {SHOWN[check.multi_assets]}")
        if failed:
            raise CommandError(f"{failed} account(s) could not be read")
