"""What the OpenAPI schema describes: the REST API, not the webhook.

The webhook is TradingView's contract (docs/TRADINGVIEW.md): it takes a raw JSON or text/plain body
and authenticates by passphrase, which an OpenAPI client could neither build nor call usefully.
"""

EXCLUDED_PREFIXES = ("/webhook",)


def api_endpoints_only(endpoints: list[tuple], **kwargs: object) -> list[tuple]:
    # Reference: https://drf-spectacular.readthedocs.io/en/latest/settings.html (PREPROCESSING_HOOKS)
    return [endpoint for endpoint in endpoints if not endpoint[0].startswith(EXCLUDED_PREFIXES)]
