"""`manage.py api_token create USER [--days N] [--create] [--grant APP.CODENAME …]`: a REST API token
for USER, printed once (the key alone on stdout, so `TOKEN=$(…)` keeps it).

Only the key's digest is stored, so the key cannot be shown again: a lost key is deleted in the
admin (*Knox → Auth tokens*) and a new one created. `--create` makes USER an API-only account (no
password: it cannot log in to the pages or the admin); with no permission it reads everything, and
each `--grant` adds what it may change, e.g. preferences.change_strategypreference.
"""

import argparse

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission, User
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from alsatrade.api_tokens import api_token_create

MAX_DAYS = 3650


class Command(BaseCommand):
    help = "Create a REST API token for a user and print its key (shown this once only)."

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="Create a token; the key alone goes to stdout.")
        create.add_argument("username")
        create.add_argument("--days", type=int, default=None,
                            help="Lifetime in days (0: until deleted). Default: API_TOKEN_TTL_DAYS.")
        create.add_argument("--create", action="store_true",
                            help="Create the user if missing: an API-only account without a password.")
        create.add_argument("--grant", action="append", default=[], metavar="APP.CODENAME",
                            help="Give the user this permission (repeatable), e.g. preferences.change_strategypreference.")

    def handle(self, *args: object, **options: object) -> None:
        username, days, grants = options["username"], options["days"], options["grant"]
        assert isinstance(username, str) and isinstance(grants, list)
        if days is not None and not (isinstance(days, int) and 0 <= days <= MAX_DAYS):
            raise CommandError(f"--days: 0 (until deleted) to {MAX_DAYS}.")
        with transaction.atomic():
            user = _user(username, create=bool(options["create"]))
            user.user_permissions.add(*(_permission(name) for name in grants))
            token, key = api_token_create(user=user, days=days)
        until = f"until {token.expiry:%Y-%m-%d %H:%M} UTC" if token.expiry else "until deleted"
        self.stderr.write(f"Token for {username}, valid {until}. Send it as `Authorization: Token <key>`; "
                          "it is not shown again.")
        self.stdout.write(key)


def _user(username: str, *, create: bool) -> User:
    model = get_user_model()
    user = model.objects.filter(**{model.USERNAME_FIELD: username}).first()
    if user is None and create:
        user = model.objects.create_user(**{model.USERNAME_FIELD: username}, password=None)
    if user is None:
        raise CommandError(f"No user {username!r}: add --create, or create one in the admin.")
    if not user.is_active:
        raise CommandError(f"User {username!r} is inactive: its token would be refused.")
    assert isinstance(user, User)  # the project's user model: Django's own
    return user


def _permission(name: str) -> Permission:
    app_label, _dot, codename = name.partition(".")
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    if permission is None:
        raise CommandError(f"--grant {name}: no such permission (APP.CODENAME, e.g. preferences.change_strategypreference).")
    return permission
