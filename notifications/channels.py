"""Sending one message to one channel: Telegram's Bot API, a Discord webhook, or Django's mail.

Each sender raises DeliveryError with a message that is safe to store and show: the channel's
secrets are masked out of it. HTTP requests give up after NOTIFY_TIMEOUT seconds.
"""

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping

from django.conf import settings
from django.core.mail import send_mail

from notifications.models import Channel
from notifications.redaction import redact

TELEGRAM_LIMIT = 4096  # characters per message (Bot API sendMessage)
DISCORD_LIMIT = 2000  # characters of `content`
# Discord sits behind Cloudflare, which refuses Python's default User-Agent (error 1010).
USER_AGENT = "AlsaTrade-notifications/1.0"


class DeliveryError(Exception):
    """A message did not go out; str() is redacted."""


def channel_send(channel: Channel, text: str) -> None:
    senders: dict[str, Callable[[Channel, str], None]] = {
        Channel.Kind.TELEGRAM: telegram_send, Channel.Kind.DISCORD: discord_send, Channel.Kind.EMAIL: email_send,
    }
    try:
        senders[channel.kind](channel, text)
    except DeliveryError:
        raise
    except Exception as error:  # the mail backend's, a malformed URL's…: recorded like any failure
        raise DeliveryError(redact(f"{type(error).__name__}: {error}", channel.secrets)) from None


def telegram_send(channel: Channel, text: str) -> None:
    # Reference: https://core.telegram.org/bots/api#sendmessage
    url = f"{settings.NOTIFY_TELEGRAM_API}/bot{channel.telegram_bot_token}/sendMessage"
    _post_json(url, {"chat_id": channel.telegram_chat_id, "text": text[:TELEGRAM_LIMIT]}, channel)


def discord_send(channel: Channel, text: str) -> None:
    # Reference: https://discord.com/developers/docs/resources/webhook#execute-webhook
    # No mentions: a strategy or symbol name must never ping @everyone.
    body = {"content": text[:DISCORD_LIMIT], "allowed_mentions": {"parse": []}}
    _post_json(channel.discord_webhook_url, body, channel)


def email_send(channel: Channel, text: str) -> None:
    subject = f"Alsa Trade: {text.splitlines()[0][:120]}" if text else "Alsa Trade"
    send_mail(subject, text, None, channel.recipients(), fail_silently=False)


def _post_json(url: str, body: Mapping[str, object], channel: Channel) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.NOTIFY_TIMEOUT) as response:
            response.read(1024)
    except urllib.error.HTTPError as error:
        # Telegram says why in {"description": …}; Discord in {"message": …}.
        detail = error.read(300).decode(errors="replace").strip()
        raise DeliveryError(redact(f"HTTP {error.code}: {detail}", channel.secrets)) from None
    except urllib.error.URLError as error:
        raise DeliveryError(redact(_why(error.reason), channel.secrets)) from None
    except OSError as error:  # TimeoutError while reading the answer, a reset connection
        raise DeliveryError(redact(_why(error), channel.secrets)) from None


def _why(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {settings.NOTIFY_TIMEOUT:g} s"
    return f"{type(reason).__name__}: {reason}" if isinstance(reason, BaseException) else str(reason)
