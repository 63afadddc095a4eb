"""The built-in paper exchange: Binance's rules and answers, with the account kept in the database.

It fills market orders at once at the order's price hint (the signal's price) or else the last
price seen for the symbol, charges a taker fee, and keeps wallet balance, positions, entry prices
and realized P&L in PaperAccount/PaperPosition/PaperOrder rows, so it survives restarts and is
shared by every worker process. It refuses what Binance would refuse, with Binance's codes.
In hedge mode (PAPER_HEDGE_MODE) it keeps a LONG and a SHORT position per symbol, as Binance does.
"""

import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from threading import Event

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from analytics.ledger import fill_lines_write
from trading.exchange.base import (
    Balance,
    CheckState,
    Fill,
    FillCause,
    IncomeKind,
    IncomeRecord,
    Kline,
    NothingToReduce,
    OrderRequest,
    OrderResult,
    OrderState,
    OrderUpdate,
    PermanentError,
    PositionInfo,
    PrecisionRejected,
    ProtectiveRequest,
    ProtectiveState,
    ProtectiveStatus,
    ProtectiveUpdate,
    RateLimits,
    RateUsage,
    SetupLine,
    StreamAlive,
    StreamConnected,
    SymbolRules,
    SymbolSettings,
    UnknownSymbol,
    UserEvent,
    WouldTake,
)
from trading.exchange.binance import REQUEST_WEIGHT_LIMIT, USED_WEIGHT_HEADER, public_klines
from trading.exchange.price_feed import TIMEOUT as FEED_TIMEOUT, PriceFeed
from trading.exchange.rules import bundled_rules, bundled_rules_for
from trading.models import PaperAccount, PaperOrder, PaperPosition, PaperPrice, PaperProtective
from trading.pnl import position_after

ASSET = "USDT"
DEFAULT_LEVERAGE = 20  # Binance's default for a symbol never configured
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RESTING = ("NEW", "PARTIALLY_FILLED")  # a limit order still on the paper book
NO_HISTORY = ("the paper exchange keeps no price history: set PAPER_PRICE_FEED=https://fapi.binance.com to import "
              "klines")


