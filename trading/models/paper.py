"""State of the built-in paper exchange. It lives in the database so it survives restarts."""

from decimal import Decimal

from django.db import models
from django.utils import timezone

from trading.models.amounts import AMOUNT


class PaperAccount(models.Model):
    asset = models.CharField(max_length=10, unique=True, default="USDT")
    wallet_balance = models.DecimalField(**AMOUNT)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Paper {self.wallet_balance} {self.asset}"


class PaperPosition(models.Model):
    symbol = models.CharField(max_length=30)
    position_side = models.CharField(max_length=5, default="BOTH")
    amount = models.DecimalField(**AMOUNT, default=Decimal("0"))
    entry_price = models.DecimalField(**AMOUNT, default=Decimal("0"))
    leverage = models.PositiveSmallIntegerField(default=20)
    margin_type = models.CharField(max_length=8, default="cross")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["symbol", "position_side"], name="paper_position_one_per_side")]

    def __str__(self) -> str:
        return f"Paper {self.symbol} {self.amount}"


class PaperOrder(models.Model):
    client_order_id = models.CharField(max_length=36, unique=True)
    symbol = models.CharField(max_length=30)
    side = models.CharField(max_length=4)
    position_side = models.CharField(max_length=5, default="BOTH")
    quantity = models.DecimalField(**AMOUNT)
    reduce_only = models.BooleanField(default=False)
    price = models.DecimalField(**AMOUNT, null=True, blank=True)  # a limit order's; empty: market
    time_in_force = models.CharField(max_length=3, blank=True, db_default="")  # GTC, or GTX (post-only)
    status = models.CharField(max_length=16, default="FILLED")
    avg_price = models.DecimalField(**AMOUNT)
    executed_qty = models.DecimalField(**AMOUNT)
    commission = models.DecimalField(**AMOUNT, default=Decimal("0"))
    realized_pnl = models.DecimalField(**AMOUNT, default=Decimal("0"))
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Paper order {self.client_order_id}"


class PaperPrice(models.Model):
    """The last price seen for a symbol (from signals): the paper exchange's 'market'."""

    symbol = models.CharField(max_length=30, unique=True)
    price = models.DecimalField(**AMOUNT)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.symbol} {self.price}"


class PaperProtective(models.Model):
    """A stop-loss or take-profit resting on the paper exchange; it closes the position when a price
    the paper market sees crosses its trigger."""

    client_id = models.CharField(max_length=36, unique=True)
    symbol = models.CharField(max_length=30, db_index=True)
    position_side = models.CharField(max_length=5, default="BOTH")
    kind = models.CharField(max_length=12)
    side = models.CharField(max_length=4)
    trigger = models.DecimalField(**AMOUNT)  # a trailing stop's activation price; 0: active at once
    quantity = models.DecimalField(**AMOUNT, null=True, blank=True)  # empty: the whole position
    callback_rate = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    extreme = models.DecimalField(**AMOUNT, null=True, blank=True)  # a trailing stop's best price once active
    status = models.CharField(max_length=10, default="open")  # open, triggered, cancelled
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Paper {self.kind} {self.symbol} @ {self.trigger}"
