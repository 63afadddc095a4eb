from typing import Final, TypedDict

from django.db import models


class AmountSize(TypedDict):
    max_digits: int
    decimal_places: int


AMOUNT: Final[AmountSize] = {"max_digits": 28, "decimal_places": 10}


class AccountSnapshot(models.Model):
    """The futures account's balances at one moment, taken periodically by the worker."""

    taken_at = models.DateTimeField(db_index=True)
    exchange = models.CharField(max_length=10)
    account = models.CharField(max_length=64, default="", db_index=True, help_text="The exchange account it was read from.")
    asset = models.CharField(max_length=10, default="USDT")
    wallet_balance = models.DecimalField(**AMOUNT)
    available_balance = models.DecimalField(**AMOUNT)
    equity = models.DecimalField(**AMOUNT, help_text="Wallet balance plus unrealized P&L (margin balance).")
    unrealized_pnl = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["-taken_at"]
        get_latest_by = "taken_at"

    def __str__(self) -> str:
        return f"{self.exchange} {self.taken_at:%Y-%m-%d %H:%M:%S} equity {self.equity} {self.asset}"
