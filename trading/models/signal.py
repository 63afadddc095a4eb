from django.db import models
from django.utils import timezone

from trading.models.amounts import AMOUNT


class Signal(models.Model):
    """One webhook attempt and what became of it: the audit trail of everything TradingView sent."""

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        FILTERED = "filtered", "Filtered"
        REJECTED = "rejected", "Rejected"
        QUEUED = "queued", "Queued"
        EXECUTING = "executing", "Executing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    FINAL_STATUSES = (Status.FILTERED, Status.REJECTED, Status.DONE, Status.FAILED)

    class Origin(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        OPERATOR = "operator", "Operator (flatten)"

    origin = models.CharField(max_length=10, choices=Origin.choices, default=Origin.WEBHOOK)
    # The raw body as parsed, with the passphrase removed; empty for unauthenticated attempts.
    payload = models.JSONField(default=dict, blank=True)
    action = models.CharField(max_length=20, blank=True)
    symbol = models.CharField(max_length=30, blank=True, db_index=True)
    quantity = models.DecimalField(**AMOUNT, null=True, blank=True)
    price = models.DecimalField(**AMOUNT, null=True, blank=True)
    strategy = models.CharField(max_length=100, blank=True, db_index=True)
    preference = models.ForeignKey(
        "preferences.StrategyPreference", null=True, blank=True, on_delete=models.SET_NULL, related_name="signals"
    )
    sender_time = models.DateTimeField(null=True, blank=True)
    market_position = models.CharField(max_length=10, blank=True)
    prev_market_position = models.CharField(max_length=10, blank=True)
    position_size = models.DecimalField(**AMOUNT, null=True, blank=True)
    stop_loss = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="The alert's `sl` price, if any.")
    take_profit = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="The alert's `tp` price, if any.")
    comment = models.CharField(max_length=255, blank=True)

    source_ip = models.GenericIPAddressField(null=True, blank=True)
    # The sender's `id`, else a digest of the signal's content; NULL for attempts that never parsed.
    idempotency_key = models.CharField(max_length=128, unique=True, null=True, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RECEIVED, db_index=True)
    reason = models.TextField(blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duplicate_count = models.PositiveIntegerField(default=0)
    last_duplicate_at = models.DateTimeField(null=True, blank=True)

    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    intake_us = models.PositiveIntegerField(null=True, blank=True, help_text="Webhook processing time, microseconds.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["symbol", "status", "id"], name="signal_symbol_lane"),
            models.Index(fields=["strategy", "-received_at"], name="signal_strategy_recent"),
        ]

    def __str__(self) -> str:
        what = " ".join(part for part in (self.action, self.symbol) if part) or "unparsed"
        return f"#{self.pk} {what} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES
