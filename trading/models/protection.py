from django.db import models
from django.utils import timezone

from trading.models.amounts import AMOUNT


class ProtectiveOrder(models.Model):
    """A stop-loss, take-profit or trailing stop resting on the exchange for a position (Binance: a
    conditional algo order, with closePosition but for the trailing stop, which carries the position's
    quantity), placed after an entry fills and cancelled when it no longer fits."""

    class Kind(models.TextChoices):
        STOP_LOSS = "stop_loss", "Stop-loss"
        TAKE_PROFIT = "take_profit", "Take-profit"
        TRAILING_STOP = "trailing", "Trailing stop"

    class Status(models.TextChoices):
        PLACING = "placing", "Placing"
        ACTIVE = "active", "Active"
        CANCELLED = "cancelled", "Cancelled"
        REJECTED = "rejected", "Rejected"
        TRIGGERED = "triggered", "Triggered: the exchange closed the position"
        GONE = "gone", "No longer at the exchange (triggered or cancelled there)"

    execution = models.ForeignKey("trading.Execution", on_delete=models.PROTECT, related_name="protective_orders")
    symbol = models.CharField(max_length=30, db_index=True)
    position_side = models.CharField(max_length=5, default="BOTH")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    side = models.CharField(max_length=4, help_text="The closing side: SELL protects a long.")
    trigger_price = models.DecimalField(**AMOUNT, help_text="A trailing stop's activation price; 0: active at once.")
    quantity = models.DecimalField(**AMOUNT, null=True, blank=True,
                                   help_text="The quantity it closes; empty: the whole position (closePosition).")
    level = models.PositiveSmallIntegerField(default=0, db_default=0,
                                             help_text="A take-profit ladder's level, from 1 (a stop-loss: the level whose "
                                             "fill moved it to breakeven); 0: none.")
    callback_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True,
                                        help_text="A trailing stop's callback, % from the best price since activation.")
    client_id = models.CharField(max_length=36, unique=True)
    exchange_id = models.CharField(max_length=40, blank=True)
    order_id = models.CharField(max_length=40, blank=True, db_default="",
                                help_text="The exchange order it became when triggered.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PLACING, db_index=True)
    error_message = models.TextField(blank=True)
    cancel_requested_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When we asked the exchange to cancel it: a cancel it reports from then on is ours, not someone else's.")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        if self.kind == self.Kind.TRAILING_STOP:
            rate = f"{self.callback_rate.normalize():f} %" if self.callback_rate is not None else "?"
            where = f"callback {rate}" + (f" from {self.trigger_price.normalize():f}" if self.trigger_price else "")
        else:
            where = f"@ {self.trigger_price.normalize():f}"
        return f"{self.get_kind_display()} {self.symbol} {where} ({self.status})"
