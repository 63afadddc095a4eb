"""Secrets out of whatever a notification sends or stores: its text and its recorded errors.

The same masking as the log filter (alsatrade/logging.py), for the same settings, plus the mail
password, the channel's own secrets, and the two token formats the chat services use, so a token
that no setting knows (another bot's, quoted in an error) is masked too.
"""

import re

from django.conf import settings

from alsatrade.logging import MASK, SECRET_SETTINGS

SETTINGS = (*SECRET_SETTINGS, "EMAIL_HOST_PASSWORD")
SHORTEST = 6  # shorter values would mask ordinary words; the log filter draws the line there too
# Reference: https://core.telegram.org/bots/api#authorizing-your-bot ("123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11")
# No \b: in a Bot API URL the token follows "bot" directly.
TELEGRAM_TOKEN = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{30,}")
# Reference: https://discord.com/developers/docs/resources/webhook#execute-webhook (/webhooks/{id}/{token})
DISCORD_WEBHOOK_TOKEN = re.compile(r"(/webhooks/\d+/)[A-Za-z0-9_.-]+")


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every known secret, and anything shaped like a chat service's token, masked."""
    known = [getattr(settings, name, "") or "" for name in SETTINGS] + (secrets or [])
    # Longest first: a webhook URL is masked whole before its token part is looked for.
    for secret in sorted({value for value in known if len(value) >= SHORTEST}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = TELEGRAM_TOKEN.sub(MASK, text)
    return DISCORD_WEBHOOK_TOKEN.sub(rf"\g<1>{MASK}", text)
