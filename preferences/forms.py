import json
import re
from collections.abc import Mapping
from typing import Any

from django import forms
from django.core.serializers.json import DjangoJSONEncoder

from preferences.models import StrategyPreference
from preferences.symbols import resolve
from preferences.trading_hours import TradingHoursError, trading_hours_parse
from trading.exchange import ExchangeError, get_exchange
from trading.intake import normalise_symbol
from trading.stops import LADDER_MAX, Trailing, ladder_as_value, ladder_from_value

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


class JSONPartsWidget(forms.MultiWidget):
    """A JSON value edited as several inputs on a page: the API (and model_to_dict) posts the value
    itself under the field's name, a page its parts, which `from_parts` turns into the JSON text."""

    def value_omitted_from_data(self, data: Mapping[str, Any], files: Any, name: str) -> bool:  # noqa: ANN401
        # Else the model form keeps the stored value when the API sets null (the parts are absent).
        return name not in data and super().value_omitted_from_data(data, files, name)

    # One JSON text for the JSONField, not the list of parts a MultiWidget's stub promises.
    def value_from_datadict(  # type: ignore[override]
        self, data: Mapping[str, Any], files: Any, name: str  # noqa: ANN401 - Django's own argument
    ) -> str | None:
        if name in data:  # the API (and model_to_dict): the value itself
            value = data[name]
            return value if value is None or isinstance(value, str) else json.dumps(value, cls=DjangoJSONEncoder)
        return self.from_parts([str(part or "").strip() for part in super().value_from_datadict(data, files, name)])

    def from_parts(self, parts: list[str]) -> str | None:
        raise NotImplementedError


class TrailingStopWidget(JSONPartsWidget):
    """Two numbers on a page (callback %, activation %), one JSON value to the form: the API posts
    the value itself under the field's name, a page its two inputs."""

    template_name = "django/forms/widgets/multiwidget.html"

    def __init__(self) -> None:
        number = {"step": "0.1", "min": "0"}
        callback, activation = "callback %", "activation % (empty: at once)"
        super().__init__([
            forms.NumberInput(attrs={**number, "placeholder": callback, "aria-label": callback, "title": callback,
                                     "max": "10"}),
            forms.NumberInput(attrs={**number, "placeholder": activation, "aria-label": activation, "title": activation}),
        ])

    def decompress(self, value: Any) -> list[Any]:  # noqa: ANN401 - the stored JSON
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("{") else None
        if not isinstance(value, dict):
            return [None, None]
        return [value.get("callback"), value.get("activation_pct")]

    def from_parts(self, parts: list[str]) -> str | None:
        callback, activation = parts
        if not callback and not activation:
            return None
        return json.dumps({"callback": callback or None, **({"activation_pct": activation} if activation else {})})


# Settings newer than some pages and clients: one that posts none keeps the strategy's (the default
# for a new strategy) rather than being refused.
KEPT_WHEN_ABSENT = ("entry", "entry_offset_pct", "entry_timeout", "on_timeout")


class LadderWidget(JSONPartsWidget):
    """The take-profit ladder as rows of (% from entry, share %) on a page, one JSON list to the form;
    the API posts the list itself under the field's name. Empty rows are left out."""

    template_name = "preferences/ladder_widget.html"

    def __init__(self) -> None:
        number = {"step": "any", "min": "0"}
        super().__init__([forms.NumberInput(attrs={**number, "aria-label": f"level {n // 2 + 1} {'share' if n % 2 else 'pct'}"})
                          for n in range(2 * LADDER_MAX)])

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:  # noqa: ANN401
        context = super().get_context(name, value, attrs)
        subwidgets = context["widget"]["subwidgets"]
        context["widget"]["rows"] = list(zip(subwidgets[::2], subwidgets[1::2], strict=True))
        return context

    def decompress(self, value: Any) -> list[Any]:  # noqa: ANN401 - the stored JSON
        if isinstance(value, str):
            value = json.loads(value) if value.strip().startswith("[") else None
        levels = [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []
        flat = [part for item in levels[:LADDER_MAX] for part in (item.get("pct"), item.get("share"))]
        return flat + [None] * (2 * LADDER_MAX - len(flat))

    def from_parts(self, parts: list[str]) -> str | None:
        rows = [{"pct": pct or None, "share": share or None} for pct, share in zip(parts[::2], parts[1::2], strict=True)
                if pct or share]
        return json.dumps(rows) if rows else None


class StrategyPreferenceForm(forms.ModelForm):
    products = ProductsField(required=False, help_text="Comma-separated symbols, e.g. BTCUSDT, ETHUSDT.")
    take_profit_ladder = forms.JSONField(
        required=False, widget=LadderWidget(), label="Take-profit ladder",
        help_text=f"Instead of one take-profit %: up to {LADDER_MAX} levels, each a % from the entry and a share of the "
        "position (shares sum to 100), nearest first. Placed as reduce-only take-profits; empty: none.",
    )
    trailing_stop = forms.JSONField(
        required=False, widget=TrailingStopWidget(),
        help_text="Callback 0.1–10 % from the best price since activation; activation % from the entry (empty: at "
        "once). Both empty: no trailing stop (an alert's `trail` still places one).",
    )
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
            "name", "enabled", "products", "direction", "leverage", "margin_type", "sizing", "allocation_pct", "risk_pct",
            "max_position_usdt", "price_tolerance_pct",
            "entry", "entry_offset_pct", "entry_timeout", "on_timeout",
            "stop_loss", "take_profit", "max_daily_loss", "take_profit_ladder",
            "breakeven_after", "breakeven_to", "trailing_stop", "max_open_positions", "max_adds", "sync_to_alert", "halted_until",
            "cooldown_after_loss", "max_trades_per_day", "loss_streak_limit", "max_drawdown_pct", "drawdown_locked_at",
            "trading_hours", "max_signal_age", "notes",
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
        # A page or client from before breakeven_to existed posts none: the default, not an error.
        self.fields["breakeven_to"].required = False
        for name in KEPT_WHEN_ABSENT:
            self.fields[name].required = False

    def clean_trading_hours(self) -> str:
        value: str = self.cleaned_data["trading_hours"].strip()
        try:
            trading_hours_parse(value)
        except TradingHoursError as error:
            raise forms.ValidationError(f"trading hours: {error}") from None
        return value

    def clean_breakeven_to(self) -> str:
        return self.cleaned_data["breakeven_to"] or StrategyPreference.BreakevenTo.ENTRY

    def clean_take_profit_ladder(self) -> list[dict[str, str]] | None:
        try:
            return ladder_as_value(ladder_from_value(self.cleaned_data["take_profit_ladder"]))
        except ValueError as error:
            raise forms.ValidationError(f"take-profit ladder: {error}") from None

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("take_profit") and cleaned.get("take_profit_ladder"):
            self.add_error("take_profit_ladder", "Set either a take-profit % or a ladder, not both.")
        for name in KEPT_WHEN_ABSENT:
            if name in cleaned and cleaned[name] in (None, ""):
                cleaned[name] = getattr(self.instance, name)  # as saved; a new strategy's: the default
        return cleaned

    def clean_trailing_stop(self) -> dict[str, str | None] | None:
        try:
            trailing = Trailing.from_value(self.cleaned_data["trailing_stop"])
        except ValueError as error:
            raise forms.ValidationError(f"trailing stop: {error}") from None
        return None if trailing is None else trailing.as_value()

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
