from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING

from django.db import models
from django.utils import timezone

from trading.models.amounts import AMOUNT

if TYPE_CHECKING:
    from analytics.replay_runs import Outcome


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
        # The dashboard and sizing read "the newest snapshot of this account" on every request.
        indexes = [models.Index(fields=["account", "-taken_at"], name="snapshot_account_recent")]

    def __str__(self) -> str:
        return f"{self.exchange} {self.taken_at:%Y-%m-%d %H:%M:%S} equity {self.equity} {self.asset}"


class LedgerEntry(models.Model):
    """One line of the exchange's own ledger of money: realized P&L, commission, funding fee… in the
    account's asset. The source of truth for analytics (Binance `/fapi/v1/income` keeps three months;
    this table keeps them for good). Imported idempotently: unique by account, tranId and kind."""

    class Kind(models.TextChoices):
        REALIZED_PNL = "REALIZED_PNL", "Realized P&L"
        COMMISSION = "COMMISSION", "Commission"
        FUNDING_FEE = "FUNDING_FEE", "Funding fee"
        OTHER = "OTHER", "Other"

    account = models.CharField(max_length=64, db_index=True, help_text="The exchange account (see Exchange.account_id).")
    tran_id = models.CharField(max_length=64, help_text="The exchange's transaction id (tranId).")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    symbol = models.CharField(max_length=30, blank=True, db_index=True)
    amount = models.DecimalField(**AMOUNT, help_text="Signed, in `asset`: positive is money in.")
    asset = models.CharField(max_length=10, default="USDT")
    time = models.DateTimeField(db_index=True)
    trade_id = models.CharField(max_length=64, blank=True)
    order = models.ForeignKey("trading.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="ledger")
    strategy = models.CharField(max_length=100, blank=True, db_index=True, help_text="Attributed through the order, if ours.")
    info = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-time", "-id"]
        constraints = [models.UniqueConstraint(fields=["account", "tran_id", "kind"], name="ledger_entry_once")]
        indexes = [models.Index(fields=["account", "time"], name="ledger_account_time")]

    def __str__(self) -> str:
        return f"{self.time:%Y-%m-%d %H:%M:%S} {self.kind} {self.symbol} {self.amount} {self.asset}"


class Kline(models.Model):
    """One minute of a symbol's market on the exchange (a 1-minute kline), imported once and kept:
    what-if replays of recorded alerts trigger stops, ladders and trailing stops where the market
    went (analytics/klines.py, `manage.py import_klines`). Prices in the quote asset; `volume` in
    the base asset."""

    symbol = models.CharField(max_length=30)
    open_time = models.DateTimeField(help_text="The minute's start, UTC.")
    open = models.DecimalField(**AMOUNT)
    high = models.DecimalField(**AMOUNT)
    low = models.DecimalField(**AMOUNT)
    close = models.DecimalField(**AMOUNT)
    volume = models.DecimalField(**AMOUNT)

    class Meta:
        ordering = ["symbol", "open_time"]
        # Its unique index on (symbol, open_time) is also the index every reader uses: a symbol's minutes
        # in a period.
        constraints = [models.UniqueConstraint(fields=["symbol", "open_time"], name="kline_once")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.open_time:%Y-%m-%d %H:%M} O {self.open} H {self.high} L {self.low} C {self.close}"


class ReplayRun(models.Model):
    """One what-if replay of a strategy's recorded alerts (issue #21; analytics/replay_runs.py): the period,
    the settings changed, and, once the worker has run it, the result beside what really happened. The
    result is written once, at the end, and kept until the run is deleted."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    strategy = models.CharField(max_length=100, db_index=True)
    start = models.DateTimeField(help_text="The period's start (inclusive), UTC.")
    end = models.DateTimeField(help_text="The period's end (exclusive), UTC.")
    overrides = models.JSONField(default=dict, blank=True,
                                 help_text="{preference type: value}, as POST /preferences/{type} takes them.")
    slippage_bps = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal(2),
                                       help_text="Every simulated fill moved this far against the trader.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED, db_index=True)
    progress = models.PositiveSmallIntegerField(default=0, help_text="0 to 100.")
    stage = models.CharField(max_length=200, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="Written once, when the run is done.")
    error = models.TextField(blank=True)
    created_by = models.CharField(max_length=150, blank=True, help_text="The user who asked for it (username).")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"replay {self.pk} of {self.strategy} {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M}: {self.status}"

    @property
    def active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @cached_property
    def outcome(self) -> "Outcome | None":
        """The stored result, read back (None until done)."""
        from analytics.replay_runs import run_outcome

        return run_outcome(self)
