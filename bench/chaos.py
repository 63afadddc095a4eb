"""Chaos proof: no signal lost, no order doubled, while workers die and the exchange misbehaves (#9).

A throw-away deployment — a fresh database (PostgreSQL `chaos_<pid>`, created and dropped; or a
SQLite file), the Redis broker on a database of its own (11, flushed) or the ORM broker, TWO
`qcluster` processes, gunicorn, and the fake Binance exchange served from this process — takes N
webhooks at up to R per second over ≥ 8 symbols and three strategies that share them (opens, adds,
closes, reversals), a fifth of them exact copies of another (half sent at the same instant, half up
to 3 s later), each resent as TradingView does after a 5xx or a timeout. Most go out at a steady pace;
the rest in bar-close bursts, as TradingView sends them at a candle's close (many strategies and
symbols in the same second): half a period into the load and then every --burst-every s (5), while
inside the load's span, --burst-size (60) distinct alerts over all the run's symbols leave within
0.5 s. The burst alerts count within --signals (they take at most half the distinct signals), so the
load lasts as long as without them; --no-bursts sends them all at the steady pace. Meanwhile:
- every few seconds one of the two clusters, picked at random, is SIGKILLed (its whole process group)
  and restarted at once, as systemd's Restart=always would; and 0.2–0.6 s after each burst's first
  alert, one of the two qclusters likewise, so that a kill lands while the burst is taken in and run;
- the exchange (tests/fakes/binance_server.py, RandomFaults, seeded) answers each new order, with
  probability p each, 503 after filling, a stall of 1.5 s past the client's 1 s timeout (then fills),
  429 with Retry-After 1, -1021, or 500 before filling; and each order lookup, with probability p, 503.
- the ladder phase (on unless --no-ladder or --no-stream): a fourth strategy, CHAOS LADDER, trades
  LINKUSDT and XRPUSDT alone (the three others leave them to it: protection is the symbol's, and follows
  the strategy of the signal that last traded it) with a 2 % stop-loss, a take-profit ladder of 1 %/40,
  2 %/30 and 3 %/30 and breakeven after level 1; every --move-every s (0.5) one of its symbols' prices
  steps through ±1.5/2.5/3.5 % of its start price (FakeBinance.move_price), from the start until the
  ladder's last signal was executed, so that levels fill, stops move to breakeven and positions close
  through the ladder or the stop while the workers that execute and settle them are killed. The report
  counts the levels triggered, the breakeven moves and the kills while a ladder signal executed. The exchange's own
  fills reach us only through the stream, which Binance does not replay: a move waits for the stream
  and spares it from kills for 3 s. After the run, up to 95 s (Q_CLUSTER's retry of a killed task) for
  the protection to settle: no two open algo orders of one symbol, side, kind and level; every open
  position of the ladder's symbols under a stop that covers it; no algo order left on a flat symbol.
Then it waits until every accepted signal is final and no order's outcome is unknown, and checks
what the webhooks were answered, what the database recorded and what the exchange did against each
other (bench/chaos_checks.py), the burst signals like every other. The report counts the bursts, the
kills that landed during one (from its first alert until its last signal was final), and the send →
first order at the exchange time of the burst signals against the steady ones. Exit status 1 on any
loss, duplicate or disagreement.

    .venv/bin/python bench/chaos.py                          # PostgreSQL + Redis, 1000 webhooks at 100/s
    .venv/bin/python bench/chaos.py --signals 200 --rate 50  # the CI variant (tests/trading/test_chaos.py)
    .venv/bin/python bench/chaos.py --database sqlite --broker orm --rate 50
    .venv/bin/python bench/chaos.py --no-bursts               # the steady pace only
    .venv/bin/python bench/chaos.py --no-ladder               # three strategies, no protective orders
"""

import argparse
import http.client
import json
import math
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from chaos_checks import Post, Report, check_all, protection_gaps, stored_rows, tallies, when  # noqa: E402
from chaos_cluster import Cluster, Kill, Killer, Peek, become_subreaper, broker, database  # noqa: E402

from common import PASSPHRASE, environment, machine, manage, serving, summary  # noqa: E402
from tests.fakes.binance_server import API_KEY, API_SECRET, FakeBinance, RandomFaults  # noqa: E402
from trading.exchange.rules import bundled_rules  # noqa: E402

PRICES = {"BTCUSDT": "45000", "ETHUSDT": "3000", "BNBUSDT": "600", "SOLUSDT": "150", "XRPUSDT": "0.6",
          "DOGEUSDT": "0.15", "ADAUSDT": "0.5", "LINKUSDT": "15", "AVAXUSDT": "30", "LTCUSDT": "80",
          "SUIUSDT": "2", "1000PEPEUSDT": "0.01"}
