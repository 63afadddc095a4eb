"""The kill switch's form, shared by the dashboard and the admin (the API has its serializer)."""

from django import forms

from trading.models import TradingHalt


class HaltForm(forms.ModelForm):
    """Halt or resume. `halted` comes from the button pressed (never from an unticked checkbox, which a
    form would read as "resume"); `flatten` closes every open position as well."""

    halted = forms.TypedChoiceField(choices=[("true", "Halt trading"), ("false", "Resume trading")],
                                    coerce=lambda value: value == "true", widget=forms.RadioSelect)
    flatten = forms.BooleanField(required=False, label="Also close every open position now",
                                 help_text="Queues a close of each open position through the normal execution path.")

    class Meta:
        model = TradingHalt
        fields = ["halted", "reason"]
        widgets = {"reason": forms.TextInput(attrs={"placeholder": "why, for the record and the notification"})}
