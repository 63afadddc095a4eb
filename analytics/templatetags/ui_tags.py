"""Template helpers for the trader pages: numbers as people read them, status badges."""

import json
from decimal import Decimal, InvalidOperation

from django import template
from django.utils.html import format_html
from django.utils.safestring import SafeString

register = template.Library()

# A badge's colour, by status (Execution's, Signal's and ProtectiveOrder's). Every badge also says its status in words,
# so the colour is never the only signal (a colour-blind trader reads the text).
TONES = {
    "filled": "ok",
    "done": "ok",
    "partial": "warn",
    "warning": "warn",  # an execution that did no harm but has something to tell (Execution.warning)
    "running": "info",
    "received": "info",
    "queued": "info",
    "executing": "info",
    "nothing": "muted",
    "skipped": "muted",
    "filtered": "muted",
    "rejected": "bad",
    "failed": "bad",
    # A protective order's (ProtectiveOrder.Status): resting is good, gone from the exchange unexplained is not.
    "active": "ok",
    "placing": "info",
    "triggered": "info",
    "cancelled": "muted",
    "gone": "warn",
}


@register.filter
def amount(value: object, places: int | str | None = None) -> str:
    """45000.5000000000 → "45,000.5"; with `places`, fixed decimals: amount:2 → "45,000.50"; None → "—"."""
    if value is None or value == "":
        return "—"
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if not number.is_finite():
        return str(value)
    if places is not None and places != "":
        digits = int(places)
        number = number.quantize(Decimal(1).scaleb(-digits))
        text = f"{_unsigned_zero(number):,.{digits}f}"
    else:
        text = f"{_unsigned_zero(number.normalize()):,f}"
    return text


def _unsigned_zero(number: Decimal) -> Decimal:
    # A sum that cancels out, or a tiny loss rounded away, leaves "-0": nobody reads that as zero.
    return number.copy_abs() if number.is_zero() else number


@register.filter
def sign_class(value: object) -> str:
    """CSS class for a P&L figure: "pos", "neg" or ""."""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return ""
    if not number.is_finite():
        return ""
    return "pos" if number > 0 else "neg" if number < 0 else ""


@register.inclusion_tag("ui/_badge.html")
def status_badge(status: str, label: str) -> dict[str, str]:
    return {"tone": TONES.get(status, "muted"), "label": label, "status": status}


@register.filter
def chart_points(points: list[dict[str, object]], element_id: str) -> SafeString:
    """A chart's points ({time, value}, value a Decimal) as json_script would write them, but with each
    value written as the exact decimal number it is: no float between the database and the page.
    The chart (lightweight-charts) reads JSON numbers; the browser is the one that makes them floats."""
    rows = ", ".join(f'{{"time": {json.dumps(point["time"])}, "value": {_json_number(point["value"])}}}'
                     for point in points)
    return format_html('<script id="{}" type="application/json">{}</script>', element_id, SafeString(f"[{rows}]"))


def _json_number(value: object) -> str:
    number = Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"a chart point's value must be a finite number, not {value!r}")
    return format(number.normalize(), "f")
