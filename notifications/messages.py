"""What a notification says: plain and short, with a link to the execution's page."""

from django.conf import settings
from django.urls import reverse

from analytics.templatetags.ui_tags import amount
from notifications.redaction import redact
from trading.models import Execution

REASON_LIMIT = 300


def execution_text(execution: Execution) -> str:
    """E.g. "ALSAPRO 1 · BTCUSDT buy: filled / open buy 0.111 at 45,000 / <reason> / <link>"."""
    lines = [f"{execution.strategy} · {execution.symbol} {execution.signal.action}: {execution.get_status_display().lower()}"]
    for order in execution.orders.filter(executed_qty__gt=0).order_by("leg"):
        lines.append(f"{order.purpose} {order.side.lower()} {amount(order.executed_qty)} at {amount(order.avg_price)}")
    if execution.reason:
        reason = execution.reason
        lines.append(reason if len(reason) <= REASON_LIMIT else reason[: REASON_LIMIT - 1] + "…")
    lines.append(link(reverse("ui:execution", kwargs={"execution_id": execution.pk})))
    return redact("\n".join(lines))


def passphrase_block_text(*, source: str, address: str, exempt: bool) -> str:
    """A source reached WEBHOOK_AUTH_FAILURES wrong passphrases (trading/webhook.py); told as a limit hit."""
    last = f" (the last from {address})" if address != source else ""
    said = (f"Webhook: {settings.WEBHOOK_AUTH_FAILURES} wrong passphrases from {source}{last} "
            f"within {settings.WEBHOOK_AUTH_WINDOW} s.")
    if exempt:
        return said + " Not blocked, as WEBHOOK_ALLOWED_IPS names it: someone who knows the webhook's URL is guessing."
    return said + f" Its signals are refused (429) for {settings.WEBHOOK_AUTH_BLOCK} s, whatever passphrase they carry."


def trial_text(channel_name: str) -> str:
    return f"Alsa Trade test message for “{channel_name}”: this channel works.\n{link(reverse('ui:dashboard'))}"


def link(path: str) -> str:
    return f"{settings.NOTIFY_BASE_URL}{path}"
