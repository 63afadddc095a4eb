from django.db import models

from trading.models.amounts import AMOUNT


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
