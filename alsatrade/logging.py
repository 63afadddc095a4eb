"""Log filter that masks configured secrets wherever they appear in a record."""

import logging

from django.conf import settings

MASK = "********"
SECRET_SETTINGS = ("WEBHOOK_PASSPHRASE", "BINANCE_API_KEY", "BINANCE_API_SECRET", "SECRET_KEY")


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        secrets = [value for name in SECRET_SETTINGS if len(value := getattr(settings, name, "") or "") >= 6]
        if not secrets:
            return True
        message = record.getMessage()
        masked = message
        for secret in secrets:
            masked = masked.replace(secret, MASK)
        if masked != message:
            record.msg, record.args = masked, None
        return True
