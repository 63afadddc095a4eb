"""A real HTTP fake of the Binance USDⓈ-M futures endpoints the adapter uses, on 127.0.0.1.

It checks requests as Binance does — the X-MBX-APIKEY header, the HMAC-SHA256 signature of the
query string, and the timestamp against its own clock and recvWindow — keeps an account (balance,
positions, leverage, margin type, position mode, orders), applies the bundled exchange filters, and
injects faults on demand: 5xx, 503 after filling, a stalled answer, 429 with Retry-After, clock
drift. Tests drive the real connector against it over real HTTP.

It also serves the user data stream over a real local websocket (`ws_url`/<listenKey>): every fill
pushes ORDER_TRADE_UPDATE and ACCOUNT_UPDATE as Binance does, a triggered protective order its
ALGO_UPDATEs, a leverage change ACCOUNT_CONFIG_UPDATE, and helpers make the exchange act by itself
(a liquidation, a trade placed by hand, funding, a leverage or margin type changed in Binance's app),
drop the connection, expire the listenKey, replay an event or send any frame at all. A price moved
(`move_price`, or `move_price_on_next_order` to race an order) triggers the protective orders it reaches.

LIMIT orders (GTC, GTX post-only, IOC, FOK) are checked as Binance does (timeInForce and price sent, price on
the tick). One that can trade at once takes at the price now, as a market order (a GTX one is refused, -5022,
and never recorded); any other GTC/GTX order rests (`open_orders`, GET /fapi/v1/openOrders) until a price
moved past it (`set_price`, `move_price`) fills it whole at its own price as maker, or `fill_resting` fills
some of it; DELETE /fapi/v1/order cancels it, keeping what it executed. `orders` holds each accepted order
once: a resting one changes there in place as it fills or is cancelled.

GET /fapi/v1/klines (public) answers 1-minute klines of any bundled symbol, honouring startTime, endTime and
limit as Binance does: from `kline_path[symbol]` when a test set one, else a flat series at the symbol's price.
X-MBX-USED-WEIGHT-1M counts each request as weight 1 and klines at Binance's weight for their limit, or says
`weight_used` when a test set it.

The account's setup (`manage.py exchange_check`) has switches a test flips: `key_refused`, `can_trade`,
`trading_lock`, `hedge_mode`, `multi_assets`, and `listing` (a symbol's exchangeInfo status or type).
With `hedge_mode` the account keeps a LONG and a SHORT position per symbol, refuses reduceOnly
(-1106) and a positionSide that does not match the mode (-4061), as Binance does; `refusals` lists
every error code answered, so a test can assert one never was.
"""

import hashlib
import hmac
import json
import random
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as WebsocketRequest, Response as WebsocketResponse
from websockets.sync.server import ServerConnection, serve as websocket_serve

from trading.exchange.rules import SNAPSHOT, bundled_rules
from trading.pnl import position_after

ORDER = ("POST", "/fapi/v1/order")
API_KEY = "fake-api-key-0123456789"
API_SECRET = "fake-api-secret-9876543210"
SIGNED = {"/fapi/v1/order", "/fapi/v1/leverage", "/fapi/v1/marginType", "/fapi/v1/positionSide/dual",
          "/fapi/v3/account", "/fapi/v3/balance", "/fapi/v3/positionRisk", "/fapi/v1/algoOrder", "/fapi/v1/openAlgoOrders",
          "/fapi/v1/income", "/fapi/v1/userTrades", "/fapi/v1/symbolConfig", "/fapi/v1/accountConfig",
          "/fapi/v1/apiTradingStatus", "/fapi/v1/multiAssetsMargin", "/fapi/v1/openOrders",
          "/fapi/v1/openOrder"}
DEFAULT_LEVERAGE = 20  # Binance's for a symbol never configured
TAKER_FEE = Decimal("0.0005")  # Binance's standard USDⓈ-M taker rate
MAKER_FEE = Decimal("0.0002")  # and maker rate: a resting limit order's fill
RESTING = ("NEW", "PARTIALLY_FILLED")  # a LIMIT order's statuses while on the book


@dataclass
class Fault:
    method: str
    path: str
    kind: str  # status, after_fill, stall, rate_limit, answer_new
    status: int = 503
    code: int = -1000
    msg: str = ""
    seconds: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    params: dict
    at: float = field(default_factory=time.time)


@dataclass
class RandomFaults:
    """The chaos proof's exchange (bench/chaos.py): every order request draws, from a seeded RNG, one
    of the faults an order meets in practice, each with probability `p`, or none. Each fault drawn is
    logged with the client order id it hit, so a failed check can show what the exchange did."""

    seed: int
    p: float
    stall_seconds: float = 1.5  # past a client timeout of 1 s; the order then fills
    retry_after: int = 1
    lookup_p: float | None = None  # probability of a 503 to an order lookup; None: p
    log: list[tuple[float, str, str, str]] = field(default_factory=list)  # (at, method, client order id, kind)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, request: Request) -> Fault | None:
        if request.path != "/fapi/v1/order" or request.method not in ("POST", "GET"):
            return None
        roll = self.rng.random()
        p = self.lookup_p if request.method == "GET" and self.lookup_p is not None else self.p
        for index, (kind, fault) in enumerate(self._kinds(request.method)):
            if roll < p * (index + 1):
                client_id = request.params.get("newClientOrderId") or request.params.get("origClientOrderId", "")
                self.log.append((request.at, request.method, client_id, kind))
                return fault
        return None

    def _kinds(self, method: str) -> list[tuple[str, Fault]]:
        path = "/fapi/v1/order"
        if method == "GET":
            return [("503 to a lookup", Fault("GET", path, "status", status=503))]
        return [
            ("503 after filling", Fault("POST", path, "after_fill")),
            ("stall, then fill", Fault("POST", path, "stall", seconds=self.stall_seconds)),
            ("429 Retry-After", Fault("POST", path, "rate_limit", status=429, seconds=self.retry_after)),
            ("-1021 timestamp", Fault("POST", path, "status", status=400, code=-1021,
                                      msg="Timestamp for this request is outside of the recvWindow.")),
            ("500 before filling", Fault("POST", path, "status", status=500, code=-1000, msg="Internal error.")),
        ]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for _, _, _, kind in self.log:
            counts[kind] = counts.get(kind, 0) + 1
        return counts


class Answer(Exception):
    def __init__(self, status: int, body, headers: dict | None = None):
        self.status, self.body, self.headers = status, body, headers or {}


