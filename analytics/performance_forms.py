"""The analytics page's filter: a GET form (a filtered page is a link one can share) that names a
period, or a chosen range of UTC days, and optionally one strategy and one symbol."""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.http import QueryDict

PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "30d"
PERIOD_CHOICES = (("24h", "Last 24 hours"), ("7d", "Last 7 days"), ("30d", "Last 30 days"), ("all", "All time"),
                  ("range", "Chosen dates"))
BREAKDOWNS = (("day", "Day"), ("week", "Week"), ("month", "Month"))


@dataclass(frozen=True)
class Window:
    """`start` inclusive, `end` exclusive; None is open-ended."""

    start: datetime | None
    end: datetime | None
    label: str


class DateInput(forms.DateInput):
    input_type = "date"


class PerformanceFilterForm(forms.Form):
    period = forms.ChoiceField(required=False, choices=PERIOD_CHOICES)
    start = forms.DateField(required=False, label="From (UTC)", widget=DateInput())
    end = forms.DateField(required=False, label="To (UTC, inclusive)", widget=DateInput())
    strategy = forms.ChoiceField(required=False, choices=[("", "Any")])
    symbol = forms.ChoiceField(required=False, choices=[("", "Any")])
    by = forms.ChoiceField(required=False, choices=BREAKDOWNS, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict, *, strategies: list[str], symbols: list[str]) -> None:
        super().__init__(data)
        for name, values in (("strategy", strategies), ("symbol", symbols)):
            field = self.fields[name]
            assert isinstance(field, forms.ChoiceField)
            field.choices = [("", "Any"), *((value, value) for value in values)]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        start, end = cleaned.get("start"), cleaned.get("end")
        if start or end:
            cleaned["period"] = "range"  # dates mean a chosen range, whatever the period list says
        if isinstance(start, date) and isinstance(end, date) and start > end:
            raise forms.ValidationError("“From” is after “To”.")
        return cleaned

    def window(self, *, now: datetime) -> Window:
        """The chosen span; the default (last 30 days) when nothing or something invalid was chosen.
        Rolling periods start on a whole minute, so a minute's requests share one cached answer."""
        data = self.cleaned_data if self.is_valid() else {}
        period = data.get("period") or DEFAULT_PERIOD
        if period == "all":
            return Window(None, None, "All time")
        if period == "range":
            start, end = data.get("start"), data.get("end")
            after_end = _midnight(end + timedelta(days=1)) if end and end < date.max else None
            return Window(_midnight(start), after_end, _range_label(start, end))
        minute = now.replace(second=0, microsecond=0)
        return Window(minute - PERIODS[period], None, dict(PERIOD_CHOICES)[period])

    def choice(self, name: str) -> str:
        return str(self.cleaned_data.get(name) or "") if self.is_valid() else ""


def _midnight(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=UTC)


def _range_label(start: date | None, end: date | None) -> str:
    if start and end:
        return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    if not start and not end:
        return "All time"
    return f"Since {start:%Y-%m-%d}" if start else f"Up to {end:%Y-%m-%d}"
