"""The exchange's own ledger of money, imported: the source of truth for analytics.

Binance keeps income (`/fapi/v1/income`: realized P&L, commissions, funding fees…) for three months;
`LedgerEntry` keeps it for good. The import is idempotent and paged: it resumes a little before the
newest line it already holds (lines can be booked late), and a line already held is skipped by its
(account, tranId, kind), the key Binance documents as unique.

The ledger follows the fills within seconds, so the analytics page's net P&L agrees with its trades:
- the paper exchange writes a fill's lines with the fill, in its transaction (`fill_lines_write`);
  the import reads the same lines later and skips them;
- on Binance, each fill the user data stream reports brings an import forward (analytics/follow.py):
  about FOLLOW_DELAY after the fill, as Binance books the income a moment after the trade.
Every complete import is stamped (a WorkerHeartbeat row per account): the page says "ledger as of"
that time, or the newest line's if later (`ledger_as_of`).

Attribution — whose money a line is:
- A fill belongs to the Order whose `exchange_order_id` is the fill's order id, and so to the
  strategy of that order's Execution (for a stop-loss or take-profit that filled at the exchange, of
  the Execution that placed it). A realized P&L or commission line names its trade (`tradeId`);
  the trade is mapped to its order by reading the fills of our orders filled around the line's time
  (`get_fills`, which also records the exchange's commission and realized P&L on the order).
- Where two strategies trade one symbol, each fill still belongs to exactly one order, so to one
  strategy: in one-way mode the exchange nets both into one position, and a close's realized P&L
  (computed by the exchange from the netted entry price) goes to the strategy whose order closed.
- A funding fee has no trade. It goes to the strategy whose position it was when exactly one strategy
  had traded the symbol on this exchange by the fee's time; otherwise it stays unattributed.
- Lines of trades that are not ours (manual trades, liquidations) stay unattributed; they still
  count in the account's and the symbol's totals.
"""

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db.models import Exists, Max, Min, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from analytics.models import LedgerEntry
from trading.exchange import Exchange, ExchangeError, Fill, IncomeRecord, PermanentError, get_exchange
from trading.lanes import HOST
from trading.models import Order, WorkerHeartbeat

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PAGE_LIMIT = 1000  # Binance's maximum per income request
MAX_PAGES = 20  # per run: 600 of the 2,400 weight a minute allows (income costs 30 a call)
OVERLAP = timedelta(minutes=5)  # re-read before the newest line held: a line can be booked late
ATTRIBUTION_WINDOW = timedelta(days=90)  # unattributed lines are retried this long (Binance's income horizon)
ORDER_LEAD = timedelta(hours=1)  # an Order row is written before its fill, within the signal's deadline
CLOCK_SLACK = timedelta(minutes=1)  # line times are the exchange's clock, Order rows ours: they may disagree
MAX_FILL_READS = 100  # per run: userTrades costs 5 a call
FINAL = (Order.Status.FILLED, Order.Status.PARTIALLY_FILLED, Order.Status.CANCELED, Order.Status.EXPIRED)
OWNERS = ("execution", "protective__execution")  # what names an order's strategy (_strategy_of)


def ledger_import(exchange: Exchange, *, limit: int = PAGE_LIMIT, max_pages: int = MAX_PAGES) -> int:
    """Import the ledger lines not yet held, and attribute what can be; the number of new lines."""
    account = exchange.account_id
    read_started = timezone.now()
    records, complete = _income_read(exchange, start_ms=_resume_ms(account), limit=limit, max_pages=max_pages)
    held: set[tuple[str, str]] = set()
    if records:
        # A line held has the time it has now: the time range finds them all (by the index on account, time).
        held = set(LedgerEntry.objects.filter(account=account, time__gte=records[0].time, time__lte=records[-1].time)
                   .values_list("tran_id", "kind"))
    new = [_entry(account, r) for r in records if (r.tran_id, str(r.kind)) not in held]
    # ignore_conflicts: another run importing the same lines at once is no error.
    LedgerEntry.objects.bulk_create(new, ignore_conflicts=True, batch_size=500)
    since = min([e.time for e in new] + [timezone.now() - ATTRIBUTION_WINDOW])
    ledger_attribute(exchange, since=since)
    if complete:  # everything booked before the read began is held (what was cut short is not)
        WorkerHeartbeat.objects.update_or_create(name=_import_stamp(account), defaults={
            "beat_at": read_started, "host": HOST, "detail": f"{len(new)} line(s) imported"})
    return len(new)