ACTIONS = (("buy", 0.4), ("sell", 0.4), ("close", 0.2))
RESEND_AFTER = 5.0  # seconds; TradingView waits 5 s before resending after a 5xx, up to 3 times
# Webhooks in flight at once, at most. More than the web tier drains within SEND_TIMEOUT turns into
# a storm of resends (each timed-out copy comes back, while gunicorn still processes the first).
SENDERS = 32
SEND_TIMEOUT = 3.0  # seconds; TradingView cancels a webhook request after 3 s
BURST_WINDOW = 0.5  # seconds: a bar close's alerts all leave within this
BURST_KILL = (0.2, 0.6)  # seconds after a burst's first alert: when the kill planned into it lands
# The ladder phase: a fourth strategy of its own symbols (its protective orders are the symbol's: a signal of
# another strategy on them would bring them in line with that strategy's settings, none), with a stop-loss,
# a three-level take-profit ladder and breakeven after level 1; the price of its symbols moves in steps from
# the start price, so that levels fill, stops move to breakeven and positions close through the ladder.
LADDER = "CHAOS LADDER"
LADDER_SYMBOLS = ("LINKUSDT", "XRPUSDT")  # among the first 8 of PRICES: in every run
LADDER_BOOK = {"leverage": 5, "sizing": "signal", "stop_loss": "2", "breakeven_after": 1, "breakeven_to": "entry",
               "take_profit_ladder": [{"pct": "1", "share": "40"}, {"pct": "2", "share": "30"}, {"pct": "3", "share": "30"}]}
# × the start price, one step after the other: a long opened near the start reaches level 1, 2 then 3; one
# opened high is stopped on the way back; a short the same, downwards.
LADDER_STEPS = (1.015, 1.025, 1.035, 1.0, 0.985, 0.975, 0.965, 1.0)
STREAM_QUIET = 3.0  # seconds after a price move in which the stream process is not killed (see Mover)
PROTECTION_PATIENCE = 95.0  # seconds for protection to settle at the end: Q_CLUSTER retry (90 s) re-runs a killed task
PENDING_SQL = "SELECT COUNT(*) FROM trading_signal WHERE status IN ('queued', 'executing')"
UNRESOLVED_SQL = "SELECT COUNT(*) FROM trading_order WHERE status IN ('sent', 'unknown', 'NEW', 'PARTIALLY_FILLED')"
DUMP = """
import json
from django.conf import settings
from django.db.models import F
from trading.models import Execution, Order, Position, ProtectiveOrder, Signal
print(json.dumps({
    "max_delay": settings.EXECUTION_MAX_DELAY,
    "signals": list(Signal.objects.values("id", "status", "http_status", "duplicate_count", "received_at", "queued_at",
                                          "intake_us", "idempotency_key", "reason", "symbol", "action", "strategy")),
    "executions": list(Execution.objects.values("id", "signal_id", "status", "reason", "received_at", "started_at",
                                                "sent_at", "finished_at", "error_code", "attempts", "protection_alarm")),
    "orders": list(Order.objects.annotate(signal_id=F("execution__signal_id")).values(
        "id", "execution_id", "signal_id", "leg", "purpose", "client_order_id", "symbol", "side", "quantity", "status",
        "executed_qty", "applied_qty", "error_code", "error_message", "sent_at", "acknowledged_at", "source",
        "exchange_order_id")),
    "positions": {p["symbol"]: p["amount"] for p in Position.objects.filter(position_side="BOTH").values("symbol", "amount")},
    "protective": list(ProtectiveOrder.objects.annotate(signal_id=F("execution__signal_id")).values(
        "id", "signal_id", "client_id", "symbol", "position_side", "kind", "level", "status", "quantity", "trigger_price",
        "created_at", "updated_at")),
}, default=str))
"""


# --- the deployment ---------------------------------------------------------------------------------
def django(env: dict, *args: str) -> str:
    """manage.py, showing what it said when it fails (bench/common.py's manage() keeps it)."""
    try:
        return manage(env, *args)
    except subprocess.CalledProcessError as error:
        sys.stderr.write(error.stderr or "")
        raise


# --- the load -----------------------------------------------------------------------------------------
@dataclass
class Planned:
    strategy: str
    symbol: str
    action: str
    quantity: str | None  # for the strategy that sizes by the alert's quantity
    spelled: str  # the symbol as the alert writes it: BTCUSDT, BTCUSDT.P or BINANCE:BTCUSDT.P
    burst: int | None = None  # the bar-close burst it goes out in, if any


@dataclass
class Burst:
    """A bar close: its distinct alerts over all the symbols, within BURST_WINDOW s, and the kill
    planned into it; `first`, `last` and `drained` are filled in after the run (measure_bursts)."""

    number: int
    at: float  # seconds after the start: its first alert is due
    kill_at: float  # seconds after the start: a qcluster is killed
    signals: list[int]  # the distinct signals it carries (their copies are not counted)
    first: float = 0.0  # epoch seconds: its first alert sent
    last: float = 0.0  # its last alert sent
    drained: float = 0.0  # its last signal final (its execution finished), or `last` if later
    running: list[tuple[float, float]] = field(default_factory=list)  # its executions' (started, finished)

    def during(self, kill: Kill) -> bool:
        """The kill landed between the burst's first alert and its last signal final."""
        return self.first <= kill.at <= self.drained

    def hit(self, kill: Kill) -> bool:
        """The kill landed while one of the burst's signals was being executed."""
        return any(started <= kill.at <= finished for started, finished in self.running)


