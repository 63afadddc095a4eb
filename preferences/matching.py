"""May this strategy trade this symbol? The one rule, asked by the webhook at intake and by the
worker again at execution (the preferences may have changed in between)."""

from preferences.models import StrategyPreference


def trade_refusal(preference: StrategyPreference | None, strategy: str, symbol: str) -> str:
    """Why a signal of `strategy` for `symbol` is not traded, in plain words; "" when it is."""
    if preference is None:
        return f"strategy {strategy!r} is not configured (add it in the admin)"
    if not preference.enabled:
        return f"strategy {strategy!r} is disabled"
    if not preference.allows_symbol(symbol):
        allowed = ", ".join(preference.products) or "none"
        return f"{symbol} is not among strategy {strategy!r}'s products ({allowed})"
    return ""
