from django import forms

from notifications.models import Channel

SECRET_FIELDS = ("telegram_bot_token", "discord_webhook_url")


class ChannelForm(forms.ModelForm):
    """The admin's channel form: secrets typed into password inputs that never show the stored
    value; left blank, the stored one is kept."""

    # Declared for assume_scheme: a URL typed without one is Discord's, over https.
    discord_webhook_url = forms.URLField(
        required=False, max_length=500, assume_scheme="https", widget=forms.PasswordInput(render_value=False),
        help_text=Channel._meta.get_field("discord_webhook_url").help_text,
    )

    class Meta:
        model = Channel
        fields = [
            "name", "kind", "enabled", "strategy", "telegram_bot_token", "telegram_chat_id", "discord_webhook_url",
            "email_to", "on_fill", "on_refusal", "on_failure", "on_protection", "on_halt", "on_limit",
        ]
        widgets = {"telegram_bot_token": forms.PasswordInput(render_value=False)}

    def clean_telegram_bot_token(self) -> str:
        return self._kept("telegram_bot_token")

    def clean_discord_webhook_url(self) -> str:
        return self._kept("discord_webhook_url")

    def _kept(self, name: str) -> str:
        value: str = self.cleaned_data.get(name) or ""
        return value or getattr(self.instance, name, "")