def strategies(symbols: list[str], ladder: bool = False) -> dict[str, dict]:
    """Three strategies sharing symbols (so they share each symbol's one position); with the ladder
    phase, a fourth on LADDER_SYMBOLS alone, which the three leave to it."""
    if ladder:
        symbols = [symbol for symbol in symbols if symbol not in LADDER_SYMBOLS]
    third = max(1, len(symbols) // 3)
    books = {
        "CHAOS ALLOC": {"products": symbols, "leverage": 5, "allocation_pct": "0.5"},
        "CHAOS SIGNAL": {"products": symbols[:-third], "leverage": 3, "sizing": "signal"},
        "CHAOS LONG": {"products": symbols[third:], "leverage": 10, "allocation_pct": "0.3", "direction": "long"},
    }
    if ladder:
        books[LADDER] = {"products": list(LADDER_SYMBOLS), **LADDER_BOOK}
    return books


def alert_quantity(symbol: str) -> str:
    """About twice the symbol's minimum order value, rounded up to its step."""
    rules = bundled_rules()[symbol]
    target = max(2 * rules.min_notional, Decimal(50)) / Decimal(PRICES[symbol])
    return str((math.ceil(target / rules.step_size) * rules.step_size).normalize())


def burst_moments(span: float, distinct: int, every: float, size: int) -> list[float]:
    """When the bar closes fall (seconds after the start): half a period in, then every `every` s,
    while a burst ends inside the load's span and the bursts take at most half the distinct signals."""
    if every <= 0 or size <= 0:
        return []
    fit = max(0, math.floor((span - BURST_WINDOW) / every - 0.5) + 1)
    return [(number + 0.5) * every for number in range(min(fit, distinct // 2 // size))]


def alert(rng: random.Random, books: dict[str, dict], name: str, symbol: str, burst: int | None = None) -> Planned:
    """One alert of strategy `name` on `symbol`: its action, its quantity (if the strategy sizes by the
    alert's) and how it spells the symbol, drawn at random."""
    action = rng.choices([a for a, _ in ACTIONS], [w for _, w in ACTIONS])[0]
    quantity = alert_quantity(symbol) if books[name].get("sizing") == "signal" else None
    spelled = rng.choices([symbol, f"{symbol}.P", f"BINANCE:{symbol}.P"], [8, 1, 1])[0]
    return Planned(name, symbol, action, quantity, spelled, burst)


def plan(rng: random.Random, count: int, duplicates: float, rate: float, symbols: list[str],
         bursts: tuple[float, int] | None, ladder: bool = False) -> tuple[list[Planned], list[tuple[float, Post]], list[Burst]]:
    """The distinct signals; the posts carrying them, (seconds after the start, Post), in order; and
    the bar-close bursts (every, size) among them. Without bursts, the same plan for a seed as before
    they existed: the steady signals are drawn first (and without the ladder, as before it)."""
    books = strategies(symbols, ladder)
    distinct = count - round(count * duplicates)
    span = count / rate
    moments = burst_moments(span, distinct, *bursts) if bursts else []
    size = bursts[1] if bursts else 0
    steady = distinct - len(moments) * size
    signals, due = [], []
    for index in range(steady):
        name = rng.choice(list(books))
        signals.append(alert(rng, books, name, rng.choice(books[name]["products"])))
        due.append(index * span / steady)
    planned_bursts = []
    for number, at in enumerate(moments):
        order = rng.sample(symbols, len(symbols))  # every symbol in each burst, round and round
        offsets = sorted([0.0] + [rng.uniform(0, BURST_WINDOW) for _ in range(size - 1)])
        members = []
        for position, offset in enumerate(offsets):
            symbol = order[position % len(order)]
            name = rng.choice([name for name, book in books.items() if symbol in book["products"]])
            members.append(len(signals))
            signals.append(alert(rng, books, name, symbol, number))
            due.append(at + offset)
        planned_bursts.append(Burst(number, at, at + rng.uniform(*BURST_KILL), members))
    timeline = [(due[index], Post(index, "original")) for index in range(distinct)]
    for _ in range(count - distinct):
        index = rng.randrange(distinct)
        later = rng.random() < 0.5
        offset = rng.uniform(0.2, 3.0) if later else 0.0
        timeline.append((due[index] + offset, Post(index, "later duplicate" if later else "concurrent duplicate")))
    timeline.sort(key=lambda item: (item[0], item[1].kind != "original"))
    return signals, timeline, planned_bursts


def body_of(planned: Planned, index: int, run: str, price: str | None = None) -> bytes:
    data = {"action": planned.action, "symbol": planned.spelled, "price": price or PRICES[planned.symbol],
            "strategy": planned.strategy,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "id": f"chaos-{run}-{index}",
            "passphrase": PASSPHRASE}
    if planned.quantity:
        data["quantity"] = planned.quantity
    return json.dumps(data).encode()


class Bodies:
    """Each distinct signal's body, written when its first copy actually leaves (its `time` is then
    now, however long the copy waited for a sender), and the same bytes for every later copy."""

    def __init__(self, signals: list[Planned], run: str, fake: FakeBinance | None = None) -> None:
        self.signals, self.run, self.fake = signals, run, fake
        self.bodies: dict[int, bytes] = {}
        self.lock = threading.Lock()

    def of(self, index: int) -> bytes:
        with self.lock:
            if index not in self.bodies:
                planned = self.signals[index]
                price = str(self.fake.prices[planned.symbol]) if self.fake is not None else None  # moved, in the ladder phase
                self.bodies[index] = body_of(planned, index, self.run, price)
            return self.bodies[index]


def deliver(base: str, post: Post, bodies: Bodies) -> None:
    """Post one body; resend it after a 5xx or no answer, as TradingView does (up to 3 times)."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    post.sent_at = time.time()
    body = bodies.of(post.signal)
    for _ in range(4):
        try:
            connection = http.client.HTTPConnection(host, port, timeout=SEND_TIMEOUT)
            connection.request("POST", "/webhook", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            status, text = response.status, response.read()
            connection.close()
            answer = json.loads(text) if text else {}
        except (OSError, http.client.HTTPException, ValueError) as error:
            status, answer = 0, {"error": f"{type(error).__name__}: {error}"}
        post.answers.append((time.time(), status, answer))
        if 0 < status < 500:
            return
        time.sleep(RESEND_AFTER)


def load(base: str, timeline: list, bodies: Bodies, start: float) -> float:
    """Send every post at its time after `start`; returns when the load ended."""
    with ThreadPoolExecutor(max_workers=SENDERS) as pool:
        for due, post in timeline:
            time.sleep(max(0.0, start + due - time.time()))
            post.due = start + due
            pool.submit(deliver, base, post, bodies)
    return time.time()


def achieved_rate(timeline: list, start: float) -> str:
    """The rate reached while the distinct signals went out (copies sent later trail for 3 s), how
    late the sender was, and how long the first answers took."""
    posts = [post for _, post in timeline]
    span = max(post.sent_at for post in posts if post.kind == "original") - start
    rate = sum(post.sent_at - start <= span for post in posts) / span
    lag = max(post.sent_at - post.due for post in posts)
    answered = [(post.answers[0][0] - post.sent_at) * 1000 for post in posts if post.answers]
    return (f"the distinct signals over {span:.1f} s, {rate:.0f} webhooks/s (sender at most {lag * 1000:.0f} ms late); "
            f"webhook answer ms {summary(answered)}")


# --- the ladder phase's market --------------------------------------------------------------------------
class Mover(threading.Thread):
    """Every `every` s, the next of LADDER_SYMBOLS in turn moves to its next step of LADDER_STEPS × its
    start price (fake.move_price: the protective orders the price reaches trigger and fill there), from
    the start until the load has ended, every step was taken at least once and no signal of the ladder's
    is pending any more (or every signal is final): the positions its last alerts left stay open, for
    the checks to find under their stop. The exchange's own fills reach us only through the user data
    stream, which Binance does not replay: each move waits for the stream to be connected and keeps it
    alive for STREAM_QUIET s (Killer.quiet_stream); the workers that execute the signals and settle the
    protection afterwards are killed as ever."""

    def __init__(self, fake: FakeBinance, killer: Killer, every: float, peek: Peek) -> None:
        super().__init__(name="mover", daemon=True)
        self.fake, self.killer, self.every, self.peek = fake, killer, every, peek
        self.moves: list[tuple[float, str, str, list[str]]] = []  # (at, symbol, price, client ids triggered)
        self.missed = 0  # moves skipped: no stream connected within a few seconds
        self.loaded, self.final = threading.Event(), threading.Event()  # the load has ended; every signal is final

    def done(self, step: int) -> bool:
        if step < len(LADDER_STEPS) * len(LADDER_SYMBOLS) or not self.loaded.is_set():
            return False
        return self.final.is_set() or self.peek.scalar(f"{PENDING_SQL} AND strategy = '{LADDER}'") == 0

    def run(self) -> None:
        symbols, step = LADDER_SYMBOLS, 0
        due = time.time() + self.every
        while True:
            time.sleep(max(0.0, due - time.time()))
            due = max(due + self.every, time.time())  # no catching up after a wait: one move at a time
            if self.done(step):  # checked just before a move: none after the ladder's last signal
                break
            symbol = symbols[step % len(symbols)]
            factor = Decimal(str(LADDER_STEPS[(step // len(symbols)) % len(LADDER_STEPS)]))
            step += 1
            if not self.stream_ready():
                self.missed += 1
                continue
            tick = bundled_rules()[symbol].tick_size
            price = str((Decimal(PRICES[symbol]) * factor).quantize(tick))
            self.moves.append((time.time(), symbol, price, self.fake.move_price(symbol, price)))

    def stream_ready(self, patience: float = 5.0) -> bool:
        """The stream is connected (not the one a kill just ended) and will not be killed for a while."""
        deadline = time.time() + patience
        while time.time() < deadline:
            self.killer.quiet_stream(STREAM_QUIET)
            stream_kills = [kill.at for kill in self.killer.kills if kill.cluster == "userstream"]
            if self.fake.streams and time.time() - max(stream_kills, default=0.0) > 0.5:
                return True
            time.sleep(0.05)
        return False

    def finish(self) -> None:
        self.final.set()
        self.join()


def wait_for_protection(fake: FakeBinance, patience: float, calm: float = 3.0) -> float | None:
    """Until the exchange's protective orders violate nothing protection_gaps checks, with no algo
    order placed, cancelled or triggered for `calm` s (a settle task or a breakeven move may still be
    under way); the moment, or None past `patience` s (a killed task is retried after Q_CLUSTER's retry)."""
    deadline = time.time() + patience
    while time.time() < deadline:
        with fake.lock:
            positions = {symbol: str(amount) for (symbol, side), (amount, _) in fake.positions.items() if side == "BOTH"}
            algo_orders = [dict(order) for order in fake.algo_orders.values()]
            last = max((event["T"] for event in fake.pushed if event["e"] == "ALGO_UPDATE"), default=0) / 1000
        gaps = protection_gaps(positions, algo_orders, list(LADDER_SYMBOLS))
        if not any(gaps.values()) and time.time() - last >= calm:
            return time.time()
        time.sleep(0.5)
    return None


# --- waiting and reading ------------------------------------------------------------------------------
def wait_until_settled(peek: Peek, killer: Killer, timeout: float, start: float) -> tuple[float | None, float | None]:
    """Until every signal is final (then the kills stop) and no order's outcome is unknown (the
    minute sweep resolves those). Returns when each happened, or None past the timeout."""
    deadline, final_at, shown = time.time() + timeout, None, 0.0
    while time.time() < deadline:
        pending, unresolved = peek.scalar(PENDING_SQL), peek.scalar(UNRESOLVED_SQL)
        if pending == 0 and final_at is None:
            final_at = time.time()
            killer.stop()
        if pending == 0 and unresolved == 0:
            return final_at, time.time()
        if time.time() - shown >= 5:
            shown = time.time()
            print(f"  t={shown - start:5.1f} s  pending signals {pending:4d}  orders unresolved {unresolved:3d}  "
                  f"kills {len(killer.kills)}", flush=True)
        time.sleep(0.5)
    return final_at, None


def exchange_state(fake: FakeBinance) -> dict:
    with fake.lock:
        return {
            "orders": [dict(order) for order in fake.orders],
            "positions": {symbol: str(amount) for (symbol, side), (amount, _) in fake.positions.items() if side == "BOTH"},
            "requests": [(r.at, r.method, r.params.get("newClientOrderId") or r.params.get("origClientOrderId"))
                         for r in fake.requests if r.path == "/fapi/v1/order"],
            # The exchange's own fills (a protective order triggered: `algo_<id>`), as it pushed them.
            "triggered": [{"clientOrderId": o["c"], "orderId": o["i"], "symbol": o["s"], "side": o["S"],
                           "positionSide": o["ps"], "executedQty": o["l"], "avgPrice": o["L"], "updateTime": o["T"],
                           "reduceOnly": o["R"]}
                          for o in (event["o"] for event in fake.pushed if event["e"] == "ORDER_TRADE_UPDATE")
                          if o["x"] == "TRADE" and o["c"].startswith("algo_")],
            "algo_orders": [dict(order) for order in fake.algo_orders.values()],  # open at the end
            "algo_events": [{**event["o"], "T": event["T"]} for event in fake.pushed if event["e"] == "ALGO_UPDATE"],
        }


# --- the report ---------------------------------------------------------------------------------------
def evidence(signal_id: int, dump: dict, exchange: dict, faults: RandomFaults, start: float) -> str:
    """Everything about one signal: its row, its execution, its orders, and what the exchange did."""
    lines = [f"--- signal {signal_id}"]
    lines += [f"  signal    {row}" for row in dump["signals"] if row["id"] == signal_id]
    lines += [f"  execution {row}" for row in dump["executions"] if row["signal_id"] == signal_id]
    orders = [row for row in dump["orders"] if row["signal_id"] == signal_id]
    lines += [f"  order     {row}" for row in orders]
    ids = {row["client_order_id"] for row in orders}
    lines += [f"  exchange  t={at - start:7.3f} {method} {cid}" for at, method, cid in exchange["requests"] if cid in ids]
    lines += [f"  fault     t={at - start:7.3f} {method} {cid}: {kind}" for at, method, cid, kind in faults.log if cid in ids]
    lines += [f"  fill      t={fill['updateTime'] / 1000 - start:7.3f} {fill['clientOrderId']} #{fill['orderId']} {fill['side']} "
              f"{fill['executedQty']} @ {fill['avgPrice']}{' reduce-only' if fill['reduceOnly'] else ''}"
              for fill in exchange["orders"] if fill["clientOrderId"] in ids]
    return "\n".join(lines)


def measure_bursts(done: "Run", dump: dict) -> None:
    """Fill in when each burst's alerts left and when its last signal was final."""
    rows, sent = stored_rows(dump), first_sent(done.timeline)
    spans = {row["signal_id"]: (when(row["started_at"]), when(row["finished_at"])) for row in dump["executions"]}
    for burst in done.bursts:
        moments = [sent[index] for index in burst.signals if index in sent]
        burst.first, burst.last = min(moments, default=0.0), max(moments, default=0.0)
        ids = [rows[index]["id"] for index in burst.signals if index in rows]
        burst.running = [(started, finished) for started, finished in (spans.get(sid, (None, None)) for sid in ids)
                         if started is not None and finished is not None]
        burst.drained = max([burst.last] + [finished for _, finished in burst.running])


def first_sent(timeline: list) -> dict[int, float]:
    """Signal index → when its first copy left."""
    sent: dict[int, float] = {}
    for _, post in timeline:
        if post.sent_at:
            sent[post.signal] = min(sent.get(post.signal, post.sent_at), post.sent_at)
    return sent


def send_to_order(done: "Run", dump: dict, exchange: dict) -> tuple[list[float], list[float]]:
    """ms from a signal's first copy sent to its first order request at the exchange: (burst, steady)."""
    signal_of = {order["client_order_id"]: order["signal_id"] for order in dump["orders"]}
    ordered: dict[int, float] = {}
    for at, method, cid in exchange["requests"]:
        if method == "POST" and cid in signal_of:
            ordered[signal_of[cid]] = min(ordered.get(signal_of[cid], at), at)
    rows, sent = stored_rows(dump), first_sent(done.timeline)
    burst: list[float] = []
    steady: list[float] = []
    for index, row in rows.items():
        if row["id"] in ordered and index in sent:
            (steady if done.signals[index].burst is None else burst).append((ordered[row["id"]] - sent[index]) * 1000)
    return burst, steady


def burst_lines(done: "Run", dump: dict, exchange: dict) -> list[str]:
    """The bursts, the kills that landed during one, and the burst signals' send → order time."""
    if not done.bursts:
        return ["bursts: none" + (" (--no-bursts)" if not done.args.bursts else
                                  " (no burst fits the load's span, or half the distinct signals)")]
    start = done.times["start"] or 0.0
    measure_bursts(done, dump)
    during = [kill for kill in done.kills if any(burst.during(kill) for burst in done.bursts)]
    sending = [kill for kill in during if any(burst.first <= kill.at <= burst.last for burst in done.bursts)]
    hits = [kill for kill in during if any(burst.hit(kill) for burst in done.bursts)]
    alerts = sum(len(burst.signals) for burst in done.bursts)
    lines = [f"bursts: {len(done.bursts)} bar close{'s' if len(done.bursts) > 1 else ''} of {done.args.burst_size} alerts "
             f"over all {done.args.symbols} symbols, each within {BURST_WINDOW:g} s ({alerts} of the {len(done.signals)} "
             f"distinct signals); kills during a burst (its first alert → its last signal final): {len(during)} of "
             f"{len(done.kills)} ({sum(k.planned for k in during)} planned into it, {sum(not k.planned for k in during)} "
             f"random; {sum(k.lanes_held > 0 for k in during)} while holding lanes, {len(sending)} while its alerts "
             f"were still arriving, {len(hits)} while one of its signals was executing)"]
    for burst in done.bursts:
        kills = [k for k in done.kills if burst.during(k)]
        lines.append(f"  burst {burst.number + 1} at {burst.first - start:.1f} s: sent over {burst.last - burst.first:.2f} s, "
                     f"its last signal final {burst.drained - burst.first:.1f} s after its first alert; kills in it: "
                     + (", ".join(f"{k.at - start:.1f}s:{k.cluster}{'*' if k.planned else ''}"
                                  f"{'' if burst.hit(k) else ' (none of its signals executing)'}"
                                  f"{f' ({k.lanes_held} lanes held)' if k.lanes_held else ''}" for k in kills) or "none"))
    in_bursts, steady = send_to_order(done, dump, exchange)
    lines.append("send → first order at the exchange ms: burst signals "
                 + (summary(in_bursts) if in_bursts else "none") + "; steady " + (summary(steady) if steady else "none"))
    return lines


def ladder_lines(done: "Run") -> list[str]:
    """The ladder phase's market: the moves, what they triggered, the stream kills spared for them."""
    if done.mover is None:
        return ["ladder phase: none" + (" (--no-ladder)" if done.args.stream else " (it needs the user data stream)")]
    start, moves = done.times["start"] or 0.0, done.mover.moves
    triggered = [cid for move in moves for cid in move[3]]
    kinds = " · ".join(f"{kind} ×{n}" for kind, n in sorted(Counter(cid.rsplit("-", 1)[-1] for cid in triggered).items()))
    protected = done.times.get("protected")
    return [f"ladder phase: {LADDER} on {', '.join(LADDER_SYMBOLS)} (stop-loss {LADDER_BOOK['stop_loss']} %, take-profit "
            + ", ".join(f"{level['pct']} %/{level['share']}" for level in LADDER_BOOK["take_profit_ladder"])
            + f", breakeven after level {LADDER_BOOK['breakeven_after']}); {len(moves)} price moves from "
            f"{(moves[0][0] - start) if moves else 0:.1f} s to {(moves[-1][0] - start) if moves else 0:.1f} s"
            f"{f' ({done.mover.missed} skipped: no stream)' if done.mover.missed else ''}, triggering {len(triggered)} "
            f"protective orders ({kinds or 'none'}; s: stop-loss, sN: breakeven stop, tN: level N); "
            f"{done.spared} kills of the stream spared for them; protection settled at the exchange "
            + (f"{protected - start:.1f} s after the first webhook" if protected else
               "NOT within the patience" if done.times["resolved"] else "not waited for (the run did not settle)")]


def print_report(report: Report, dump: dict, times: dict, kills: list[Kill], faults: RandomFaults,
                 bursts: list[str]) -> None:
    start = times["start"]
    after = {name: (f"{moment - start:.1f} s" if moment else "never") for name, moment in times.items()}
    print(f"\nload {after['load_end']}; all signals final {after['final']}, all orders resolved {after['resolved']} "
          "after the first webhook")
    held = sum(k.lanes_held for k in kills)
    print(f"kills: {len(kills)} ({sum(k.lanes_held > 0 for k in kills)} while holding lanes, {held} lanes in all), at "
          + ", ".join(f"{k.at - start:.1f}s:{k.cluster}{'*' if k.planned else ''}" for k in kills)
          + (" (* planned into a burst)" if any(k.planned for k in kills) else ""))
    for line in bursts:
        print(line)
    intake = [(when(row["queued_at"]) - when(row["received_at"])) * 1000 for row in dump["signals"] if row["queued_at"]]
    print(f"intake (received_at → queued_at) ms: {summary(intake)}")
    print("faults drawn: " + " · ".join(f"{kind} {n}" for kind, n in sorted(faults.counts().items())))
    counts = tallies(dump)
    for name, counter in counts.items():
        print(f"{name}: " + " · ".join(f"{key} {n}" for key, n in counter.most_common()))
    width = max(len(row.label) for row in report.rows)
    print(f"\n{'check'.ljust(width)}  {'count':>9}  result")
    for row in report.rows:
        result = "" if row.ok is None else "ok" if row.ok else "FAILED"
        print(f"{row.label.ljust(width)}  {row.count:>9}  {result}{'  ' + row.note if row.note else ''}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=1000, help="webhooks to send, duplicates included")
    parser.add_argument("--rate", type=float, default=100, help="webhooks per second")
    parser.add_argument("--kill-every", type=float, default=4.0, help="seconds between kills (± half, at random)")
    parser.add_argument("--fault-rate", type=float, default=0.01, help="probability of each fault, per order request")
    parser.add_argument("--lookup-fault-rate", type=float, default=0.1, help="probability of a 503 to an order lookup")
    parser.add_argument("--order-delay", type=float, default=0.02,
                        help="seconds every order is in flight at the exchange (so kills land mid-order)")
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of the webhooks that copy another")
    parser.add_argument("--symbols", type=int, default=10, choices=range(8, len(PRICES) + 1), metavar="8..12")
    parser.add_argument("--workers", type=int, default=4, help="worker processes per qcluster")
    parser.add_argument("--burst-every", type=float, default=5.0,
                        help="seconds between bar-close bursts (the first half of it into the load)")
    parser.add_argument("--burst-size", type=int, default=60, help="distinct alerts in each burst, over all the symbols")
    parser.add_argument("--no-bursts", dest="bursts", action="store_false", help="every signal at the steady pace")
    parser.add_argument("--no-ladder", dest="ladder", action="store_false",
                        help="without the ladder phase (a fourth strategy with a stop-loss and a take-profit ladder "
                        "on LINKUSDT and XRPUSDT, whose prices move)")
    parser.add_argument("--move-every", type=float, default=0.5,
                        help="seconds between the ladder phase's price moves (one symbol at a time)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--broker", choices=("redis", "orm"), default="redis")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres",
                        help="the PostgreSQL server to create the run's database on")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11", help="a Redis database the run may flush")
    parser.add_argument("--timeout", type=float, default=240, help="seconds after the load for everything to settle")
    parser.add_argument("--keep", action="store_true", help="keep the database and the worker logs")
    parser.add_argument("--no-stream", dest="stream", action="store_false",
                        help="without the user data stream process (killed and restarted with the clusters)")
    args = parser.parse_args()
    args.ladder = args.ladder and args.stream  # the exchange's own fills reach us only through the stream
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)
    become_subreaper()
    with database(args.database, args.database_url, args.keep) as db_url, broker(args.broker, args.redis_url) as redis_url:
        return run(args, seed, db_url, redis_url)


@dataclass
class Run:
    """What one chaos run did, for the checks and the report."""

    args: argparse.Namespace
    signals: list[Planned]
    timeline: list
    bursts: list[Burst]
    kills: list[Kill]
    faults: RandomFaults
    times: dict[str, float | None]  # start, load_end, final, resolved, protected
    mover: "Mover | None" = None
    spared: int = 0  # kills of the stream skipped while the ladder phase moved prices


def run(args, seed: int, db_url: str, redis_url: str | None) -> int:
    symbols = list(PRICES)[:args.symbols]
    fake = FakeBinance()
    for symbol in symbols:
        fake.set_price(symbol, PRICES[symbol])
    fake.order_delay = args.order_delay
    env = environment(database_url=db_url, redis_url=redis_url, extra={
        "EXCHANGE": "binance", "BINANCE_BASE_URL": fake.url, "BINANCE_API_KEY": API_KEY, "BINANCE_API_SECRET": API_SECRET,
        "BINANCE_TIMEOUT": "1", "Q_WORKERS": str(args.workers), "LANE_KEEPER": "1", "LOG_LEVEL": "warning"})
    print(f"machine: {machine()}")
    print(f"chaos: {args.signals} webhooks at {args.rate:g}/s over {len(symbols)} symbols, "
          + (f"4 strategies (the ladder phase: {LADDER} on {', '.join(LADDER_SYMBOLS)}), " if args.ladder else "3 strategies, ")
          + f"{args.duplicates:.0%} duplicates"
          + (f", bar-close bursts of {args.burst_size} every {args.burst_every:g} s" if args.bursts else ", no bursts")
          + f"; {args.database} + {args.broker}; 2 qclusters × {args.workers} workers"
          f"{' + the user data stream' if args.stream else ''}; "
          f"kill every ~{args.kill_every:g} s{' and into each burst' if args.bursts else ''}; "
          f"orders in flight {args.order_delay:g} s; order faults p={args.fault_rate:g} each, "
          f"lookup 503 p={args.lookup_fault_rate:g}; seed {seed}", flush=True)
    django(env, "migrate", "--noinput", "-v", "0")
    setup = "from preferences.models import StrategyPreference as S\n" + "".join(
        f"S.objects.update_or_create(name={name!r}, defaults={fields!r})\n"
        for name, fields in strategies(symbols, args.ladder).items())
    django(env, "shell", "-c", setup)
    logs = Path(tempfile.mkdtemp(prefix="alsatrade-chaos-logs-"))
    done = exercise(args, seed, env, fake, Peek(db_url), logs, symbols)
    fake.random_faults = None
    exchange = exchange_state(fake)
    if args.stream:
        fills = sum(1 for event in fake.pushed if event["e"] == "ORDER_TRADE_UPDATE" and event["o"]["x"] == "TRADE")
        print(f"user data stream: opened {fake.stream_connections} time(s); {len(fake.pushed)} events pushed, "
              f"{fills} of them fills (applied by the stream or the workers' answers, whichever came first)")
    fake.stop()
    dump = json.loads(django(env, "shell", "-c", DUMP).strip().splitlines()[-1])
    worker_kills = [k.at for k in done.kills if k.cluster != "userstream"]
    ladder = {"strategy": LADDER, "symbols": list(LADDER_SYMBOLS), "start": done.times["start"]} if args.ladder else None
    report = check_all([post for _, post in done.timeline], dump, exchange, worker_kills, ladder)
    if done.times["resolved"] is None:
        report.check("settled within the timeout", ["signals or orders still pending after --timeout"])
    if args.ladder and done.times["resolved"] is not None and done.times.get("protected") is None:
        report.check("protection settled at the exchange within the patience",
                     [f"the ladder's checks below still failed {PROTECTION_PATIENCE:g} s after all orders resolved"])
    conclude(report, dump, exchange, done, logs, keep=args.keep)
    if args.keep:
        print(f"database kept: {db_url}")
    print(f"RESULT: {'PASS' if not report.problems else 'FAIL'} ({len(report.problems)} problems)")
    return 1 if report.problems else 0


def exercise(args, seed: int, env: dict, fake: FakeBinance, peek: Peek, logs: Path, symbols: list[str]) -> Run:
    """Two clusters, gunicorn, the load, the kills and the faults, until everything settled."""
    clusters = [Cluster(name, env, logs) for name in ("cluster-a", "cluster-b")]
    if args.stream:  # the user data stream applies the same fills the workers record from answers
        clusters.append(Cluster("userstream", {**env, "BINANCE_STREAM_URL": fake.ws_url}, logs, command="userstream"))
    try:
        deadline = time.time() + 60
        while peek.scalar("SELECT COUNT(*) FROM trading_workerheartbeat") == 0 and time.time() < deadline:
            time.sleep(0.2)  # a worker's recovery watch beats as it starts
        fake.random_faults = faults = RandomFaults(seed=seed, p=args.fault_rate, lookup_p=args.lookup_fault_rate)
        signals, timeline, bursts = plan(random.Random(seed), args.signals, args.duplicates, args.rate, symbols,
                                         (args.burst_every, args.burst_size) if args.bursts else None, args.ladder)
        with serving({**env, "LOG_LEVEL": "error"}, web_workers=3) as base:  # 4xx are counted, not logged
            killer = Killer(clusters, args.kill_every, seed + 1, peek)
            killer.start()
            mover = Mover(fake, killer, args.move_every, peek) if args.ladder else None
            start = time.time()
            killer.plan([start + burst.kill_at for burst in bursts])
            if mover is not None:
                mover.start()
            load_end = load(base, timeline, Bodies(signals, f"{seed}-{os.getpid()}", fake), start)
            print(f"  load sent in {load_end - start:.1f} s; {achieved_rate(timeline, start)}", flush=True)
            if mover is not None:
                mover.loaded.set()
            final_at, resolved_at = wait_until_settled(peek, killer, args.timeout, start)
            if mover is not None:  # it moved prices until every signal was final, while the kills went on
                mover.finish()
            if killer.is_alive():
                killer.stop()
            protected_at = None
            if mover is not None and resolved_at is not None:
                protected_at = wait_for_protection(fake, min(PROTECTION_PATIENCE, args.timeout))
    finally:
        for cluster in clusters:
            cluster.stop()
    times = {"start": start, "load_end": load_end, "final": final_at, "resolved": resolved_at, "protected": protected_at}
    return Run(args, signals, timeline, bursts, killer.kills, faults, times, mover, killer.spared)


def conclude(report: Report, dump: dict, exchange: dict, done: Run, logs: Path, *, keep: bool) -> None:
    """Print the report and the evidence; keep the run's record and logs when something failed."""
    start = done.times["start"]
    print_report(report, dump, done.times, done.kills, done.faults, burst_lines(done, dump, exchange) + ladder_lines(done))
    for signal_id in sorted(report.suspects)[:5]:
        print(evidence(signal_id, dump, exchange, done.faults, start))
    for note in report.notes:
        print(f"NOTE {note}")
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    record = {"posts": [vars(post) for _, post in done.timeline], "dump": dump, "exchange": exchange,
              "kills": [vars(kill) for kill in done.kills], "faults": done.faults.log,
              "bursts": [vars(burst) for burst in done.bursts], "moves": done.mover.moves if done.mover else []}
    (logs / "run.json").write_text(json.dumps(record, default=str))
    print(f"worker logs and the run's record (run.json): {logs}" + ("" if keep or report.problems else " (removed)"))
    if not keep and not report.problems:
        shutil.rmtree(logs, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