class FakeBinance:
    def __init__(self):
        self.lock = threading.RLock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.server.handle_error = _quiet_when_the_client_died(self.server.handle_error)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.streams: list[ServerConnection] = []  # open user data stream connections
        self.ws_server = websocket_serve(self._stream_serve, "127.0.0.1", 0, compression=None,
                                         process_request=self._stream_admit)
        self.ws_url = f"ws://127.0.0.1:{self.ws_server.socket.getsockname()[1]}/ws"
        threading.Thread(target=self.ws_server.serve_forever, daemon=True).start()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.wallet = Decimal("10000")
            self.prices: dict[str, Decimal] = {"BTCUSDT": Decimal("45000"), "ETHUSDT": Decimal("3000")}
            self.positions: dict[tuple[str, str], list[Decimal]] = {}  # (symbol, side) → [amount, entry]
            self.position_times: dict[tuple[str, str], int] = {}  # (symbol, side) → last change, server ms
            self.leverage: dict[str, int] = {}
            self.margin_type: dict[str, str] = {}
            self.order_leverage: dict[str, int] = {}  # client order id → the symbol's leverage when it was placed
            self.hedge_mode = False
            # Switches a test flips: the account's setup as `manage.py exchange_check` reads it.
            self.multi_assets = False
            self.can_trade = True
            self.key_refused = False  # every request with the key answers -2015 (wrong key, IP not allowed…)
            self.trading_lock: tuple[str, int] | None = None  # (symbol or "ACCOUNT", recover time ms)
            self.listing: dict[str, dict] = {}  # symbol → fields overriding its exchangeInfo entry (status…)
            self.clock_offset_ms = 0
            self.orders: list[dict] = []  # every order accepted, once each; a resting one changes in place
            self.open_orders: dict[str, dict] = {}  # clientOrderId → a resting LIMIT order (the same dict as in `orders`)
            self.requests: list[Request] = []
            self.refusals: list[tuple[str, str, int]] = []  # (method, path, Binance code) of every error answered
            self.faults: list[Fault] = []
            self.next_order_id = 1000
            self.algo_orders: dict[str, dict] = {}  # clientAlgoId → the resting conditional order
            self.move_on_next_order: tuple[str, str] | None = None  # (symbol, price) reached as the next order arrives
            self.order_delay = 0.0  # seconds every new order waits before it fills (orders in flight)
            # Seconds each request spends on the network, half on the way in and half on the way back:
            # an exchange that far away (bench/burst.py). An order is at the exchange after the first half.
            self.latency = 0.0
            # Binance's order rate limits per account, (orders, seconds), counted in fixed windows of its
            # clock: an order past one is answered 429 (-1015), and counted in `rate_limited`.
            self.order_limits: list[tuple[int, float]] = [(300, 10.0), (1200, 60.0)]
            self.order_counts: dict[tuple[float, int], int] = {}  # (seconds, window number) → orders
            self.rate_limited = 0
            self.random_faults: RandomFaults | None = None  # faults at random (bench/chaos.py)
            self.income: list[dict] = []  # the ledger, oldest first (/fapi/v1/income)
            self.trades: list[dict] = []  # every fill (/fapi/v1/userTrades)
            self.next_tran_id = 9000
            self.next_trade_id = 5000
            self.listen_keys: set[str] = set()
            self.stream_connections = 0  # how many times a stream was opened
            self.pushed: list[dict] = []  # every user data event sent, in order
            self.streams_refused = False  # True: the stream endpoint turns connections away
            # GET /fapi/v1/klines: a symbol's 1-minute klines, (open time ms, open, high, low, close[, volume]) each,
            # set by a test; a symbol without one has a flat series at its price now, every minute up to now.
            self.kline_path: dict[str, list[tuple]] = {}
            self.klines_weight = 0  # request weight the klines requests cost beyond 1 each (Binance's table)
            self.weight_used: int | None = None  # a test sets it: X-MBX-USED-WEIGHT-1M then says this
        self.drop_streams()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.ws_server.shutdown()

    # --- the user data stream ---------------------------------------------------------------------
    def _stream_admit(self, connection: ServerConnection, request: WebsocketRequest) -> WebsocketResponse | None:
        """The handshake: refused (as a failing network or endpoint would) or for an unknown key."""
        if self.streams_refused:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable\n")
        if request.path.rpartition("/")[2] not in self.listen_keys:
            return connection.respond(HTTPStatus.BAD_REQUEST, "invalid listenKey\n")
        return None

    def _stream_serve(self, connection: ServerConnection) -> None:
        with self.lock:
            self.streams.append(connection)
            self.stream_connections += 1
        try:
            for _ in connection:  # Binance ignores what the client says; wait until it goes
                pass
        except ConnectionClosed:
            pass
        finally:
            with self.lock:
                if connection in self.streams:
                    self.streams.remove(connection)

    def push(self, event: dict) -> None:
        """Send an event to every open stream, and remember it (for replay)."""
        with self.lock:
            self.pushed.append(event)
            streams = list(self.streams)
        for connection in streams:
            try:
                connection.send(json.dumps(event))
            except ConnectionClosed:
                pass

    def push_raw(self, frame: str) -> None:
        """Send a frame as it is: a message Binance would never send (not JSON, NaN, too deep…)."""
        with self.lock:
            streams = list(self.streams)
        for connection in streams:
            connection.send(frame)

    def replay(self, event: dict) -> None:
        """Send an event again, as a reconnecting stream or a confused exchange might."""
        with self.lock:
            streams = list(self.streams)
        for connection in streams:
            connection.send(json.dumps(event))

    def drop_streams(self, *, refuse: bool = False) -> None:
        """Cut every stream connection (no close handshake), as a network failure would; with
        `refuse`, turn new ones away until `streams_refused` is set back to False."""
        with self.lock:
            self.streams_refused = refuse
            streams, self.streams = list(self.streams), []
        for connection in streams:
            connection.close_socket()

    def expire_listen_keys(self) -> None:
        """Binance forgets the listenKey: a keep-alive now answers -1125; the stream says so."""
        with self.lock:
            self.listen_keys.clear()
        self.push({"e": "listenKeyExpired", "E": self.server_ms(), "listenKey": "gone"})

    def wait_for_stream(self, timeout: float = 5.0, *, connections: int = 1) -> None:
        """Until `connections` streams have been opened so far and one is open now."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.stream_connections >= connections and self.streams:
                    return
            time.sleep(0.02)
        raise TimeoutError(f"no user data stream connected (opened {self.stream_connections})")

    def wait_for_no_stream(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.streams:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.streams)} user data stream(s) still open")
            time.sleep(0.02)

    def _listen_key(self, method: str, headers, params: dict) -> dict:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Start-User-Data-Stream
        if headers.get("X-MBX-APIKEY") != API_KEY or self.key_refused:
            raise Answer(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
        if method == "POST":
            if not self.listen_keys:
                self.listen_keys.add(secrets.token_urlsafe(48))
            return {"listenKey": next(iter(self.listen_keys))}
        key = params.get("listenKey") or next(iter(self.listen_keys), "")
        if key not in self.listen_keys:
            raise Answer(400, {"code": -1125, "msg": "This listenKey does not exist."})
        if method == "DELETE":
            self.listen_keys.discard(key)
        return {}

    # --- the exchange acting by itself ------------------------------------------------------------
    def liquidate(self, symbol: str, side: str = "BOTH") -> None:
        """The exchange liquidates the position at the mark price."""
        with self.lock:
            amount, _ = self.positions.get((symbol, side), [Decimal(0), Decimal(0)])
            close = "SELL" if amount > 0 else "BUY"
            self._fill_by_exchange(symbol, close, abs(amount), side, client_id=f"autoclose-{self.server_ms()}0001",
                                   order_type="LIQUIDATION", execution_type="CALCULATED")

    def manual_order(self, symbol: str, side: str, quantity: str, *, position_side: str = "BOTH",
                     parts: int = 1) -> int:
        """A market order placed by hand in Binance's app, filled in `parts` trades; its order id."""
        with self.lock:
            return self._fill_by_exchange(symbol, side, Decimal(quantity), position_side,
                                          client_id=f"web_{secrets.token_hex(10)}", parts=parts)

    def _fill_by_exchange(self, symbol: str, side: str, quantity: Decimal, position_side: str, *, client_id: str,
                          order_type: str = "MARKET", execution_type: str = "TRADE", parts: int = 1,
                          reduce_only: bool = False) -> int:
        price = self._price(symbol)
        self.next_order_id += 1
        order_id = self.next_order_id
        order = {"orderId": order_id, "symbol": symbol, "clientOrderId": client_id, "side": side,
                 "positionSide": position_side, "type": order_type, "origQty": str(quantity), "reduceOnly": reduce_only}
        self._push_order(order, "NEW", "NEW", Decimal(0), Decimal(0), price)
        step = bundled_rules()[symbol].step_size
        done = Decimal(0)
        for index in range(parts):
            part = quantity - done if index == parts - 1 else (quantity / parts).quantize(step)
            self._apply_fill(order, part, price, done + part, execution_type)
            done += part
        return order_id

    def _apply_fill(self, order: dict, quantity: Decimal, price: Decimal, cumulative: Decimal,
                    execution_type: str = "TRADE", *, maker: bool = False) -> None:
        """Move the account by one fill and tell the stream, as the matching engine does."""
        symbol, side, position_side = order["symbol"], order["side"], order["positionSide"]
        amount, entry = self.positions.get((symbol, position_side), [Decimal(0), Decimal(0)])
        signed = quantity if side == "BUY" else -quantity
        new_amount, new_entry, realized = position_after(amount, entry, signed, price)
        now = self.server_ms()  # the matching engine's time: of the fill, and of the position's change
        self.positions[(symbol, position_side)] = [new_amount, new_entry]
        self.position_times[(symbol, position_side)] = now
        commission = quantity * price * (MAKER_FEE if maker else TAKER_FEE)
        self.wallet += realized - commission
        self._record_fill(order["orderId"], symbol, side, position_side, quantity, price, realized, commission,
                          maker=maker)
        status = "FILLED" if cumulative >= Decimal(order["origQty"]) else "PARTIALLY_FILLED"
        self._push_account("ORDER", symbol, position_side)
        self._push_order(order, execution_type, status, quantity, cumulative, price, commission=commission,
                         realized=realized, at=now, maker=maker)

    def _push_order(self, order: dict, execution_type: str, status: str, last: Decimal, cumulative: Decimal,
                    price: Decimal, *, commission: Decimal = Decimal(0), realized: Decimal = Decimal(0),
                    at: int | None = None, maker: bool = False) -> None:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Order-Update
        # `price` is the last fill's (and, with `cumulative`, the average); a LIMIT order has its own.
        now = at or self.server_ms()
        self.push({"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": {
            "s": order["symbol"], "c": order["clientOrderId"], "S": order["side"], "o": order["type"],
            "f": order.get("timeInForce", "GTC"), "q": str(order["origQty"]), "p": order.get("price", "0"),
            "ap": str(price) if cumulative else "0", "sp": "0",
            "x": execution_type, "X": status, "i": order["orderId"], "l": str(last), "z": str(cumulative),
            "L": str(price) if last else "0", "N": "USDT", "n": str(commission), "T": now,
            "t": self.next_trade_id if last else 0, "b": "0", "a": "0", "m": maker, "R": bool(order.get("reduceOnly")),
            "wt": "CONTRACT_PRICE", "ot": order["type"], "ps": order["positionSide"], "cp": False, "rp": str(realized),
            "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0,
        }})

    def _push_account(self, reason: str, symbol: str = "", position_side: str = "BOTH",
                      balance_change: Decimal = Decimal(0)) -> None:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Balance-and-Position-Update
        now = self.server_ms()
        positions = []
        if symbol:
            amount, entry = self.positions.get((symbol, position_side), [Decimal(0), Decimal(0)])
            unrealized = (self.prices.get(symbol, entry) - entry) * amount
            positions.append({"s": symbol, "pa": str(amount), "ep": str(entry), "bep": str(entry), "cr": "0",
                              "up": str(unrealized), "mt": "cross", "iw": "0", "ps": position_side})
        self.push({"e": "ACCOUNT_UPDATE", "E": now, "T": now, "a": {
            "m": reason, "B": [{"a": "USDT", "wb": str(self.wallet), "cw": str(self.wallet), "bc": str(balance_change)}],
            "P": positions,
        }})

    # --- test helpers -----------------------------------------------------------------------------
    def set_price(self, symbol: str, price: str) -> None:
        """The price is `price` now: the resting LIMIT orders it crosses fill (protective orders do not
        trigger: `move_price` does that)."""
        with self.lock:
            self.prices[symbol] = Decimal(price)
            self._cross_resting(symbol, Decimal(price))

    def fill_resting(self, client_order_id: str, quantity: str | Decimal) -> dict:
        """The book fills `quantity` of a resting LIMIT order at its price (maker): in part
        (PARTIALLY_FILLED) or the rest of it (FILLED). The order as GET /fapi/v1/order answers it."""
        with self.lock:
            order = self.open_orders[client_order_id]
            remaining = Decimal(order["origQty"]) - Decimal(order["executedQty"])
            if not 0 < Decimal(quantity) <= remaining:
                raise ValueError(f"{quantity} of {client_order_id}: {remaining} remains to fill")
            self._fill_resting_order(order, Decimal(quantity))
            return dict(order)

    def set_position(self, symbol: str, amount: str, entry: str, side: str = "BOTH") -> None:
        self.positions[(symbol, side)] = [Decimal(amount), Decimal(entry)]
        self.position_times[(symbol, side)] = self.server_ms()

    def position(self, symbol: str, side: str = "BOTH") -> Decimal:
        return self.positions.get((symbol, side), [Decimal(0)])[0]

    def fail_next(self, path: str, *, status: int = 503, code: int = -1000, msg: str = "", method: str = "POST",
                  after_fill: bool = False) -> None:
        self.faults.append(Fault(method, path, "after_fill" if after_fill else "status", status, code, msg))

    def answer_new_next(self, path: str = "/fapi/v1/order", *, method: str = "POST") -> None:
        """The order is placed and fills, but the answer says NEW with nothing executed yet (Binance
        may answer a market order before the matching engine has filled it)."""
        self.faults.append(Fault(method, path, "answer_new"))

    def stall_next(self, path: str, seconds: float, *, method: str = "POST") -> None:
        self.faults.append(Fault(method, path, "stall", seconds=seconds))

    def rate_limit_next(self, path: str, *, retry_after: int = 1, method: str = "POST", status: int = 429) -> None:
        """429 (slow down) or 418 (banned), with Retry-After."""
        self.faults.append(Fault(method, path, "rate_limit", status=status, seconds=retry_after))

    def change_leverage_in_app(self, symbol: str, leverage: int) -> None:
        """Someone changes the symbol's leverage in Binance's app: the stream tells (ACCOUNT_CONFIG_UPDATE)."""
        with self.lock:
            self._set_leverage({"symbol": symbol, "leverage": str(leverage)})

    def change_margin_type_in_app(self, symbol: str, margin_type: str) -> None:
        """Someone changes the margin type in Binance's app ("ISOLATED"/"CROSSED"): nothing is pushed."""
        with self.lock:
            self.margin_type[symbol] = margin_type

    def add_funding(self, symbol: str, amount: str) -> None:
        """A funding fee settles on the wallet (negative: paid), as Binance does every 8 hours."""
        with self.lock:
            self.wallet += Decimal(amount)
            self._add_income(symbol, "FUNDING_FEE", Decimal(amount), self.server_ms(), trade_id="")
            self._push_account("FUNDING_FEE", balance_change=Decimal(amount))

    def order_counted(self) -> tuple[bool, dict[str, str]]:
        """Count an order request in each order limit's current window: whether it goes past one, and
        the X-MBX-ORDER-COUNT-* headers that say the counts (10S, 1M, …)."""
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#limits
        with self.lock:
            now, over, headers = self.server_ms() / 1000, False, {}
            for limit, seconds in self.order_limits:
                key = (seconds, int(now // seconds))
                self.order_counts[key] = count = self.order_counts.get(key, 0) + 1
                over = over or count > limit
                interval = f"{int(seconds // 60)}M" if seconds % 60 == 0 else f"{int(seconds)}S"
                headers[f"X-MBX-ORDER-COUNT-{interval}"] = str(count)
            self.rate_limited += over
            return over, headers

    def used_weight(self) -> int:
        """What X-MBX-USED-WEIGHT-1M says: `weight_used` when a test set it; otherwise every request so
        far at weight 1, except klines at Binance's weight for their limit."""
        with self.lock:
            return self.weight_used if self.weight_used is not None else len(self.requests) + self.klines_weight

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def server_ms(self) -> int:
        return int(time.time() * 1000) + self.clock_offset_ms

    # --- request handling -----------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers, body: bytes) -> tuple[int, object, dict]:
        parts = urlsplit(raw_path)
        query = parts.query + ("&" + body.decode() if body else "") if parts.query else body.decode()
        params = dict(parse_qsl(query, keep_blank_values=True))
        path = parts.path
        with self.lock:
            self.requests.append(Request(method, path, {k: v for k, v in params.items() if k != "signature"}))
            fault = self._take_fault(method, path)
        try:
            if fault and fault.kind == "rate_limit":
                raise Answer(fault.status, {"code": -1003, "msg": "Too many requests; current limit is 2400 weight per minute."},
                             {"Retry-After": str(int(fault.seconds))})
            if fault and fault.kind == "status":
                raise Answer(fault.status, {"code": fault.code, "msg": fault.msg or "Service Unavailable."})
            if fault and fault.kind == "stall":
                time.sleep(fault.seconds)
            if method == "POST" and path == "/fapi/v1/order" and self.order_delay:
                time.sleep(self.order_delay)
            if path in SIGNED:
                self._verify(headers, query, params)
            with self.lock:
                result = self._route(method, path, params, headers)
            if fault and fault.kind == "answer_new":
                result = {**result, "status": "NEW", "executedQty": "0", "avgPrice": "0.00"}
            if fault and fault.kind == "after_fill":
                raise Answer(503, {"code": -1000, "msg": "Unknown error, please check your request or try again later. "
                                   "Execution status unknown."})
            return 200, result, {}
        except Answer as answer:
            if isinstance(answer.body, dict) and "code" in answer.body:
                with self.lock:
                    self.refusals.append((method, path, answer.body["code"]))
            return answer.status, answer.body, answer.headers

    def _take_fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.path == path and fault.method == method:
                self.faults.remove(fault)
                return fault
        if self.random_faults is not None:  # handle() just appended this request, under the same lock
            return self.random_faults.draw(self.requests[-1])
        return None

    def _verify(self, headers, query: str, params: dict) -> None:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info#signed-trade-and-user_data-endpoint-security
        if headers.get("X-MBX-APIKEY") != API_KEY or self.key_refused:
            raise Answer(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action, request ip: 127.0.0.1"})
        unsigned, _, signature = query.rpartition("&signature=")
        expected = hmac.new(API_SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature, expected):
            raise Answer(400, {"code": -1022, "msg": "Signature for this request is not valid."})
        timestamp = int(params.get("timestamp", "0"))
        window = int(params.get("recvWindow", "5000"))
        now = self.server_ms()
        if not (timestamp < now + 1000 and now - timestamp <= window):
            raise Answer(400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})

    def _route(self, method: str, path: str, params: dict, headers=None):
        routes = {
            ("GET", "/fapi/v1/time"): lambda: {"serverTime": self.server_ms()},
            ("GET", "/fapi/v1/exchangeInfo"): self._exchange_info,
            ("GET", "/fapi/v1/klines"): lambda: self._klines(params),
            ("GET", "/fapi/v1/premiumIndex"): lambda: {
                "symbol": params["symbol"], "markPrice": str(self._price(params["symbol"]))
            } if "symbol" in params else [  # every symbol, as Binance answers without one
                {"symbol": symbol, "markPrice": str(price)} for symbol, price in sorted(self.prices.items())],
            ("POST", "/fapi/v1/order"): lambda: self._new_order(params),
            ("POST", "/fapi/v1/algoOrder"): lambda: self._new_algo_order(params),
            ("DELETE", "/fapi/v1/algoOrder"): lambda: self._cancel_algo_order(params),
            ("GET", "/fapi/v1/openAlgoOrders"): lambda: [o for o in self.algo_orders.values()
                                                        if o["symbol"] == params.get("symbol", o["symbol"])],
            ("GET", "/fapi/v1/order"): lambda: self._query_order(params),
            ("DELETE", "/fapi/v1/order"): lambda: self._cancel_order(params),
            ("GET", "/fapi/v1/openOrders"): lambda: self._open_orders(params),
            ("GET", "/fapi/v1/openOrder"): lambda: self._open_order(params),
            ("POST", "/fapi/v1/leverage"): lambda: self._set_leverage(params),
            ("POST", "/fapi/v1/marginType"): lambda: self._set_margin_type(params),
            ("GET", "/fapi/v1/positionSide/dual"): lambda: {"dualSidePosition": self.hedge_mode},
            ("GET", "/fapi/v1/symbolConfig"): lambda: self._symbol_config(params),
            ("GET", "/fapi/v1/accountConfig"): self._account_config,
            ("GET", "/fapi/v1/multiAssetsMargin"): lambda: {"multiAssetsMargin": self.multi_assets},
            ("GET", "/fapi/v1/apiTradingStatus"): self._api_trading_status,
            ("GET", "/fapi/v3/account"): self._account,
            ("GET", "/fapi/v3/positionRisk"): self._position_risk,
            ("GET", "/fapi/v1/income"): lambda: self._income_history(params),
            ("GET", "/fapi/v1/userTrades"): lambda: self._account_trades(params),
            ("POST", "/fapi/v1/listenKey"): lambda: self._listen_key("POST", headers, params),
            ("PUT", "/fapi/v1/listenKey"): lambda: self._listen_key("PUT", headers, params),
            ("DELETE", "/fapi/v1/listenKey"): lambda: self._listen_key("DELETE", headers, params),
        }
        route = routes.get((method, path))
        if route is None:
            raise Answer(404, {"code": -5000, "msg": f"Path {path} not found in the fake."})
        return route()

    def _price(self, symbol: str) -> Decimal:
        if symbol not in bundled_rules():
            raise Answer(400, {"code": -1121, "msg": "Invalid symbol."})
        return self.prices.get(symbol, Decimal("1"))

    def _new_order(self, params: dict) -> dict:
        if self.move_on_next_order is not None:  # the market got there just before this order
            move, self.move_on_next_order = self.move_on_next_order, None
            self.move_price(*move)
        symbol, side = params["symbol"], params["side"]
        price = self._price(symbol)
        rules = bundled_rules()[symbol]
        limit = _limit_terms(params, rules) if params.get("type") == "LIMIT" else None
        _check_precision(params["quantity"], rules.step_size)
        quantity = Decimal(params["quantity"])
        position_side = params.get("positionSide", "BOTH")
        reduce_only = params.get("reduceOnly") == "true"
        self._check_position_mode(params)
        if rules.round_quantity(quantity) != quantity:
            raise Answer(400, {"code": -1111, "msg": "Precision is over the maximum defined for this asset."})
        if quantity < rules.min_qty:
            raise Answer(400, {"code": -4003, "msg": "Quantity less than or equal to zero."})
        if quantity > rules.max_qty:
            raise Answer(400, {"code": -4005, "msg": "Quantity greater than max quantity."})
        amount, entry = self.positions.get((symbol, position_side), [Decimal(0), Decimal(0)])
        signed = quantity if side == "BUY" else -quantity
        # Hedge mode: selling the LONG side (buying the SHORT) only ever reduces it, as reduceOnly would.
        hedge_close = position_side != "BOTH" and (position_side == "LONG") == (side == "SELL")
        if reduce_only or hedge_close:
            if amount == 0 or (amount > 0) == (signed > 0):
                raise Answer(400, {"code": -2022, "msg": "ReduceOnly Order is rejected."})
            quantity = min(quantity, abs(amount))
            signed = quantity if side == "BUY" else -quantity
        closing = amount != 0 and (amount > 0) != (signed > 0)
        basis = price if limit is None else limit[0]  # a limit order is judged at its own price
        if not closing and quantity * basis < rules.min_notional:
            raise Answer(400, {"code": -4164, "msg": f"Order's notional must be no smaller than {rules.min_notional}"})
        opened = quantity if not closing else max(quantity - abs(amount), Decimal(0))
        if opened * basis / self.leverage.get(symbol, DEFAULT_LEVERAGE) > self._available():
            raise Answer(400, {"code": -2019, "msg": "Margin is insufficient."})
        client_id = params.get("newClientOrderId") or f"fake-{self.next_order_id + 1}"
        if client_id in self.open_orders:
            raise Answer(400, {"code": -4116, "msg": "ClientOrderId is duplicated."})
        if limit is not None:
            return self._new_limit_order(params, client_id, quantity, price, *limit)
        self.next_order_id += 1
        stream_order = {"orderId": self.next_order_id, "symbol": symbol, "clientOrderId": client_id, "side": side,
                        "positionSide": position_side, "type": "MARKET", "origQty": str(quantity),
                        "reduceOnly": reduce_only}
        self.order_leverage[client_id] = self.leverage.get(symbol, DEFAULT_LEVERAGE)
        self._push_order(stream_order, "NEW", "NEW", Decimal(0), Decimal(0), price)
        self._apply_fill(stream_order, quantity, price, quantity)
        order = {
            "orderId": self.next_order_id, "symbol": symbol, "status": "FILLED",
            "clientOrderId": client_id, "price": "0.00", "avgPrice": str(price), "origQty": str(quantity),
            "executedQty": str(quantity),
            "cumQuote": str(quantity * price), "timeInForce": "GTC", "type": "MARKET", "reduceOnly": reduce_only,
            "closePosition": False, "side": side, "positionSide": position_side, "stopPrice": "0.00",
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "MARKET",
            "updateTime": self.position_times[(symbol, position_side)],  # the fill's: the position's change
        }
        self.orders.append(order)
        return order

    def _new_limit_order(self, params: dict, client_id: str, quantity: Decimal, price: Decimal, limit: Decimal,
                         time_in_force: str) -> dict:
        """A LIMIT order, checked as a market order is. Marketable (a BUY at or above the price now, a
        SELL at or below): GTC/IOC/FOK take at once at the price now, as a market order; GTX (post
        only) is refused (-5022) and never recorded. Otherwise GTC/GTX rest on the book (NEW, in
        `open_orders`) until the price crosses them or `fill_resting` fills them, at their own price
        as maker; IOC/FOK expire."""
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Order
        symbol, side = params["symbol"], params["side"]
        marketable = limit >= price if side == "BUY" else limit <= price
        if marketable and time_in_force == "GTX":
            raise Answer(400, POST_ONLY_REJECTED)
        self.next_order_id += 1
        position_side = params.get("positionSide", "BOTH")
        order = {
            "orderId": self.next_order_id, "symbol": symbol, "status": "NEW", "clientOrderId": client_id,
            "price": params["price"], "avgPrice": "0.00", "origQty": str(quantity), "executedQty": "0",
            "cumQuote": "0", "timeInForce": time_in_force, "type": "LIMIT", "reduceOnly": params.get("reduceOnly") == "true",
            "closePosition": False, "side": side, "positionSide": position_side, "stopPrice": "0.00",
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "LIMIT", "updateTime": self.server_ms(),
        }
        self.order_leverage[client_id] = self.leverage.get(symbol, DEFAULT_LEVERAGE)
        self.orders.append(order)
        self._push_order(order, "NEW", "NEW", Decimal(0), Decimal(0), price)
        if marketable:  # a taker, like a market order, at the price now
            self._apply_fill(order, quantity, price, quantity)
            order.update(status="FILLED", avgPrice=str(price), executedQty=str(quantity), cumQuote=str(quantity * price),
                         updateTime=self.position_times[(symbol, position_side)])
        elif time_in_force in ("IOC", "FOK"):
            self._end_order(order, "EXPIRED")
        else:
            self.open_orders[client_id] = order
        return dict(order)

    def _fill_resting_order(self, order: dict, quantity: Decimal) -> None:
        """Fill `quantity` of a resting order at its limit price, as maker. A reduce-only order (or a
        hedge-mode close) fills no more than the position it reduces; what it cannot fill expires."""
        symbol, side, position_side = order["symbol"], order["side"], order["positionSide"]
        limit = Decimal(order["price"])
        if order["reduceOnly"] or (position_side != "BOTH" and (position_side == "LONG") == (side == "SELL")):
            amount = self.positions.get((symbol, position_side), [Decimal(0), Decimal(0)])[0]
            reducible = abs(amount) if amount and (amount > 0) == (side == "SELL") else Decimal(0)
            if reducible < quantity:
                quantity = reducible
                order["expire"] = True
        if quantity:
            done = Decimal(order["executedQty"]) + quantity
            self._apply_fill(order, quantity, limit, done, maker=True)
            order.update(status="FILLED" if done >= Decimal(order["origQty"]) else "PARTIALLY_FILLED",
                         executedQty=str(done), avgPrice=str(limit),
                         cumQuote=str(Decimal(order["cumQuote"]) + quantity * limit),
                         updateTime=self.position_times[(symbol, position_side)])
        if order.pop("expire", False) and order["status"] != "FILLED":
            self._end_order(order, "EXPIRED")
        if order["status"] not in RESTING:
            self.open_orders.pop(order["clientOrderId"], None)

    def _end_order(self, order: dict, status: str) -> None:
        """A resting order ends unfilled or in part (CANCELED, EXPIRED), keeping what it executed."""
        order.update(status=status, updateTime=self.server_ms())
        self.open_orders.pop(order["clientOrderId"], None)
        executed = Decimal(order["executedQty"])
        self._push_order(order, status, status, Decimal(0), executed, Decimal(order["avgPrice"]),
                         at=order["updateTime"])

    def _cross_resting(self, symbol: str, price: Decimal) -> None:
        """The price reached `price`: each resting order it crosses (a BUY at or above it, a SELL at or
        below) fills whole, at its own limit price."""
        for order in [o for o in self.open_orders.values() if o["symbol"] == symbol]:
            limit = Decimal(order["price"])
            if price <= limit if order["side"] == "BUY" else price >= limit:
                self._fill_resting_order(order, Decimal(order["origQty"]) - Decimal(order["executedQty"]))

    def _find_order(self, params: dict, orders) -> dict | None:  # noqa: ANN001 - any iterable of order dicts
        for order in orders:
            if order["symbol"] == params.get("symbol") and (
                    order["clientOrderId"] == params.get("origClientOrderId")
                    or str(order["orderId"]) == params.get("orderId")):
                return order
        return None

    def _cancel_order(self, params: dict) -> dict:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Cancel-Order
        self._price(params["symbol"])
        order = self._find_order(params, self.open_orders.values())
        if order is None:  # unknown, or no longer open (filled, cancelled, expired)
            raise Answer(400, {"code": -2011, "msg": "Unknown order sent."})
        self._end_order(order, "CANCELED")
        return dict(order)

    def _open_order(self, params: dict) -> dict:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Query-Current-Open-Order
        order = self._find_order(params, self.open_orders.values())
        if order is None:
            raise Answer(400, {"code": -2013, "msg": "Order does not exist."})
        return dict(order)

    def _open_orders(self, params: dict) -> list[dict]:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Current-All-Open-Orders
        if "symbol" in params:
            self._price(params["symbol"])
        return [dict(o) for o in self.open_orders.values() if o["symbol"] == params.get("symbol", o["symbol"])]

    def _record_fill(self, order_id: int, symbol: str, side: str, position_side: str, quantity: Decimal,
                     price: Decimal, realized: Decimal, commission: Decimal, *, maker: bool = False) -> None:
        """One trade per fill, and its lines in the ledger, all at the fill's time."""
        self.next_trade_id += 1
        now = self.server_ms()
        self.trades.append({
            "buyer": side == "BUY", "commission": str(commission), "commissionAsset": "USDT", "id": self.next_trade_id,
            "maker": maker, "orderId": order_id, "price": str(price), "qty": str(quantity),
            "quoteQty": str(quantity * price), "realizedPnl": str(realized), "side": side, "positionSide": position_side,
            "symbol": symbol, "time": now,
        })
        if realized:
            self._add_income(symbol, "REALIZED_PNL", realized, now, trade_id=str(self.next_trade_id))
        self._add_income(symbol, "COMMISSION", -commission, now, trade_id=str(self.next_trade_id))

    def _add_income(self, symbol: str, income_type: str, amount: Decimal, time_ms: int, *, trade_id: str) -> None:
        self.next_tran_id += 1
        self.income.append({"symbol": symbol, "incomeType": income_type, "income": str(amount), "asset": "USDT",
                            "info": income_type, "time": time_ms, "tranId": self.next_tran_id, "tradeId": trade_id})

    def _income_history(self, params: dict) -> list[dict]:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Get-Income-History
        start = int(params.get("startTime", self.server_ms() - 7 * 24 * 3600 * 1000))
        end = int(params.get("endTime", 2**62))
        limit = min(int(params.get("limit", 100)), 1000)
        rows = [row for row in self.income if start <= row["time"] <= end
                and params.get("symbol", row["symbol"]) == row["symbol"]
                and params.get("incomeType", row["incomeType"]) == row["incomeType"]]
        return sorted(rows, key=lambda row: (row["time"], row["tranId"]))[:limit]

    def _account_trades(self, params: dict) -> list[dict]:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List
        self._price(params["symbol"])
        return [trade for trade in self.trades if trade["symbol"] == params["symbol"]
                and ("orderId" not in params or str(trade["orderId"]) == params["orderId"])]

    # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order
    def _new_algo_order(self, params: dict) -> dict:
        symbol, client_id = params["symbol"], params.get("clientAlgoId", "")
        rules = bundled_rules()[symbol]
        if params.get("algoType") != "CONDITIONAL" or params.get("type") not in (
                "STOP_MARKET", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"):
            raise Answer(400, {"code": -1116, "msg": "Invalid orderType."})
        if client_id in self.algo_orders:
            raise Answer(400, {"code": -4116, "msg": "ClientOrderId is duplicated."})
        amounts = _trailing_params(params, rules) if params["type"] == "TRAILING_STOP_MARKET" else {}
        if not amounts:
            _check_precision(params["triggerPrice"], rules.tick_size)
            if "quantity" in params:  # a part of the position (a take-profit ladder's level)
                _check_precision(params["quantity"], rules.step_size)
                amounts = {"quantity": params["quantity"], "reduceOnly": params.get("reduceOnly") == "true"}
            elif params.get("closePosition") != "true":
                raise Answer(400, NO_QUANTITY)
        self._check_position_mode(params)
        if params.get("closePosition") == "true" and params.get("reduceOnly") == "true":
            raise Answer(400, {"code": -1106, "msg": "Parameter 'reduceonly' sent when not required."})
        self.next_order_id += 1
        order = {"algoId": self.next_order_id, "clientAlgoId": client_id, "algoType": "CONDITIONAL",
                 "orderType": params["type"], "symbol": symbol, "side": params["side"],
                 "positionSide": params.get("positionSide", "BOTH"), "triggerPrice": params.get("triggerPrice", "0"),
                 "closePosition": params.get("closePosition") == "true", "algoStatus": "NEW",
                 "workingType": params.get("workingType", "CONTRACT_PRICE"), **amounts}
        if params["type"] == "TRAILING_STOP_MARKET" and "activatePrice" not in params:  # active at once, from the price now
            order["extreme"] = str(self._price(symbol))
        self.algo_orders[client_id] = order
        self._push_algo(order, "NEW")
        return order

    def _check_position_mode(self, params: dict) -> None:
        """What Binance refuses of an order in the account's position mode: a positionSide that does not
        match it (-4061), and in hedge mode any reduceOnly at all, even false (-1106)."""
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Order
        if self.hedge_mode and "reduceOnly" in params:
            raise Answer(400, {"code": -1106, "msg": "Parameter 'reduceonly' sent when not required."})
        if (params.get("positionSide", "BOTH") == "BOTH") == self.hedge_mode:
            raise Answer(400, {"code": -4061, "msg": "Order's position side does not match user's setting."})

    def _cancel_algo_order(self, params: dict) -> dict:
        order = self.algo_orders.pop(params.get("clientAlgoId", ""), None)
        if order is None:
            raise Answer(400, {"code": -2011, "msg": "Unknown order sent."})
        self._push_algo(order, "CANCELED")
        return {"algoId": order["algoId"], "clientAlgoId": order["clientAlgoId"], "code": "200", "msg": "success"}

    def trigger_protective(self, client_id: str) -> None:
        """The market reaches a protective order's trigger: it closes the whole position (test helper)."""
        with self.lock:
            algo = self.algo_orders.pop(client_id)
            symbol, position_side = algo["symbol"], algo["positionSide"]
            amount, _ = self.positions.get((symbol, position_side), [Decimal(0), Decimal(0)])
            self.prices[symbol] = Decimal(algo.get("fillPrice") or algo["triggerPrice"])
            self._push_algo(algo, "TRIGGERED", order_id=self.next_order_id + 1)
            if amount and (amount > 0) == (algo["side"] == "SELL"):
                quantity = min(abs(amount), Decimal(algo.get("quantity") or abs(amount)))
                self._fill_by_exchange(symbol, algo["side"], quantity, position_side, client_id=f"algo_{algo['algoId']}",
                                       order_type=algo["orderType"], reduce_only=True)
            self._push_algo(algo, "FINISHED", order_id=self.next_order_id)
            self._cross_resting(symbol, self.prices[symbol])

    def move_price(self, symbol: str, price: str) -> list[str]:
        """The mark price moves to `price`: every resting protective order whose trigger it reached
        triggers (ALGO_UPDATE, then its fill's ORDER_TRADE_UPDATE, as Binance reports them), filling
        at its trigger price, and every resting LIMIT order it crosses fills at its own price; the
        client ids of the protective orders that triggered."""
        with self.lock:
            for algo in self.algo_orders.values():
                if algo["symbol"] == symbol and algo["orderType"] == "TRAILING_STOP_MARKET":
                    _trail(algo, Decimal(price))
            crossed = [client_id for client_id, algo in self.algo_orders.items()
                       if algo["symbol"] == symbol and _crossed(algo, Decimal(price))]
            for client_id in crossed:
                self.trigger_protective(client_id)
            self.prices[symbol] = Decimal(price)
            self._cross_resting(symbol, Decimal(price))
        return crossed

    def move_price_on_next_order(self, symbol: str, price: str) -> None:
        """The market reaches `price` while the next order is on its way: the protective orders it
        triggers fill just before that order arrives (an exit alert racing our own take-profit)."""
        with self.lock:
            self.move_on_next_order = (symbol, price)

    def _push_algo(self, algo: dict, status: str, *, order_id: int | str = "") -> None:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Algo-Order-Update
        now = self.server_ms()
        self.push({"e": "ALGO_UPDATE", "T": now, "E": now, "o": {
            "caid": algo["clientAlgoId"], "aid": algo["algoId"], "at": "CONDITIONAL", "o": algo["orderType"],
            "s": algo["symbol"], "S": algo["side"], "ps": algo["positionSide"], "f": "GTC", "q": "0", "X": status,
            "ai": str(order_id), "ap": "0", "aq": "0", "act": "MARKET", "tp": algo["triggerPrice"], "p": "0",
            "V": "EXPIRE_MAKER", "wt": algo["workingType"], "pm": "NONE", "cp": algo["closePosition"], "pP": False,
            "R": False, "tt": 0, "gtd": 0, "rm": "",
        }})

    def _query_order(self, params: dict) -> dict:
        order = self._find_order(params, reversed(self.orders))
        if order is None:
            raise Answer(400, {"code": -2013, "msg": "Order does not exist."})
        return dict(order)  # a copy: a resting order may change while the answer is written

    def _set_leverage(self, params: dict) -> dict:
        leverage = int(params["leverage"])
        if not 1 <= leverage <= 125:
            raise Answer(400, {"code": -4028, "msg": "Leverage is not valid"})
        self._price(params["symbol"])
        self.leverage[params["symbol"]] = leverage
        # Reference: .../user-data-streams/Event-Account-Configuration-Update-previous-Leverage-Update
        now = self.server_ms()
        self.push({"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ac": {"s": params["symbol"], "l": leverage}})
        return {"symbol": params["symbol"], "leverage": leverage, "maxNotionalValue": "1000000"}

    def _symbol_config(self, params: dict) -> list[dict]:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Symbol-Config
        symbols = [params["symbol"]] if "symbol" in params else sorted(bundled_rules())
        for symbol in symbols:
            self._price(symbol)
        return [{"symbol": symbol, "marginType": self.margin_type.get(symbol, "CROSSED"), "isAutoAddMargin": "false",
                 "leverage": self.leverage.get(symbol, DEFAULT_LEVERAGE), "maxNotionalValue": "1000000"}
                for symbol in symbols]

    def _account_config(self) -> dict:
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/account/rest-api/Account-Config
        return {"feeTier": 0, "canTrade": self.can_trade, "canDeposit": True, "canWithdraw": True,
                "dualSidePosition": self.hedge_mode, "updateTime": 0, "multiAssetsMargin": self.multi_assets,
                "tradeGroupId": -1}

    def _api_trading_status(self) -> dict:
        # Reference: .../account/rest-api/Futures-Trading-Quantitative-Rules-Indicators
        indicators = {}
        if self.trading_lock is not None:
            where, until = self.trading_lock
            indicators[where] = [{"isLocked": True, "plannedRecoverTime": until, "indicator": "UFR", "value": 0.05,
                                  "triggerValue": 0.995}]
        return {"indicators": indicators, "updateTime": self.server_ms()}

    def _klines(self, params: dict) -> list[list]:
        """Binance's 1-minute klines: from startTime (or else the newest ones up to endTime, or now), at
        most `limit` (default 500, 1 to 1500), opened no later than endTime (or now)."""
        # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Kline-Candlestick-Data
        symbol = params.get("symbol", "")
        price = self._price(symbol)
        if params.get("interval") != "1m":
            raise Answer(400, {"code": -1120, "msg": "Invalid interval."})
        limit = int(params.get("limit", "500"))
        if not 1 <= limit <= 1500:
            raise Answer(400, {"code": -1130, "msg": "Data sent for parameter 'limit' is not valid."})
        # Weight by limit: [1, 100) 1, [100, 500) 2, [500, 1000] 5, over 1000 10.
        self.klines_weight += (1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10) - 1
        minute = 60_000
        now = self.server_ms()
        end = min(int(params.get("endTime", now)), now)
        if "startTime" in params:
            start = int(params["startTime"])
        else:
            start = end - end % minute - (limit - 1) * minute
        if symbol in self.kline_path:
            path = sorted((row for row in self.kline_path[symbol] if start <= row[0] <= end), key=lambda row: row[0])
        else:
            first = start + (-start) % minute
            path = [(at, price, price, price, price) for at in range(first, min(end, first + limit * minute) + 1, minute)]
        path = path[:limit] if "startTime" in params else path[-limit:]
        return [[at, str(o), str(h), str(low), str(c), str(rest[0] if rest else "0"), at + minute - 1, "0", 0, "0", "0", "0"]
                for at, o, h, low, c, *rest in path]

    def _exchange_info(self) -> dict:
        info = json.loads(SNAPSHOT.read_text())
        for entry in info["symbols"]:
            entry.update(self.listing.get(entry["symbol"], {}))
        return info

    def _set_margin_type(self, params: dict) -> dict:
        symbol, wanted = params["symbol"], params["marginType"]
        if self.margin_type.get(symbol, "CROSSED") == wanted:
            raise Answer(400, {"code": -4046, "msg": "No need to change margin type."})
        self.margin_type[symbol] = wanted
        return {"code": 200, "msg": "success"}

    def _unrealized(self) -> Decimal:
        return sum(((self.prices.get(s, e) - e) * a for (s, _), (a, e) in self.positions.items()), Decimal(0))

    def _available(self) -> Decimal:
        used = sum((abs(a) * e / self.leverage.get(s, DEFAULT_LEVERAGE) for (s, _), (a, e) in self.positions.items()),
                   Decimal(0))
        return self.wallet + self._unrealized() - used

    def _account(self) -> dict:
        unrealized = self._unrealized()
        return {"totalWalletBalance": str(self.wallet), "totalUnrealizedProfit": str(unrealized),
                "totalMarginBalance": str(self.wallet + unrealized), "availableBalance": str(self._available()),
                "assets": [], "positions": []}

    def _position_risk(self) -> list[dict]:
        return [
            {"symbol": s, "positionSide": side, "positionAmt": str(a), "entryPrice": str(e),
             "markPrice": str(self.prices.get(s, e)), "unRealizedProfit": str((self.prices.get(s, e) - e) * a),
             "updateTime": self.position_times.get((s, side), 0)}
            for (s, side), (a, e) in self.positions.items() if a != 0
        ]


def _quiet_when_the_client_died(report):  # a worker SIGKILLed mid-request is what the fault tests do
    def handle_error(request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    return handle_error


NO_QUANTITY = {"code": -1102, "msg": "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed."}
POST_ONLY_REJECTED = {"code": -5022, "msg": "Due to the order could not be executed as maker, the Post Only order "
                      "will be rejected. The order will not be recorded in the order history"}


def _limit_terms(params: dict, rules) -> tuple[Decimal, str]:  # noqa: ANN001 - the bundled SymbolRules
    """What Binance checks of a LIMIT order's price and timeInForce: both sent, a known timeInForce,
    no more decimals than the symbol's pricePrecision (-1111), within PRICE_FILTER's minPrice and
    maxPrice (-4013/-4016), on its tick (-4014). The price, and the timeInForce."""
    # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Order
    for name in ("timeInForce", "price"):
        if not params.get(name):
            raise Answer(400, {"code": -1102, "msg": f"Mandatory parameter '{name}' was not sent, was empty/null, "
                                                     "or malformed."})
    time_in_force = params["timeInForce"]
    if time_in_force not in ("GTC", "GTX", "IOC", "FOK"):
        raise Answer(400, {"code": -1115, "msg": "Invalid timeInForce."})
    text = params["price"]
    try:
        price = Decimal(text)
    except ArithmeticError:
        raise Answer(400, {"code": -1102, "msg": "Mandatory parameter 'price' was not sent, was empty/null, "
                                                 "or malformed."}) from None
    precision, low, high = _price_filter(params["symbol"])
    if "e" in text.lower() or len(text.partition(".")[2]) > precision or not price.is_finite():
        raise Answer(400, {"code": -1111, "msg": "Precision is over the maximum defined for this asset."})
    if price < low:
        raise Answer(400, {"code": -4013, "msg": "Price less than min price."})
    if price > high:
        raise Answer(400, {"code": -4016, "msg": "Price greater than max price."})
    if (price - low) % rules.tick_size:
        raise Answer(400, {"code": -4014, "msg": "Price not increased by tick size."})
    return price, time_in_force


@cache
def _price_filter(symbol: str) -> tuple[int, Decimal, Decimal]:
    """The symbol's pricePrecision, and PRICE_FILTER's minPrice and maxPrice, from the bundled snapshot."""
    entry = next(e for e in json.loads(SNAPSHOT.read_text())["symbols"] if e["symbol"] == symbol)
    price_filter = next(f for f in entry["filters"] if f["filterType"] == "PRICE_FILTER")
    return int(entry["pricePrecision"]), Decimal(price_filter["minPrice"]), Decimal(price_filter["maxPrice"])


def _trailing_params(params: dict, rules) -> dict:  # noqa: ANN001 - the bundled SymbolRules
    """What Binance checks of a TRAILING_STOP_MARKET: a callbackRate from 0.1 to 10, a quantity on the
    step (no closePosition), an activatePrice on the tick when given."""
    # Reference: https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/New-Algo-Order
    rate = Decimal(params.get("callbackRate", "0"))
    if not Decimal("0.1") <= rate <= 10:
        raise Answer(400, {"code": -2007, "msg": "Invalid callBack rate."})
    if params.get("closePosition") == "true" or "quantity" not in params:
        raise Answer(400, NO_QUANTITY)
    _check_precision(params["quantity"], rules.step_size)
    trailing = {"callbackRate": params["callbackRate"], "quantity": params["quantity"],
                "reduceOnly": params.get("reduceOnly") == "true"}
    if "activatePrice" in params:
        _check_precision(params["activatePrice"], rules.tick_size)
        trailing["activatePrice"] = params["activatePrice"]
    return trailing


def _trail(algo: dict, price: Decimal) -> None:
    """A trailing stop activates once the mark price reaches its activatePrice (a SELL's: at or above),
    then follows the best price: a SELL's highest, a BUY's lowest; it triggers `callbackRate` % back
    from it, filling at the price that reached it."""
    sells = algo["side"] == "SELL"
    if "extreme" not in algo:
        activate = Decimal(algo["activatePrice"])
        if not (price >= activate if sells else price <= activate):
            return
        algo["extreme"] = str(price)
    algo["extreme"] = str((max if sells else min)(Decimal(algo["extreme"]), price))
    algo["fillPrice"] = str(price)


def _crossed(algo: dict, price: Decimal) -> bool:
    """A long's stop (a SELL STOP_MARKET) triggers at or below its price, its target at or above; a
    trailing stop once active, `callbackRate` % back from its best price."""
    if algo["orderType"] == "TRAILING_STOP_MARKET":
        if "extreme" not in algo:
            return False
        extreme, back = Decimal(algo["extreme"]), Decimal(algo["extreme"]) * Decimal(algo["callbackRate"]) / 100
        return price <= extreme - back if algo["side"] == "SELL" else price >= extreme + back
    falls = (algo["orderType"] == "STOP_MARKET") == (algo["side"] == "SELL")
    trigger = Decimal(algo["triggerPrice"])
    return price <= trigger if falls else price >= trigger


def _check_precision(text: str, step: Decimal) -> None:
    """Binance reads the string: "0.1110000000" has more decimals than a 0.001 step allows (-1111),
    although it is the same number as "0.111"."""
    decimals = len(text.partition(".")[2])
    if decimals > max(0, -step.normalize().as_tuple().exponent) or "e" in text.lower():
        raise Answer(400, {"code": -1111, "msg": "Precision is over the maximum defined for this asset."})


def _handler(fake: FakeBinance):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Binance
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms delayed-ACK stall

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            time.sleep(fake.latency / 2)  # on its way to the exchange
            over, counts = fake.order_counted() if (self.command, urlsplit(self.path).path) == ORDER else (False, {})
            if over:
                status, payload, extra = 429, {"code": -1015, "msg": "Too many new orders."}, {"Retry-After": "1"}
            else:
                status, payload, extra = fake.handle(self.command, self.path, self.headers, body)
            extra = {**extra, **counts}
            time.sleep(fake.latency / 2)  # the answer on its way back
            data = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-MBX-USED-WEIGHT-1M", str(fake.used_weight()))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a stall test): so would Binance's answer be lost

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, format, *args) -> None:
            pass

    return Handler
