from datetime import datetime
from decimal import Decimal

from django.db import models
from django.utils import timezone

from trading.models.amounts import AMOUNT


class Execution(models.Model):
    """What the worker decided and did for one queued signal, with a timestamp for every stage."""

    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FILLED = "filled", "Filled"
        PARTIAL = "partial", "Partly done"
        NOTHING = "nothing", "Nothing to do"
        SKIPPED = "skipped", "Skipped"
        REJECTED = "rejected", "Rejected by exchange"
        FAILED = "failed", "Failed"

    # How a reason that is a warning begins: the execution did no harm, but something a trader must know
    # happened (a position closed outside this system before the alert's close reached it).
    WARNING = "warning: "

    signal = models.OneToOneField("trading.Signal", on_delete=models.PROTECT, related_name="execution")
    strategy = models.CharField(max_length=100, db_index=True)
    symbol = models.CharField(max_length=30, db_index=True)
    exchange = models.CharField(max_length=10)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING, db_index=True)
    decision = models.JSONField(default=dict, blank=True, help_text="The plan: legs, sizing inputs and why.")
    reason = models.TextField(blank=True, help_text="In plain words: what happened and why.")
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.TextField(blank=True)
    protection_alarm = models.TextField(
        blank=True, help_text="The position was left without the stop-loss / take-profit its strategy asks for: why."
    )
    alert_mismatch = models.TextField(
        blank=True, help_text="The alert's stated previous position disagreed with ours: an alert may have been missed."
    )
    attempts = models.PositiveSmallIntegerField(default=0)

    signal_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    fill_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    # Wide enough for any fill against any alert price; the recorder still refuses absurd values.
    slippage_bps = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)

    received_at = models.DateTimeField()
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["-received_at"], name="execution_recent")]

    def __str__(self) -> str:
        return f"Execution #{self.pk} {self.symbol} {self.status}"

    @staticmethod
    def _ms(start: datetime | None, end: datetime | None) -> Decimal | None:
        if start is None or end is None:
            return None
        return Decimal((end - start).total_seconds() * 1000).quantize(Decimal("0.1"))

    @property
    def warning(self) -> bool:
        return self.reason.startswith(self.WARNING)

    @property
    def latency_ms(self) -> Decimal | None:
        """Receipt of the webhook to the exchange's acknowledgement of the (first) order."""
        return self._ms(self.received_at, self.acknowledged_at)

    @property
    def stage_ms(self) -> dict[str, Decimal | None]:
        return {
            "queue": self._ms(self.received_at, self.queued_at),
            "dispatch": self._ms(self.queued_at, self.started_at),
            "prepare": self._ms(self.started_at, self.sent_at),
            "exchange": self._ms(self.sent_at, self.acknowledged_at),
            "total": self._ms(self.received_at, self.finished_at),
        }


