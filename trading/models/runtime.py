"""Coordination state shared by worker processes on any number of hosts."""

from django.db import models
from simple_history.models import HistoricalRecords


class SymbolLane(models.Model):
    """One row per symbol: whoever holds the lease executes that symbol's signals, in order."""

    symbol = models.CharField(max_length=30, unique=True)
    holder = models.CharField(max_length=100, blank=True, help_text="host:pid:token of the worker holding it.")
    lease_until = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.symbol} lane ({self.holder or 'free'})"


class SymbolSetting(models.Model):
    """Leverage and margin type known to be set on an account, so they are sent only on change."""

    account = models.CharField(max_length=64, help_text="The exchange account (testnet and production differ).")
    symbol = models.CharField(max_length=30)
    leverage = models.PositiveSmallIntegerField(null=True, blank=True)
    margin_type = models.CharField(max_length=8, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "symbol"], name="symbol_setting_once")]

    def __str__(self) -> str:
        return f"{self.account} {self.symbol} {self.leverage}x {self.margin_type}"


class OrderBudget(models.Model):
    """One exchange account's order budget, shared by every sender when there is no Redis
    (trading/order_budget.py): when its orders were granted within the longest window, and the
    request weight the exchange last said was used. Times are epoch seconds on the database's clock."""

    account = models.CharField(max_length=64, unique=True)
    grants = models.JSONField(default=list, blank=True, help_text="Moments orders were granted, oldest first.")
    weight = models.PositiveIntegerField(default=0, help_text="Request weight used in the exchange's current minute.")
    weight_until = models.FloatField(default=0.0, help_text="When that minute ends.")

    def __str__(self) -> str:
        return f"{self.account} order budget"


class WorkerHeartbeat(models.Model):
    """Written by the worker's periodic job; /health reads it to tell whether a worker is alive."""

    name = models.CharField(max_length=50, unique=True)
    host = models.CharField(max_length=255, blank=True)
    beat_at = models.DateTimeField()
    detail = models.CharField(max_length=255, blank=True, db_default="", help_text="What the process last said of itself.")

    def __str__(self) -> str:
        return f"{self.name} @ {self.beat_at:%H:%M:%S}"


class TradingHalt(models.Model):
    """The kill switch, one row: while halted, opening legs are refused and closing legs still go
    out. It lives in the database, so it survives restarts and binds every worker."""

    halted = models.BooleanField(default=False)
    reason = models.CharField(max_length=255, blank=True)
    changed_by = models.CharField(max_length=150, blank=True)
    changed_at = models.DateTimeField(auto_now=True)
    changed_from = models.GenericIPAddressField(null=True, blank=True, help_text="The client address of the last change.")
    # Every change kept: who, when, from where and why (trading/halt.py); the admin's "History" lists them.
    history = HistoricalRecords()

    class Meta:
        verbose_name = "trading halt (kill switch)"

    def __str__(self) -> str:
        return "halted" if self.halted else "trading"

    @classmethod
    def current(cls) -> "TradingHalt":
        """The one row; read on every opening signal, so a missing row is not written here (saving
        the returned default creates it)."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)

    @classmethod
    def create_if_missing(cls) -> None:
        """Make the one row if there is none, without a save: its history then starts with its first
        real change, and two first changes at once do not both try to insert it."""
        TradingHalt.objects.bulk_create([TradingHalt(pk=1)], ignore_conflicts=True)
