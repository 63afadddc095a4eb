"""The project's own `manage.py check --deploy` warnings: settings that start fine but leave a
deployment open. Registered when the trading app is ready (trading/apps.py)."""

from django.conf import settings
from django.core.checks import CheckMessage, Tags, Warning, register


@register(Tags.security, deploy=True)
def webhook_open_to_everyone(**kwargs: object) -> list[CheckMessage]:
    """Real orders from any address that has the passphrase: one leaked alert message is enough."""
    if settings.EXCHANGE != "binance" or settings.WEBHOOK_ALLOWED_IPS:
        return []
    return [Warning(
        "EXCHANGE=binance and WEBHOOK_ALLOWED_IPS is empty: any address on the internet that has the passphrase "
        "can place real orders.",
        hint="Set WEBHOOK_ALLOWED_IPS=tradingview (TradingView's four addresses), adding your own if you post too.",
        id="alsatrade.W001",
    )]
