from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils import timezone

from notifications.destinations import DestinationRefused, destination_check


class EventType(models.TextChoices):
    FILL = "fill", "Fill"
    REFUSAL = "refusal", "Refusal (rejected or skipped)"
    FAILURE = "failure", "Failure"
    PROTECTION = "protection", "Protection alarm"
    HALT = "halt", "Halt"
    LIMIT = "limit", "Limit hit"


class Channel(models.Model):
    """Where people are told what happened: a Telegram chat, a Discord channel's webhook, or e-mail."""

    class Kind(models.TextChoices):
        TELEGRAM = "telegram", "Telegram"
        DISCORD = "discord", "Discord"
        EMAIL = "email", "E-mail"

    # The field that says whether a channel wants an event type.
    TOGGLES = {
        EventType.FILL: "on_fill",
        EventType.REFUSAL: "on_refusal",
        EventType.FAILURE: "on_failure",
        EventType.PROTECTION: "on_protection",
        EventType.HALT: "on_halt",
        EventType.LIMIT: "on_limit",
    }

    REQUIRED: dict[str, tuple[str, ...]] = {
        Kind.TELEGRAM: ("telegram_bot_token", "telegram_chat_id"),
        Kind.DISCORD: ("discord_webhook_url",),
        Kind.EMAIL: ("email_to",),
    }

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    enabled = models.BooleanField(default=True)
    strategy = models.ForeignKey(
        "preferences.StrategyPreference", null=True, blank=True, on_delete=models.CASCADE,
        related_name="notification_channels",
        help_text="Only this strategy's events (and account-wide ones such as a halt of everything). "
        "Empty: every strategy's.",
    )
    telegram_bot_token = models.CharField(
        max_length=100, blank=True, help_text="From @BotFather, e.g. 123456:ABC-DEF…; kept secret."
    )
    telegram_chat_id = models.CharField(
        max_length=64, blank=True, help_text="The chat's id (a group's is negative) or @channelname."
    )
    discord_webhook_url = models.URLField(
        max_length=500, blank=True, help_text="Channel settings → Integrations → Webhooks → Copy URL; kept secret."
    )
    email_to = models.TextField(blank=True, help_text="Addresses, separated by commas or new lines.")

    on_fill = models.BooleanField("fills", default=True)
    on_refusal = models.BooleanField("refusals (rejected, skipped)", default=True)
    on_failure = models.BooleanField("failures", default=True)
    on_protection = models.BooleanField("protection alarms", default=True)
    on_halt = models.BooleanField("halts", default=True)
    on_limit = models.BooleanField("limit hits", default=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["telegram", "discord", "email"]), name="channel_kind_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self) -> None:
        required = self.REQUIRED.get(self.kind, ())
        missing = {name: f"A {self.get_kind_display()} channel needs this." for name in required if not getattr(self, name)}
        if missing:
            raise ValidationError(missing)
        for address in self.recipients():
            try:
                validate_email(address)
            except ValidationError:
                raise ValidationError({"email_to": f"{address!r} is not an e-mail address."}) from None
        self._clean_destination()

    def _clean_destination(self) -> None:
        """Refused at once, not at the first send (which checks again: DNS can change meanwhile)."""
        if self.kind == self.Kind.DISCORD:
            field, url, where = "discord_webhook_url", self.discord_webhook_url, "Messages may not go to this URL"
        elif self.kind == self.Kind.TELEGRAM:
            field, url, where = NON_FIELD_ERRORS, settings.NOTIFY_TELEGRAM_API, "Telegram's API (NOTIFY_TELEGRAM_API) is refused"
        else:
            return
        try:
            destination_check(url)
        except DestinationRefused as error:
            raise ValidationError({field: f"{where}: {error}."}) from None

    def recipients(self) -> list[str]:
        return [part.strip() for part in self.email_to.replace("\n", ",").split(",") if part.strip()]

    @property
    def secrets(self) -> list[str]:
        """What lets anyone post as us: never shown, stored or logged in full."""
        if self.kind == self.Kind.TELEGRAM:
            return [self.telegram_bot_token]
        if self.kind == self.Kind.DISCORD:
            # An error may quote the URL's path alone; its last part is Discord's webhook token.
            return [self.discord_webhook_url, self.discord_webhook_url.rstrip("/").rsplit("/", 1)[-1]]
        return []

    @property
    def destination(self) -> str:
        """Where messages go, as the admin list shows it: secrets masked but for their last 4 characters."""
        if self.kind == self.Kind.TELEGRAM:
            return f"chat {self.telegram_chat_id}, bot token {masked(self.telegram_bot_token)}"
        if self.kind == self.Kind.DISCORD:
            return f"webhook {masked(self.discord_webhook_url)}"
        return ", ".join(self.recipients())

    def listens_to(self, event_type: str) -> bool:
        return bool(getattr(self, self.TOGGLES[EventType(event_type)]))


def masked(secret: str) -> str:
    """All but the last 4 characters hidden; a secret too short to spare 4 is hidden whole."""
    if not secret:
        return ""
    return "••••" + secret[-4:] if len(secret) >= 12 else "••••"


class Notification(models.Model):
    """One event to tell one channel, and how telling it went.

    pending → sending (claimed by one deliver job) → sent; a failed attempt goes back to pending
    with `next_attempt_at` pushed out, until the last allowed attempt fails: failed.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="notifications")
    event_type = models.CharField(max_length=12, choices=EventType.choices)
    text = models.TextField()
    execution = models.ForeignKey(
        "trading.Execution", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="notification_due")]
        constraints = [
            # An execution's outcome is told to each channel once, however often it is recorded.
            models.UniqueConstraint(
                fields=["execution", "channel", "event_type"], condition=Q(execution__isnull=False),
                name="notification_once_per_execution",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_type_display()} → {self.channel.name} ({self.status})"