class Order(models.Model):
    """One order leg sent (or about to be sent) to the exchange, keyed by our client order id."""

    class Side(models.TextChoices):
        BUY = "BUY", "Buy"
        SELL = "SELL", "Sell"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (recorded, not yet sent)"
        SENT = "sent", "Sent (awaiting answer)"
        UNKNOWN = "unknown", "Outcome unknown"
        NEW = "NEW", "New"
        PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
        FILLED = "FILLED", "Filled"
        CANCELED = "CANCELED", "Canceled"
        EXPIRED = "EXPIRED", "Expired"
        REJECTED = "REJECTED", "Rejected"
        NOT_FOUND = "not_found", "Never reached the exchange"

    class Source(models.TextChoices):
        SIGNAL = "signal", "A signal's order (sent by us)"
        STOP_LOSS = "stop_loss", "Stop-loss triggered at the exchange"
        TAKE_PROFIT = "take_profit", "Take-profit triggered at the exchange"
        TRAILING_STOP = "trailing", "Trailing stop triggered at the exchange"
        LIQUIDATION = "liquidation", "Liquidation by the exchange"
        ADL = "adl", "Auto-deleveraging by the exchange"
        SETTLEMENT = "settlement", "Settlement (delisting or delivery)"
        MANUAL = "manual", "Placed outside Alsa Trade (by hand)"

    execution = models.ForeignKey(Execution, on_delete=models.PROTECT, related_name="orders", null=True, blank=True,
                                  help_text="The execution that sent it; empty for an order the exchange reported.")
    # db_default: code of the release before this column still inserts orders during a rolling upgrade.
    source = models.CharField(max_length=12, choices=Source.choices, default=Source.SIGNAL, db_default=Source.SIGNAL,
                              db_index=True)
    protective = models.ForeignKey("trading.ProtectiveOrder", on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="fills", help_text="The stop-loss or take-profit this order filled.")
    leg = models.PositiveSmallIntegerField(default=0, db_default=0)
    purpose = models.CharField(max_length=10, help_text="open, add, close or reverse")
    client_order_id = models.CharField(max_length=36, unique=True)
    exchange_order_id = models.CharField(max_length=40, blank=True)
    symbol = models.CharField(max_length=30, db_index=True)
    side = models.CharField(max_length=4, choices=Side.choices)
    order_type = models.CharField(max_length=20, default="MARKET")
    price = models.DecimalField(**AMOUNT, null=True, blank=True, help_text="A limit order's price; empty for a market order.")
    time_in_force = models.CharField(max_length=3, blank=True, db_default="",
                                     help_text="A limit order's: GTC, or GTX (post-only: refused rather than take).")
    position_side = models.CharField(max_length=5, default="BOTH")
    quantity = models.DecimalField(**AMOUNT)
    reduce_only = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    avg_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    executed_qty = models.DecimalField(**AMOUNT, default=Decimal("0"))
    commission = models.DecimalField(**AMOUNT, default=Decimal("0"))
    commission_asset = models.CharField(max_length=10, blank=True)
    realized_pnl = models.DecimalField(**AMOUNT, default=Decimal("0"))
    raw_response = models.JSONField(default=dict, blank=True)
    error_code = models.CharField(max_length=20, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sent_stamp = models.BigIntegerField(
        null=True, blank=True, help_text="The timestamp (exchange clock, ms) the last request for this order carried."
    )
    applied_qty = models.DecimalField(
        **AMOUNT, default=Decimal("0"), help_text="How much of executed_qty is folded into the Position mirror."
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "leg"], name="order_one_per_leg"),
            # An order the exchange reports is recorded once, however often it is reported.
            models.UniqueConstraint(fields=["symbol", "exchange_order_id"], name="order_once_per_exchange_id",
                                    condition=~models.Q(exchange_order_id="")),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity.normalize():f} {self.symbol} ({self.status})"

    SHORT_SOURCES = {"signal": "Signal", "stop_loss": "Stop-loss", "take_profit": "Take-profit",
                     "liquidation": "Liquidation", "adl": "Auto-deleveraged", "settlement": "Settlement",
                     "manual": "By hand"}

    @property
    def source_short(self) -> str:
        """The source in a word or two, for a badge."""
        return self.SHORT_SOURCES.get(self.source, self.source)

    @property
    def notional(self) -> Decimal | None:
        return None if self.avg_price is None else self.avg_price * self.executed_qty


class Position(models.Model):
    """Our mirror of one exchange position: updated from fills, reconciled from the exchange."""

    symbol = models.CharField(max_length=30)
    position_side = models.CharField(max_length=5, default="BOTH", help_text="BOTH in one-way mode; LONG/SHORT in hedge mode.")
    amount = models.DecimalField(**AMOUNT, default=Decimal("0"), help_text="Signed: positive long, negative short.")
    entry_price = models.DecimalField(**AMOUNT, default=Decimal("0"))
    leverage = models.PositiveSmallIntegerField(null=True, blank=True)
    margin_type = models.CharField(max_length=8, blank=True)
    mark_price = models.DecimalField(**AMOUNT, null=True, blank=True)
    unrealized_pnl = models.DecimalField(**AMOUNT, default=Decimal("0"))
    realized_pnl = models.DecimalField(**AMOUNT, default=Decimal("0"), help_text="Realized by our orders on this symbol.")
    reconciled_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the amount was last taken from the exchange: a fill reported later but made before is in it.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol", "position_side"]
        constraints = [models.UniqueConstraint(fields=["symbol", "position_side"], name="position_one_per_side")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.amount.normalize():+f}" if self.amount else f"{self.symbol} flat"

    @property
    def side(self) -> str:
        return "long" if self.amount > 0 else "short" if self.amount < 0 else "flat"
