"""Template helpers for the trader pages: numbers as people read them, status badges."""

from decimal import Decimal, InvalidOperation

from django import template

register = template.Library()

# A badge's colour, by status (Execution's and Signal's). Every badge also says its status in words,
# so the colour is never the only signal (a colour-blind trader reads the text).
TONES = {
    "filled": "ok",
    "done": "ok",
    "partial": "warn",
    "running": "info",
    "received": "info",
    "queued": "info",
    "executing": "info",
    "nothing": "muted",
    "skipped": "muted",
    "filtered": "muted",
    "rejected": "bad",
    "failed": "bad",
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
