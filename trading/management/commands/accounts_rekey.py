"""`manage.py accounts_rekey`: every account's stored API key and secret encrypted again under the first
key of FIELD_ENCRYPTION_KEY. The rotation (docs/CONFIGURATION.md): put the new key first, keep the old
ones after it, restart, run this, then drop the old keys.

All or nothing: a token that none of the keys opens stops the run with nothing changed. The rows'
`updated_at` is left alone (the secrets are the same; the adapters built from them stay valid), and
no history row is written (the history never holds the keys).
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from trading import keyring
from trading.models import Account


class Command(BaseCommand):
    help = "Re-encrypt every stored account key under the first FIELD_ENCRYPTION_KEY."

    def handle(self, *args: object, **options: object) -> None:
        keyring.reset()  # the keys as configured now, not as this process first read them
        done = 0
        with transaction.atomic():
            for account in Account.objects.select_for_update().exclude(api_key="").order_by("pk"):
                try:
                    api_key, api_secret = keyring.rekey(account.api_key), keyring.rekey(account.api_secret)
                except keyring.KeyringError as error:
                    raise CommandError(f"account {account.name}: {error}; nothing was changed") from None
                Account.objects.filter(pk=account.pk).update(api_key=api_key, api_secret=api_secret)
                done += 1
        self.stdout.write(f"{done} account(s) re-encrypted under the first FIELD_ENCRYPTION_KEY.")
