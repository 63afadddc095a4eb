"""Log filter that masks configured secrets wherever they appear in a record, tracebacks included.

A last line of defence: the code never logs secrets on purpose, but an exception message or a
third-party library's debug line might carry one.
"""

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
        masked = _mask(message, secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _mask(record.exc_text, secrets)
        return True


def _mask(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
