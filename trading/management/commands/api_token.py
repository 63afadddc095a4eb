"""`manage.py api_token create USER [--days N]`: a REST API token for USER, printed once.

Only the key's digest is stored, so the key cannot be shown again: a lost key is deleted in the
admin (API tokens) and a new one created.
"""

import argparse

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from alsatrade.api_tokens import api_token_create


class Command(BaseCommand):
    help = "Create a REST API token for a user and print its key (shown this once only)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a token; the key alone goes to stdout.")
        create.add_argument("username")
        create.add_argument("--days", type=int, default=None,
                            help="Lifetime in days (0: until deleted). Default: API_TOKEN_TTL_DAYS.")

    def handle(self, *args: object, **options: object) -> None:
        username, days = str(options["username"]), options["days"]
        if days is not None and not 0 <= int(str(days)) <= 3650:
            raise CommandError("--days: 0 (until deleted) to 3650.")
        user = get_user_model().objects.filter(**{get_user_model().USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f"No user {username!r}: create one first (manage.py createsuperuser, or the admin).")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive: its token would be refused.")
        token, key = api_token_create(user=user, days=None if days is None else int(str(days)))
        until = f"until {token.expiry:%Y-%m-%d %H:%M} UTC" if token.expiry else "until deleted"
        self.stderr.write(f"Token for {username}, valid {until}. Send it as `Authorization: Token <key>`; "
                          "it is not shown again.")
        self.stdout.write(key)