def ledger_as_of(account: str) -> datetime | None:
    """How current the account's ledger is: its last complete import, or its newest line when that is
    later (the paper exchange writes its lines with its fills); None before either."""
    newest = Subquery(LedgerEntry.objects.filter(account=account).order_by("-time").values("time")[:1])
    imported = Max("beat_at")  # aggregated: one row whether the stamp exists or not
    # One query (the analytics page asks on every view); Greatest is NULL if either is, hence Coalesce.
    return WorkerHeartbeat.objects.filter(name=_import_stamp(account)).aggregate(
        as_of=Greatest(Coalesce(imported, newest), Coalesce(newest, imported)))["as_of"]


def _import_stamp(account: str) -> str:
    return f"ledger:{account}"[:50]


def _newest(account: str) -> datetime | None:
    return LedgerEntry.objects.filter(account=account).order_by("-time").values_list("time", flat=True).first()


def _resume_ms(account: str) -> int | None:
    newest = _newest(account)
    return None if newest is None else _ms(newest - OVERLAP)


def _income_read(
    exchange: Exchange, *, start_ms: int | None, limit: int, max_pages: int
) -> tuple[list[IncomeRecord], bool]:
    """Page through the income from `start_ms`, oldest first, until a short page; the lines, and
    whether the read reached the end (False: cut at `max_pages`)."""
    found: dict[tuple[str, str], IncomeRecord] = {}
    for _ in range(max_pages):
        page = exchange.get_income(start_ms=start_ms, limit=limit)
        fresh = [r for r in page if (r.tran_id, str(r.kind)) not in found]
        found.update(((r.tran_id, str(r.kind)), r) for r in page)
        if len(page) < limit:
            break
        last_ms = max(_ms(r.time) for r in page)
        # The next page starts *at* the last line's millisecond, not after it: the lines of one fill
        # (and of a market order's several trades) share it, and a page may end between them. Only
        # a page that brought nothing new moves past it (more than a page of lines in one millisecond
        # cannot be read whole by time alone).
        start_ms = last_ms if fresh and last_ms != start_ms else last_ms + 1
    else:
        logger.info("ledger: %s pages read; the rest waits for the next run", max_pages)
        return sorted(found.values(), key=lambda r: r.time), False
    return sorted(found.values(), key=lambda r: r.time), True


def fill_lines_write(account: str, records: Iterable[IncomeRecord], *, client_order_id: str) -> None:
    """The lines of a fill just made, written with it (the paper exchange's, whose ledger is its own
    fills): call it in the fill's transaction. Attributed at once to our order of that client order id;
    a fill with none yet (a triggered protective order, recorded by the user stream) is attributed by
    the next import. The import reads the same lines again and skips them (same tranId)."""
    order = Order.objects.select_related(*OWNERS).filter(client_order_id=client_order_id).first()
    entries = [_entry(account, record) for record in records]
    for entry in entries:
        entry.order, entry.strategy = order, _strategy_of(order)
    LedgerEntry.objects.bulk_create(entries, ignore_conflicts=True)


def _entry(account: str, record: IncomeRecord) -> LedgerEntry:
    return LedgerEntry(
        account=account, tran_id=record.tran_id, kind=str(record.kind), symbol=record.symbol, amount=record.amount,
        asset=record.asset, time=record.time, trade_id=record.trade_id, info=record.info[:255],
    )


# --- attribution -------------------------------------------------------------------------------------
def ledger_attribute(exchange: Exchange, *, since: datetime) -> int:
    """Attribute the account's unattributed lines since `since` (see the module's rule); how many."""
    pending = LedgerEntry.objects.filter(account=exchange.account_id, order__isnull=True, strategy="", time__gte=since)
    trade_lines = list(pending.exclude(trade_id="").exclude(kind=LedgerEntry.Kind.FUNDING_FEE))
    funding_lines = list(pending.filter(kind=LedgerEntry.Kind.FUNDING_FEE).exclude(symbol=""))
    return _trades_attribute(exchange, trade_lines) + _funding_attribute(exchange.name, funding_lines)


def _trades_attribute(exchange: Exchange, lines: list[LedgerEntry]) -> int:
    # Binance numbers trades per symbol: a trade is known by its symbol and id together.
    owners = _known_owners(exchange.account_id, {line.trade_id for line in lines})
    unknown = [line for line in lines if (line.symbol, line.trade_id) not in owners]
    for order in _orders_to_read(exchange.name, unknown):
        try:
            fills = order_fills_record(order, exchange=exchange)
        except PermanentError as error:
            logger.warning("ledger: the fills of order %s could not be read: %s", order.pk, error.reason)
            continue
        except ExchangeError as error:  # rate limited, unreachable: the next run reads the rest
            logger.warning("ledger: reading fills stopped: %s", error.reason)
            break
        owners.update(((fill.symbol, fill.trade_id), order) for fill in fills)
    by_order: dict[Order, list[int]] = defaultdict(list)
    for line in lines:
        if (line.symbol, line.trade_id) in owners:
            by_order[owners[line.symbol, line.trade_id]].append(line.pk)
    for order, pks in by_order.items():
        LedgerEntry.objects.filter(pk__in=pks).update(order=order, strategy=_strategy_of(order))
    return sum(len(pks) for pks in by_order.values())


