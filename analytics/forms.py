"""The filters of the trader pages: GET forms, so a filtered list is a link one can share."""

from django import forms
from django.http import QueryDict

from trading.models import Execution, Signal


def _any(choices: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [("", "Any"), *choices]


class ExecutionFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=_any(list(Execution.Status.choices)))
    strategy = forms.ChoiceField(required=False, choices=[("", "Any")])
    symbol = forms.CharField(required=False, max_length=30, widget=forms.TextInput(attrs={"placeholder": "e.g. BTCUSDT"}))

    def __init__(self, data: QueryDict, *, strategies: list[str]) -> None:
        super().__init__(data)
        strategy = self.fields["strategy"]
        assert isinstance(strategy, forms.ChoiceField)
        strategy.choices = _any([(name, name) for name in strategies])

    def clean_symbol(self) -> str:
        return self.cleaned_data["symbol"].strip().upper()


class SignalFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=_any(list(Signal.Status.choices)))
