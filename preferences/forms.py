import re
from typing import Any

from django import forms

from preferences.models import StrategyPreference
from preferences.symbols import resolve
from preferences.trading_hours import TradingHoursError, trading_hours_parse
from trading.exchange import ExchangeError, get_exchange
from trading.intake import normalise_symbol

SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")


def parse_products(value: str | list[str] | None) -> list[str]:
    """Symbols from a list or a comma/space-separated string, in TradingView's forms too (BTCUSDT.P,
    BINANCE:BTCUSDT.P), upper-cased, de-duplicated, in order. Whether they trade is checked apart."""
    items = value if isinstance(value, list) else re.split(r"[\s,]+", value or "")
    symbols = [normalise_symbol(str(item)) for item in items if str(item).strip()]
    bad = [symbol for symbol in symbols if not SYMBOL_RE.match(symbol)]
    if bad:
        raise forms.ValidationError(f"not a futures symbol: {', '.join(bad)} (expected e.g. BTCUSDT)")
    return list(dict.fromkeys(symbols))


class ProductsField(forms.CharField):
    def prepare_value(self, value: str | list[str] | None) -> str | None:
        return ", ".join(value) if isinstance(value, list) else value

    # Cleans to a list of symbols, not the str a CharField's stub promises; Django itself accepts any value.
    def to_python(self, value: str | list[str] | None) -> list[str]:  # type: ignore[override]
        return parse_products(value)


class StrategyPreferenceForm(forms.ModelForm):
    products = ProductsField(required=False, help_text="Comma-separated symbols, e.g. BTCUSDT, ETHUSDT.")
    new_passphrase = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Set this strategy's own webhook passphrase (min. 12 characters). Leave blank to keep the current one.",
    )
    clear_passphrase = forms.BooleanField(required=False, help_text="Use WEBHOOK_PASSPHRASE again.")

    class Meta:
        model = StrategyPreference
        fields = [
            "name", "enabled", "products", "direction", "leverage", "margin_type", "sizing", "allocation_pct",
            "risk_pct", "max_position_usdt", "price_tolerance_pct", "stop_loss", "take_profit", "max_daily_loss",
            "max_open_positions", "sync_to_alert", "halted_until", "cooldown_after_loss", "max_trades_per_day",
            "loss_streak_limit", "max_drawdown_pct", "drawdown_locked_at", "trading_hours", "max_signal_age", "notes",
        ]

    def clean_products(self) -> list[str]:
        """Each new symbol checked against the exchange's tradable perpetuals (`BTC` → BTCUSDT); the ones
        already saved are not asked again, so a change of another setting never waits on the exchange."""
        typed: list[str] = self.cleaned_data["products"]
        saved = set(self.instance.products or [])
        if not typed or set(typed) <= saved:
            return typed
        try:
            tradable = get_exchange().tradable_symbols() | saved
        except ExchangeError as error:
            raise forms.ValidationError(f"could not check the symbols against the exchange ({error}): try again") from None
        resolved = resolve(typed, tradable)
        if resolved.unknown:
            raise forms.ValidationError(resolved.problem())
        return list(resolved.symbols)

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # noqa: ANN401 - ModelForm's arguments
        super().__init__(*args, **kwargs)
        # A page posts the drawdown lock it showed beside the value: one opened before the lock
        # engaged and saved for another setting must leave the lock alone (see save).
        self.fields["drawdown_locked_at"].show_hidden_initial = True

    def clean_trading_hours(self) -> str:
        value: str = self.cleaned_data["trading_hours"].strip()
        try:
            trading_hours_parse(value)
        except TradingHoursError as error:
            raise forms.ValidationError(f"trading hours: {error}") from None
        return value

    def clean_new_passphrase(self) -> str:
        value = self.cleaned_data["new_passphrase"]
        if value and len(value) < 12:
            raise forms.ValidationError("A passphrase needs at least 12 characters.")
        return value

    def save(self, commit: bool = True) -> StrategyPreference:
        preference = super().save(commit=False)
        if "drawdown_locked_at" not in self.changed_data:
            preference.drawdown_locked_at = self.initial.get("drawdown_locked_at")  # as stored, not as once shown
        elif preference.drawdown_locked_at is None:
            preference.drawdown_clear()
        if self.cleaned_data.get("clear_passphrase"):
            preference.set_passphrase("")
        elif self.cleaned_data.get("new_passphrase"):
            preference.set_passphrase(self.cleaned_data["new_passphrase"])
        if commit:
            preference.save()
        return preference