def _strategy_of(order: Order | None) -> str:
    """The strategy whose order it is: its execution's, or for a stop-loss or take-profit that filled,
    the execution's that placed it (as trading/risk.py counts them)."""
    if order is None:
        return ""
    execution = order.execution or (order.protective.execution if order.protective else None)
    return execution.strategy if execution is not None else ""


def _ours_on(exchange_name: str) -> Q:
    return Q(execution__exchange=exchange_name) | Q(protective__execution__exchange=exchange_name)


def _known_owners(account: str, trade_ids: set[str]) -> dict[tuple[str, str], Order]:
    """Trades already mapped by another line of theirs (the REALIZED_PNL and COMMISSION of one trade)."""
    known = (LedgerEntry.objects.filter(account=account, trade_id__in=trade_ids, order__isnull=False)
             .select_related(*(f"order__{owner}" for owner in OWNERS)))
    return {(entry.symbol, entry.trade_id): entry.order for entry in known if entry.order is not None}


def _orders_to_read(exchange_name: str, lines: list[LedgerEntry]) -> list[Order]:
    """Our finished orders that could have made these lines and have none attributed yet, oldest first.

    A market order's trades are booked together, so an order with a line attributed has had all its
    trades mapped; an import landing between the bookings of one order's trades would leave the later
    ones unattributed (Binance books them in the same millisecond: not seen in practice)."""
    windows: dict[str, list[datetime]] = defaultdict(list)
    for line in lines:
        windows[line.symbol].append(line.time)
    orders: list[Order] = []
    for symbol, times in windows.items():
        orders += (
            Order.objects.filter(
                _ours_on(exchange_name), symbol=symbol, status__in=FINAL, executed_qty__gt=0,
                created_at__gte=min(times) - ORDER_LEAD, created_at__lte=max(times) + CLOCK_SLACK,
            )
            .exclude(exchange_order_id="")
            .exclude(Exists(LedgerEntry.objects.filter(order=OuterRef("pk"))))
            .select_related(*OWNERS)
            .order_by("created_at")[:MAX_FILL_READS]
        )
    return sorted(orders, key=lambda order: order.created_at)[:MAX_FILL_READS]


def _funding_attribute(exchange_name: str, lines: list[LedgerEntry]) -> int:
    attributed = 0
    for symbol in {line.symbol for line in lines}:
        # When each strategy first traded the symbol here: a fee at time t is a sole strategy's if
        # exactly one had traded it by then.
        firsts = list(Order.objects.filter(execution__exchange=exchange_name, symbol=symbol, executed_qty__gt=0)
                      .values("execution__strategy").annotate(first=Min("created_at")))
        for line in lines:
            if line.symbol != symbol:
                continue
            traders = [row["execution__strategy"] for row in firsts if row["first"] <= line.time]
            if len(traders) == 1:
                attributed += LedgerEntry.objects.filter(pk=line.pk).update(strategy=traders[0])
    return attributed


# --- an order's fills --------------------------------------------------------------------------------
def order_fills_record(order: Order, *, exchange: Exchange | None = None) -> list[Fill]:
    """Read the order's fills and record the exchange's commission and realized P&L on it (not our
    estimate). Call it on a finished order: the columns are set from every fill at once."""
    if not order.exchange_order_id:
        return []
    fills = (exchange or get_exchange()).get_fills(order.symbol, order_id=order.exchange_order_id)
    if not fills:
        return fills
    # Commission is normally one asset; should BNB run out mid-order, the most used one is recorded
    # (the ledger keeps every asset's lines).
    asset = Counter(fill.commission_asset for fill in fills).most_common(1)[0][0]
    order.commission = _sum(fill.commission for fill in fills if fill.commission_asset == asset)
    order.commission_asset = asset
    order.realized_pnl = _sum(fill.realized_pnl for fill in fills)
    # Only these columns: the worker may be recording the same order's answer at this moment.
    Order.objects.filter(pk=order.pk).update(
        commission=order.commission, commission_asset=order.commission_asset, realized_pnl=order.realized_pnl
    )
    return fills


def _sum(values: Iterable[Decimal]) -> Decimal:
    return sum(values, Decimal(0))


def _ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)