class PaperExchange:
    name = "paper"
    account_id = "paper"

    def __init__(self, *, starting_balance: Decimal, taker_fee: Decimal, hedge_mode: bool = False) -> None:
        self.starting_balance = starting_balance
        self.taker_fee = taker_fee
        self.hedge_mode = hedge_mode
        self._feed_session: requests.Session | None = None  # klines from PAPER_PRICE_FEED, made on first use
        self._feed_weight: tuple[int, float] | None = None  # (the feed's X-MBX-USED-WEIGHT-1M, monotonic time read)

    # --- orders ---------------------------------------------------------------------------------
    def order_stamp(self) -> int:
        return self.server_time_ms()

    def place_market_order(self, order: OrderRequest, *, stamp: int) -> OrderResult:
        return self._place(order)

    def place_limit_order(self, order: OrderRequest, *, stamp: int) -> OrderResult:
        """Marketable at the paper market's price: filled there (taker), or refused if post-only.
        Otherwise it rests, and fills whole at its price when the market crosses it (observe_price)."""
        assert order.limit_price is not None
        rules = self.get_symbol_rules(order.symbol)
        if rules.round_price(order.limit_price, order.side) != order.limit_price:
            raise PrecisionRejected(f"price {order.limit_price} does not fit {order.symbol}'s tick of {rules.tick_size}",
                                    code="-4014")
        return self._place(order)

    def _place(self, order: OrderRequest) -> OrderResult:
        """A market order, or a limit order (`order.limit_price`): filled at the market's price, or, a
        limit the market has not reached, left resting at its own."""
        rules = self.get_symbol_rules(order.symbol)
        if order.price_hint and not PaperOrder.objects.filter(client_order_id=order.client_order_id).exists():
            # The market moves first, in its own transactions: a stop or take-profit it triggers stays
            # triggered when this order is then refused (a close that finds the position gone).
            self.observe_price(order.symbol, order.price_hint)
        with transaction.atomic():
            existing = PaperOrder.objects.filter(client_order_id=order.client_order_id).first()
            if existing is not None:
                # A resend of an order already placed: answer as a lookup would.
                return _result(existing)
            mark = self.get_mark_price(order.symbol)
            self._check_position_mode(order)
            account = self._account(lock=True)
            position = self._position(order.symbol, order.position_side, lock=True)
            limit = order.limit_price
            if limit is not None and not _crosses(order.side, limit, mark):
                quantity = self._checked_quantity(order, rules, position, limit)
                self._check_margin(order, account, position, quantity, limit)
                resting = PaperOrder.objects.create(
                    client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,
                    position_side=order.position_side, quantity=quantity, reduce_only=order.reduce_only,
                    price=limit, time_in_force="GTX" if order.post_only else "GTC", status="NEW",
                    avg_price=Decimal(0), executed_qty=Decimal(0))
                return _result(resting)
            if limit is not None and order.post_only:
                raise WouldTake(f"post-only: a {order.side.lower()} at {limit} would have taken liquidity at the "
                                f"market's {mark}, so it was not placed", code="-5022")
            quantity = self._checked_quantity(order, rules, position, mark)
            self._check_margin(order, account, position, quantity, mark)
            return self._fill(order, account, position, quantity, mark)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderResult | None:
        with transaction.atomic():
            paper_order = PaperOrder.objects.select_for_update().filter(symbol=symbol, client_order_id=client_order_id).first()
            if paper_order is None:
                return None
            if paper_order.status in RESTING:
                paper_order.status = "CANCELED"
                paper_order.save(update_fields=["status"])
            return _result(paper_order)

    def _fill_resting(self, paper_order: PaperOrder) -> None:
        """A resting order the market crossed: filled whole at its price, as one fill."""
        with transaction.atomic():
            locked = PaperOrder.objects.select_for_update().get(pk=paper_order.pk)
            if locked.status not in RESTING or locked.price is None:
                return
            request = OrderRequest(symbol=locked.symbol, side=locked.side, quantity=locked.quantity,
                                   client_order_id=locked.client_order_id, reduce_only=locked.reduce_only,
                                   position_side=locked.position_side)
            account = self._account(lock=True)
            position = self._position(locked.symbol, locked.position_side, lock=True)
            price = locked.price
            reduces = locked.reduce_only or _hedge_close(request)
            quantity = min(locked.quantity, abs(position.amount)) if reduces else locked.quantity
            if quantity <= 0:  # nothing left to reduce: Binance expires such an order
                locked.status = "EXPIRED"
                locked.save(update_fields=["status"])
                return
            signed = quantity if locked.side == "BUY" else -quantity
            position.amount, position.entry_price, realized = position_after(position.amount, position.entry_price,
                                                                             signed, price)
            position.save()
            commission = quantity * price * self.taker_fee
            account.wallet_balance += realized - commission
            account.save()
            locked.status, locked.avg_price, locked.executed_qty = "FILLED", price, quantity
            locked.commission, locked.realized_pnl, locked.created_at = commission, realized, position.updated_at
            locked.save()
            fill_lines_write(self.account_id, _income_records(locked), client_order_id=locked.client_order_id)

    def _checked_quantity(self, order: OrderRequest, rules: SymbolRules, position: PaperPosition, price: Decimal) -> Decimal:
        quantity = order.quantity
        if quantity <= 0 or rules.round_quantity(quantity) != quantity:
            raise PrecisionRejected(
                f"quantity {quantity} does not fit {order.symbol}'s step of {rules.step_size}", code="-1111"
            )
        signed = quantity if order.side == "BUY" else -quantity
        reduces = order.reduce_only or _hedge_close(order)
        if reduces:
            # Binance refuses a reduce-only order that would open or grow a position, and trims
            # one larger than the position to the position's size; in hedge mode, so every order
            # that sells the LONG side or buys the SHORT.
            if position.amount == 0 or (position.amount > 0) == (signed > 0):
                raise NothingToReduce("reduce-only order refused: there is no opposite position to reduce", code="-2022")
            quantity = min(quantity, abs(position.amount))
        problem = rules.violation(quantity, price, reduce_only=reduces)
        if problem:
            code = "-4164" if "order value" in problem else "-4003" if "below" in problem else "-4005"
            raise PermanentError(problem, code=code)
        return quantity

    def _check_position_mode(self, order: OrderRequest) -> None:
        """As Binance: reduceOnly has no place in hedge mode (-1106), and the order's position side must
        be the mode's (-4061)."""
        if self.hedge_mode and order.reduce_only:
            raise PermanentError("an order parameter was sent that this order type does not take: reduceOnly in "
                                 "hedge mode", code="-1106")
        if (order.position_side == "BOTH") == self.hedge_mode:
            raise PermanentError("the order's position side does not match the account's position mode (one-way/hedge)",
                                 code="-4061")

    def _check_margin(
        self, order: OrderRequest, account: PaperAccount, position: PaperPosition, quantity: Decimal, price: Decimal
    ) -> None:
        old = position.amount
        same_side = old == 0 or (old > 0) == (order.side == "BUY")
        opened = quantity if same_side else max(quantity - abs(old), Decimal(0))
        if opened == 0:
            return
        needed = opened * price / position.leverage + quantity * price * self.taker_fee
        available = self._available(account)
        if needed > available:
            raise PermanentError(
                f"not enough margin: the order needs {needed:.2f} USDT, {available:.2f} USDT is available",
                code="-2019",
            )

    def _fill(
        self, order: OrderRequest, account: PaperAccount, position: PaperPosition, quantity: Decimal, price: Decimal
    ) -> OrderResult:
        signed = quantity if order.side == "BUY" else -quantity
        position.amount, position.entry_price, realized = position_after(position.amount, position.entry_price, signed, price)
        position.save()
        commission = quantity * price * self.taker_fee
        account.wallet_balance += realized - commission
        account.save()
        paper_order = PaperOrder.objects.create(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            position_side=order.position_side,
            quantity=order.quantity,
            reduce_only=order.reduce_only,
            avg_price=price,
            executed_qty=quantity,
            commission=commission,
            realized_pnl=realized,
            created_at=position.updated_at,  # the fill's time is the position's: a reconciliation reading it has it
        )
        # Its ledger lines with it, in its transaction: the paper ledger is never behind its fills.
        fill_lines_write(self.account_id, _income_records(paper_order), client_order_id=order.client_order_id)
        return _result(paper_order)

    def get_order(self, symbol: str, client_order_id: str, *, stamp: int | None) -> OrderResult | None:
        # An order is placed in one database transaction: absent now is absent for good.
        paper_order = PaperOrder.objects.filter(symbol=symbol, client_order_id=client_order_id).first()
        return None if paper_order is None else _result(paper_order)

    # --- account settings -----------------------------------------------------------------------
    # The symbol's settings live on its BOTH row; a LONG/SHORT row (hedge mode) carries a copy, as
    # Binance's leverage and margin type are per symbol, whatever the position mode.
    def set_leverage(self, symbol: str, leverage: int) -> None:
        self.get_symbol_rules(symbol)
        PaperPosition.objects.update_or_create(symbol=symbol, position_side="BOTH", defaults={"leverage": leverage})
        if self.hedge_mode:
            PaperPosition.objects.filter(symbol=symbol).exclude(position_side="BOTH").update(leverage=leverage)

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        self.get_symbol_rules(symbol)
        PaperPosition.objects.update_or_create(symbol=symbol, position_side="BOTH", defaults={"margin_type": margin_type})
        if self.hedge_mode:
            PaperPosition.objects.filter(symbol=symbol).exclude(position_side="BOTH").update(margin_type=margin_type)

    def is_hedge_mode(self) -> bool:
        return self.hedge_mode

    def get_symbol_settings(self, symbols: Collection[str]) -> dict[str, SymbolSettings]:
        """As set (a test may change a row, as someone would in Binance's app), else Binance's default."""
        rows = {p.symbol: p for p in PaperPosition.objects.filter(symbol__in=set(symbols), position_side="BOTH")}
        return {
            symbol: SymbolSettings(symbol, rows[symbol].leverage, rows[symbol].margin_type) if symbol in rows
            else SymbolSettings(symbol, DEFAULT_LEVERAGE, "cross")
            for symbol in symbols
        }

    def check_setup(self, symbols: Collection[str]) -> list[SetupLine]:
        """Nothing at an exchange to check: said so. A symbol outside the bundled rules is refused here too."""
        ok = CheckState.OK
        lines = [
            SetupLine("clock", ok, "paper exchange: it keeps this server's time"),
            SetupLine("API key", ok, "paper exchange: no API key is used"),
            SetupLine("trading", ok, "paper exchange: always open to orders"),
            SetupLine("position mode", ok, "paper exchange: hedge mode (PAPER_HEDGE_MODE), supported" if self.hedge_mode
                      else "paper exchange: one-way"),
            SetupLine("multi-assets mode", ok, "paper exchange: single-asset, USDT"),
        ]
        if not symbols:
            return [*lines, SetupLine("symbols", ok, "no enabled strategy lists a symbol: none to check")]
        return lines + [_paper_symbol_line(symbol) for symbol in sorted(symbols)]

    # --- reads ----------------------------------------------------------------------------------
    def get_balance(self) -> Balance:
        account = self._account()
        unrealized = sum((self._unrealized(p) for p in self._open_positions()), Decimal(0))
        return Balance(
            asset=ASSET,
            wallet_balance=account.wallet_balance,
            available_balance=self._available(account),
            equity=account.wallet_balance + unrealized,
            unrealized_pnl=unrealized,
        )

    def get_positions(self) -> list[PositionInfo]:
        return [
            PositionInfo(
                symbol=p.symbol,
                position_side=p.position_side,
                amount=p.amount,
                entry_price=p.entry_price,
                unrealized_pnl=self._unrealized(p),
                mark_price=self._price_or_none(p.symbol),
                updated_at=p.updated_at,
                leverage=p.leverage,
                margin_type=p.margin_type,
            )
            for p in self._open_positions()
        ]

    def get_symbol_rules(self, symbol: str) -> SymbolRules:
        return bundled_rules_for(symbol)

    def tradable_symbols(self) -> frozenset[str]:
        return frozenset(bundled_rules())

    def get_mark_price(self, symbol: str) -> Decimal:
        price = self._price_or_none(symbol)
        if price is None:
            raise PermanentError(
                f"the paper exchange has no price for {symbol} yet: include \"price\": {{{{close}}}} in the alert"
            )
        return price

    def observe_price(self, symbol: str, price: Decimal) -> None:
        """The paper market moves with the prices signals carry; a protective order whose trigger the
        price crossed closes its position, as the exchange's would."""
        PaperPrice.objects.update_or_create(symbol=symbol, defaults={"price": price})
        for resting in PaperOrder.objects.filter(symbol=symbol, status__in=RESTING, price__isnull=False):
            assert resting.price is not None
            if _crosses(resting.side, resting.price, price):
                self._fill_resting(resting)
        for protective in PaperProtective.objects.filter(symbol=symbol, status="open"):
            if protective.kind == "trailing":
                _trail(protective, price)
            if _crossed(protective, price):
                self._trigger(protective, price)

    # --- protective orders ------------------------------------------------------------------------
    def place_protective(self, request: ProtectiveRequest) -> str:
        self.get_symbol_rules(request.symbol)
        # A trailing stop with no activation price is active at once, from the price now (as Binance's).
        extreme = self._price_or_none(request.symbol) if request.kind == "trailing" and not request.trigger else None
        protective, _ = PaperProtective.objects.get_or_create(
            client_id=request.client_id,
            defaults={"symbol": request.symbol, "position_side": request.position_side, "kind": request.kind,
                      "side": request.side, "trigger": request.trigger, "quantity": request.quantity,
                      "callback_rate": request.callback, "extreme": extreme},
        )
        return f"paper-algo-{protective.pk}"

    def cancel_protective(self, symbol: str, client_id: str) -> None:
        PaperProtective.objects.filter(symbol=symbol, client_id=client_id, status="open").update(status="cancelled")

    def open_protective(self, symbol: str) -> list[ProtectiveState]:
        return [
            ProtectiveState(client_id=p.client_id, exchange_id=f"paper-algo-{p.pk}", symbol=p.symbol, kind=p.kind,
                            trigger=p.trigger)
            for p in PaperProtective.objects.filter(symbol=symbol, status="open").order_by("id")
        ]

    def request_weight(self) -> tuple[int, int] | None:
        """No rate limit on the paper exchange itself; the price feed's (Binance's, for this IP), as its
        last klines answer said, while klines are read from it (get_klines). None otherwise."""
        if self._feed_weight is None or time.monotonic() - self._feed_weight[1] > 60:
            return None
        return self._feed_weight[0], REQUEST_WEIGHT_LIMIT

    # --- price history ----------------------------------------------------------------------------
    def get_klines(self, symbol: str, *, start_ms: int, end_ms: int, limit: int) -> list[Kline]:
        """The paper exchange has no history of its own: the price feed's (PAPER_PRICE_FEED, a Binance
        REST base URL), read from its public klines endpoint."""
        if not settings.PAPER_PRICE_FEED:
            raise PermanentError(NO_HISTORY, code="no-history")
        if self._feed_session is None:
            self._feed_session = requests.Session()
            self._feed_session.hooks["response"].append(self._note_feed_weight)
        return public_klines(self._feed_session, settings.PAPER_PRICE_FEED, symbol, start_ms=start_ms, end_ms=end_ms,
                             limit=limit, timeout=FEED_TIMEOUT)

    def _note_feed_weight(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        used = response.headers.get(USED_WEIGHT_HEADER, "")
        if used.isdigit():
            self._feed_weight = (int(used), time.monotonic())

    def rate_limits(self) -> RateLimits:
        return RateLimits()  # none: no order waits for a budget

    def rate_usage(self) -> RateUsage:
        return RateUsage()

    def user_stream(self) -> "PaperUserStream":
        """The paper exchange acts by itself when a price crosses a protective or a resting order: an
        alert's price, or the price feed's (PAPER_PRICE_FEED), which this stream reads."""
        feed = PriceFeed(settings.PAPER_PRICE_FEED, every=settings.PAPER_PRICE_FEED_SECONDS) \
            if settings.PAPER_PRICE_FEED else None
        return PaperUserStream(self, feed)

    def _trigger(self, protective: PaperProtective, price: Decimal) -> None:
        """Close the whole position at `price` (closePosition; a trailing stop: at most its quantity),
        then retire the order."""
        with transaction.atomic():
            # Locked and read again: the worker (an alert's price) and the stream (the price feed) may
            # both see the same crossing; only one triggers it.
            if not PaperProtective.objects.select_for_update().filter(pk=protective.pk, status="open").exists():
                return
            position = self._position(protective.symbol, protective.position_side, lock=True)
            held = min(abs(position.amount), protective.quantity or abs(position.amount))
            if held and (position.amount > 0) == (protective.side == "SELL"):
                request = OrderRequest(symbol=protective.symbol, side=protective.side, quantity=held,
                                       client_order_id=f"{TRIGGER_PREFIX}{protective.pk}",
                                       reduce_only=protective.position_side == "BOTH",
                                       position_side=protective.position_side)
                self._fill(request, self._account(lock=True), position, held, price)
            PaperProtective.objects.filter(pk=protective.pk).update(status="triggered")

    def server_time_ms(self) -> int:
        return int(time.time() * 1000)

    # --- the ledger ---------------------------------------------------------------------------
    def get_income(self, *, start_ms: int | None, limit: int) -> list[IncomeRecord]:
        """The paper ledger is its orders: each fill charged a commission and may have realized
        P&L, exactly what it added to the wallet (the paper exchange has no funding)."""
        orders = PaperOrder.objects.order_by("created_at", "pk")
        if start_ms is not None:
            orders = orders.filter(created_at__gte=EPOCH + timedelta(milliseconds=start_ms))
        records = [record for order in orders[:limit] for record in _income_records(order)]
        return records[:limit]

    def get_fills(self, symbol: str, *, order_id: str) -> list[Fill]:
        # A paper order fills in one trade, named like the order.
        pk = order_id.removeprefix("paper-")
        paper_order = PaperOrder.objects.filter(pk=pk, symbol=symbol).first() if pk.isdigit() else None
        if paper_order is None or paper_order.executed_qty == 0:
            return []
        return [Fill(
            trade_id=f"paper-{paper_order.pk}", order_id=f"paper-{paper_order.pk}", symbol=paper_order.symbol,
            side=paper_order.side, price=paper_order.avg_price, qty=paper_order.executed_qty,
            commission=paper_order.commission, commission_asset=ASSET, realized_pnl=paper_order.realized_pnl,
            time=paper_order.created_at,
        )]

    # --- internals ------------------------------------------------------------------------------
    def _account(self, *, lock: bool = False) -> PaperAccount:
        queryset = PaperAccount.objects.select_for_update() if lock else PaperAccount.objects
        account, _ = queryset.get_or_create(asset=ASSET, defaults={"wallet_balance": self.starting_balance})
        return account

    def _position(self, symbol: str, position_side: str, *, lock: bool = False) -> PaperPosition:
        queryset = PaperPosition.objects.select_for_update() if lock else PaperPosition.objects
        if position_side == "BOTH":
            position, _ = queryset.get_or_create(
                symbol=symbol, position_side=position_side, defaults={"leverage": DEFAULT_LEVERAGE}
            )
            return position
        found = queryset.filter(symbol=symbol, position_side=position_side).first()
        if found is not None:
            return found
        in_force = self.get_symbol_settings([symbol])[symbol]  # a new side takes the symbol's settings
        position, _ = queryset.get_or_create(
            symbol=symbol, position_side=position_side,
            defaults={"leverage": in_force.leverage, "margin_type": in_force.margin_type},
        )
        return position

    def _open_positions(self) -> list[PaperPosition]:
        return list(PaperPosition.objects.exclude(amount=0).order_by("symbol"))

    def _price_or_none(self, symbol: str) -> Decimal | None:
        return PaperPrice.objects.filter(symbol=symbol).values_list("price", flat=True).first()

    def _unrealized(self, position: PaperPosition) -> Decimal:
        price = self._price_or_none(position.symbol) or position.entry_price
        return (price - position.entry_price) * position.amount

    def _available(self, account: PaperAccount) -> Decimal:
        used = Decimal(0)
        unrealized = Decimal(0)
        for position in self._open_positions():
            used += abs(position.amount) * position.entry_price / position.leverage
            unrealized += self._unrealized(position)
        return account.wallet_balance + unrealized - used


def _paper_symbol_line(symbol: str) -> SetupLine:
    try:
        bundled_rules_for(symbol)
    except UnknownSymbol:
        return SetupLine(symbol, CheckState.FAILED, f"{symbol} is not among the paper exchange's bundled perpetuals: "
                                                    "it refuses its orders; correct or remove it in the strategy's products")
    return SetupLine(symbol, CheckState.OK, f"{symbol}: paper exchange, a bundled perpetual")


def _hedge_close(order: OrderRequest) -> bool:
    """In hedge mode an order that sells the LONG side or buys the SHORT only ever reduces it."""
    return order.position_side != "BOTH" and (order.position_side == "LONG") == (order.side == "SELL")


def _trail(protective: PaperProtective, price: Decimal) -> None:
    """A trailing stop activates once the price reaches its activation price (a long's: at or above),
    then follows the best price seen: a long's highest, a short's lowest."""
    sells = protective.side == "SELL"
    active = protective.extreme is not None or (price >= protective.trigger if sells else price <= protective.trigger)
    if not active:
        return
    best = price if protective.extreme is None else (max if sells else min)(protective.extreme, price)
    if best != protective.extreme:
        protective.extreme = best
        PaperProtective.objects.filter(pk=protective.pk).update(extreme=best)


def _crossed(protective: PaperProtective, price: Decimal) -> bool:
    """A long's stop (a SELL stop-loss) triggers at or below its price, its target at or above; a
    long's trailing stop once active, at or below its best price less the callback."""
    if protective.kind == "trailing":
        if protective.extreme is None or protective.callback_rate is None:
            return False
        back = protective.extreme * protective.callback_rate / 100
        return price <= protective.extreme - back if protective.side == "SELL" else price >= protective.extreme + back
    falls = (protective.kind == "stop_loss") == (protective.side == "SELL")
    return price <= protective.trigger if falls else price >= protective.trigger


def _crosses(side: str, limit: Decimal, price: Decimal) -> bool:
    """Whether a limit order at `limit` trades at the market's `price`: a buy at or above it, a sell at
    or below."""
    return limit >= price if side == "BUY" else limit <= price


def _result(paper_order: PaperOrder) -> OrderResult:
    return OrderResult(
        client_order_id=paper_order.client_order_id,
        exchange_order_id=f"paper-{paper_order.pk}",
        state=OrderState(paper_order.status),
        executed_qty=paper_order.executed_qty,
        avg_price=paper_order.avg_price or None,  # a resting order's is 0: none yet
        commission=paper_order.commission,
        realized_pnl=paper_order.realized_pnl,
        updated_at=paper_order.created_at,
        raw={
            "orderId": f"paper-{paper_order.pk}",
            "clientOrderId": paper_order.client_order_id,
            "symbol": paper_order.symbol,
            "side": paper_order.side,
            "status": paper_order.status,
            "executedQty": _plain(paper_order.executed_qty),
            "avgPrice": _plain(paper_order.avg_price),
        },
    )


def _income_records(paper_order: PaperOrder) -> list[IncomeRecord]:
    lines = [(IncomeKind.REALIZED_PNL, "r", paper_order.realized_pnl), (IncomeKind.COMMISSION, "c", -paper_order.commission)]
    return [
        IncomeRecord(tran_id=f"paper-{paper_order.pk}-{suffix}", kind=kind, symbol=paper_order.symbol, amount=amount,
                     asset=ASSET, time=paper_order.created_at, trade_id=f"paper-{paper_order.pk}")
        for kind, suffix, amount in lines
        if amount
    ]

def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


TRIGGER_PREFIX = "trig-"  # the client order id of the order a triggered PaperProtective became
PAPER_ORDER_TYPES = {"stop_loss": "STOP_LOSS_MARKET", "take_profit": "TAKE_PROFIT_MARKET", "trailing": "TRAILING_STOP_MARKET"}


class PaperUserStream:
    """What the paper exchange did by itself, as a stream: each triggered protective order (its
    ProtectiveUpdate, then its fill), read from the database every POLL seconds. It starts from the
    beginning each time it opens; what was applied before changes nothing when applied again."""

    POLL = 0.25  # seconds

    def __init__(self, exchange: "PaperExchange | None" = None, feed: PriceFeed | None = None) -> None:
        """`feed`: prices to move the paper market with, through `exchange`; none: alerts move it."""
        self.exchange = exchange
        self.feed = feed if exchange is not None else None

    def events(self, stop: Event) -> Iterator[UserEvent]:
        yield StreamConnected(timezone.now())
        last_pk = 0
        while not stop.is_set():
            if self.feed is not None and self.exchange is not None:
                for symbol, price in self.feed.due(watched_symbols()).items():
                    self.exchange.observe_price(symbol, price)
            triggered = PaperOrder.objects.filter(client_order_id__startswith=TRIGGER_PREFIX, pk__gt=last_pk).order_by("pk")
            for paper_order in triggered[:100]:
                last_pk = paper_order.pk
                yield from _trigger_events(paper_order)
            yield StreamAlive(timezone.now())
            stop.wait(self.POLL)


def watched_symbols() -> set[str]:
    """The symbols whose price can make the paper exchange act: an open position, a resting limit
    order or an open protective order."""
    return (set(PaperPosition.objects.exclude(amount=0).values_list("symbol", flat=True))
            | set(PaperOrder.objects.filter(status__in=RESTING).values_list("symbol", flat=True))
            | set(PaperProtective.objects.filter(status="open").values_list("symbol", flat=True)))


def _trigger_events(paper_order: PaperOrder) -> Iterator[UserEvent]:
    protective_pk = paper_order.client_order_id.removeprefix(TRIGGER_PREFIX)
    protective = PaperProtective.objects.filter(pk=int(protective_pk)).first() if protective_pk.isdigit() else None
    exchange_id = _result(paper_order).exchange_order_id
    if protective is not None:
        yield ProtectiveUpdate(symbol=protective.symbol, client_id=protective.client_id, status=ProtectiveStatus.TRIGGERED,
                               order_id=exchange_id, time=paper_order.created_at)
    yield OrderUpdate(
        symbol=paper_order.symbol, client_order_id=paper_order.client_order_id, exchange_order_id=exchange_id,
        side=paper_order.side, position_side=paper_order.position_side,
        order_type=PAPER_ORDER_TYPES.get(protective.kind, "MARKET") if protective else "MARKET", quantity=paper_order.quantity,
        state=OrderState(paper_order.status), executed_qty=paper_order.executed_qty, avg_price=paper_order.avg_price,
        last_qty=paper_order.executed_qty, last_price=paper_order.avg_price, commission=paper_order.commission,
        commission_asset=ASSET, realized_pnl=paper_order.realized_pnl, trade_id=exchange_id,
        reduce_only=paper_order.reduce_only, cause=FillCause.ORDER, time=paper_order.created_at,
    )
