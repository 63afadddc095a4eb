"""The chaos proof's checks (bench/chaos.py), Jepsen-style: from what the load generator was answered,
what the database recorded and what the fake exchange did, count every way a signal could have been
lost, doubled or misreported. Pure: no database, no HTTP, so each rule reads as it is checked."""

import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

FINAL = {"filtered", "rejected", "done", "failed"}
ORDER_MARGIN = 1.0  # seconds: a loaded worker's pick of a signal may precede its execution's start by this much
UNRESOLVED = {"sent", "unknown", "NEW", "PARTIALLY_FILLED"}
SIGNAL_STATUS = {  # the execution's status → the signal statuses that agree with it (docs/EXECUTION.md)
    "filled": {"done"}, "partial": {"done"}, "nothing": {"done", "filtered"},
    "skipped": {"failed"}, "rejected": {"failed"}, "failed": {"failed"},
}


@dataclass
class Post:
    """One webhook body and every answer it got (TradingView resends after a 5xx or a timeout)."""

    signal: int  # index of the distinct signal this body is
    kind: str  # original, concurrent duplicate, later duplicate
    due: float = 0.0  # when it was to be sent (epoch seconds); sent_at: when it was
    sent_at: float = 0.0
    answers: list[tuple[float, int, dict]] = field(default_factory=list)  # (at, HTTP status or 0, body or error)

    @property
    def final(self) -> tuple[int, dict]:
        return self.answers[-1][1:] if self.answers else (0, {"error": "never sent"})


@dataclass
class Row:
    label: str
    count: str
    ok: bool | None  # None: a figure, not a check
    note: str = ""


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # worth reading, not failures
    suspects: set[int] = field(default_factory=set)  # signal ids worth showing in full

    def check(self, label: str, bad: list[str], *, total: int | None = None, note: str = "",
              suspects: set[int] | None = None) -> None:
        count = f"{len(bad)}" if total is None else f"{total - len(bad)}/{total}"
        self.rows.append(Row(label, count, not bad, note))
        self.problems.extend(f"{label}: {item}" for item in bad[:20])
        if len(bad) > 20:
            self.problems.append(f"{label}: … and {len(bad) - 20} more")
        self.suspects |= suspects or set()

    def figure(self, label: str, count: object, note: str = "") -> None:
        self.rows.append(Row(label, str(count), None, note))


def when(text: str | None) -> float | None:
    return datetime.fromisoformat(text).timestamp() if text else None


def check_all(posts: list[Post], dump: dict, exchange: dict, kills: list[float], ladder: dict | None = None) -> Report:
    """`ladder`: the ladder phase's {"strategy", "symbols", "start"}, or None without it."""
    report = Report()
    accepted = check_intake(report, posts, dump)
    orders = dump["orders"]
    # Fills the exchange made by itself (a stop-loss or take-profit triggered): recorded by the stream.
    fills = exchange["orders"] + triggered_fills(orders, exchange.get("triggered", []))
    check_final(report, accepted, dump)
    check_fills(report, orders, fills, exchange["requests"])
    check_positions(report, orders, dump["positions"], exchange["positions"], fills)
    check_executions(report, dump)
    check_order(report, dump, exchange["orders"], answered_at(posts, accepted))
    check_too_late(report, dump, kills)
    if ladder is not None:
        check_ladder(report, dump, exchange, ladder, kills)
    return report


def triggered_fills(orders: list[dict], fills: list[dict]) -> list[dict]:
    """The exchange's own fills under the client id of the Order that records them: the stream
    records one as `algo_<id>`, or `x-<symbol>-<order id>` when that id was taken; found by its
    exchange order id."""
    by_exchange_id = {(o["symbol"], str(o.get("exchange_order_id") or "")): o["client_order_id"] for o in orders}
    return [{**fill, "clientOrderId": by_exchange_id.get((fill["symbol"], str(fill["orderId"])), fill["clientOrderId"])}
            for fill in fills]


# --- the front door ---------------------------------------------------------------------------------
def acknowledged(status: int, body: dict) -> bool:
    return status == 202 or (status == 200 and body.get("status") == "duplicate")


def unanswered(status: int) -> bool:
    """No answer, or a 5xx: the body may or may not be stored, and the sender resends it."""
    return status == 0 or status >= 500


def check_intake(report: Report, posts: list[Post], dump: dict) -> dict[int, int]:
    """Each distinct body is answered 202 once and 200 "duplicate" for every other copy, all naming
    the one signal stored for it. A body no attempt of which was answered (timeouts, 5xx) may or may
    not be stored: TradingView would resend it; its row, if any, is found by the body's `id` and is
    executed like any other. Returns signal index → its stored signal id."""
    rows = stored_rows(dump)
    by_signal: dict[int, list[Post]] = defaultdict(list)
    for post in posts:
        by_signal[post.signal].append(post)
    stored: dict[int, int] = {}
    doubled, misnamed, odd, silent = [], [], [], []
    for index, copies in sorted(by_signal.items()):
        answers = [(status, body) for post in copies for _, status, body in post.answers]
        named = {body.get("signal_id") for status, body in answers if acknowledged(status, body)}
        row = rows.get(index)
        if sum(status == 202 for status, _ in answers) > 1:
            doubled.append(f"signal #{index}: 202 {sum(status == 202 for status, _ in answers)} times, naming {sorted(named)}")
        if named and (len(named) > 1 or row is None or row["id"] not in named):
            misnamed.append(f"signal #{index}: answers name {sorted(named)}, stored as {row['id'] if row else 'nothing'}")
        odd += [f"signal #{index}: answered {status} {body}" for status, body in answers
                if not acknowledged(status, body) and not unanswered(status)]
        if not named:
            silent.append(row is not None)
        if row is not None:
            stored[index] = row["id"]
    strays = [f"signal {row['id']}: stored with no body of this run behind it" for row in dump["signals"]
              if row["http_status"] == 202 and row["id"] not in stored.values()]
    report.check("bodies answered 202 more than once", doubled)
    report.check("answers naming another signal than the one stored, or none stored", misnamed)
    report.check("answers other than 202, 200 duplicate, 5xx or no answer", odd)
    report.check("stored signals no body of the run accounts for", strays)
    overloaded = len(silent) > len(by_signal) / 20
    report.figure("distinct signals acknowledged (202 or duplicate)", f"{len(by_signal) - len(silent)}/{len(by_signal)}",
                  f"never answered: {sum(silent)} stored anyway, {len(silent) - sum(silent)} not; "
                  + ("WARNING: the web tier was overloaded" if overloaded else "the sender would resend them")
                  if silent else "")
    duplicates = sum(1 for post in posts if acknowledged(*post.final) and post.final[1].get("status") == "duplicate")
    report.figure('exact duplicates answered 200 "duplicate"', duplicates,
                  f"of {sum(post.kind != 'original' for post in posts)} duplicate copies sent")
    report.figure("resends after a 5xx or no answer (as TradingView)", sum(len(post.answers) - 1 for post in posts))
    answers = Counter(f"{status} {body.get('status', body.get('error', ''))}"[:40]
                      for post in posts for _, status, body in post.answers)
    report.figure("answers", sum(answers.values()), " · ".join(f"{kind} ×{n}" for kind, n in answers.most_common()))
    counted = Counter(post.final[1].get("signal_id") for post in posts
                      if acknowledged(*post.final) and post.final[1].get("status") == "duplicate")
    rows_by_id = {row["id"]: row for row in dump["signals"]}
    miscounted = [f"signal {sid}: duplicate_count {rows_by_id[sid]['duplicate_count']}, duplicates answered {n}"
                  for sid, n in counted.items() if sid in rows_by_id and rows_by_id[sid]["duplicate_count"] < n]
    report.check("signals whose duplicate_count is below the duplicates answered", miscounted)
    return stored


def stored_rows(dump: dict) -> dict[int, dict]:
    """Signal index → the row stored for it, found by the body's `id` (chaos-<run>-<index>)."""
    return {int(row["idempotency_key"].rsplit("-", 1)[1]): row for row in dump["signals"]
            if (row["idempotency_key"] or "").startswith("id:CHAOS")}


def answered_at(posts: list[Post], accepted: dict[int, int]) -> dict[int, float]:
    """Signal id → the first answer that proves it committed (its 202, or a copy's "duplicate")."""
    first: dict[int, float] = {}
    for post in posts:
        for at, status, body in post.answers:
            if status == 202 or (status == 200 and body.get("status") == "duplicate"):
                sid = accepted.get(post.signal)
                if sid is not None:
                    first[sid] = min(first.get(sid, at), at)
    return first


# --- every accepted signal ends ----------------------------------------------------------------------
def check_final(report: Report, accepted: dict[int, int], dump: dict) -> None:
    signals = {row["id"]: row for row in dump["signals"]}
    executions = Counter(row["signal_id"] for row in dump["executions"])
    unfinished = [f"signal {sid}: {signals.get(sid, {}).get('status', 'missing')}" for sid in accepted.values()
                  if signals.get(sid, {}).get("status") not in FINAL]
    no_execution = [f"signal {sid} ({signals[sid]['status']}): {executions[sid]} executions"
                    for sid in accepted.values() if sid in signals and executions[sid] != 1]
    report.check("stored signals final", unfinished, total=len(accepted), suspects=set(_ids(unfinished)))
    report.check("stored signals without exactly one execution", no_execution, suspects=set(_ids(no_execution)))


def _ids(items: list[str]) -> list[int]:
    return [int(item.split()[1].rstrip(":")) for item in items if item.startswith("signal ")]


# --- the exchange against our records ----------------------------------------------------------------
def check_fills(report: Report, orders: list[dict], fills: list[dict], requests: list[tuple]) -> None:
    ours = {order["client_order_id"]: order for order in orders}
    times = Counter(fill["clientOrderId"] for fill in fills)
    twice = [f"{cid} filled {n} times" for cid, n in times.items() if n > 1]
    report.check("client order ids filled twice at the exchange", twice,
                 suspects={ours[cid.split()[0]]["signal_id"] for cid in twice if cid.split()[0] in ours})
    # updateTime is whole ms: the request that filled may carry a time up to 1 ms after its fill's.
    filled_at = {fill["clientOrderId"]: fill["updateTime"] / 1000 + 0.01 for fill in fills}
    resent = [(cid, at) for at, method, cid in requests if method == "POST" and cid in filled_at and at > filled_at[cid]]
    report.check("orders sent again after the exchange had filled them", [
        f"{cid}: sent {at - filled_at[cid]:.3f} s after its fill" for cid, at in resent],
        suspects={ours[cid]["signal_id"] for cid, _ in resent if cid in ours})
    stray, unrecorded = [], []
    for fill in fills:
        order = ours.get(fill["clientOrderId"])
        if order is None:
            stray.append(f"{fill['clientOrderId']}: {fill['side']} {fill['executedQty']} {fill['symbol']}, no Order of ours")
        elif (order["status"] != "FILLED" or Decimal(order["executed_qty"]) != Decimal(fill["executedQty"])
              or order["side"] != fill["side"] or order["symbol"] != fill["symbol"]):
            unrecorded.append(f"{fill['clientOrderId']} (signal {order['signal_id']}): exchange filled {fill['side']} "
                              f"{fill['executedQty']}, we record {order['status']} {order['side']} {order['executed_qty']}")
    report.check("exchange fills that belong to no Order of ours", stray)
    report.check("exchange fills our Order does not record as that fill", unrecorded,
                 suspects={ours[line.split()[0]]["signal_id"] for line in unrecorded})
    filled_there = {fill["clientOrderId"]: fill for fill in fills}
    phantom = [o for o in orders if o["status"] == "FILLED" and (
        o["client_order_id"] not in filled_there
        or Decimal(filled_there[o["client_order_id"]]["executedQty"]) != Decimal(o["executed_qty"]))]
    report.check("Orders we call FILLED not filled alike at the exchange", [
        f"{o['client_order_id']} (signal {o['signal_id']}): we record FILLED {o['executed_qty']}, the exchange "
        + (filled_there[o["client_order_id"]]["executedQty"] if o["client_order_id"] in filled_there else "has no fill")
        for o in phantom], suspects={o["signal_id"] for o in phantom})
    unfolded = [f"{o['client_order_id']} (signal {o['signal_id']}): executed {o['executed_qty']}, "
                f"in the mirror {o['applied_qty']}" for o in orders if Decimal(o["applied_qty"]) != Decimal(o["executed_qty"])]
    report.check("fills not folded into the Position mirror exactly once", unfolded)
    unresolved = [f"{o['client_order_id']} (signal {o['signal_id']}): {o['status']}" for o in orders if o["status"] in UNRESOLVED]
    report.check("orders whose outcome is still unknown", unresolved, suspects={o["signal_id"] for o in orders
                                                                               if o["status"] in UNRESOLVED})


def check_positions(report: Report, orders: list[dict], mirror: dict[str, str], held: dict[str, str],
                    fills: list[dict]) -> None:
    """Per symbol: the exchange's position = our mirror = the signed sum of the fills we recorded
    (several strategies share a symbol's one position) = the signed sum of the exchange's fills."""
    recorded: dict[str, Decimal] = defaultdict(Decimal)
    for order in orders:
        if order["status"] == "FILLED":
            recorded[order["symbol"]] += _signed(order["side"], order["executed_qty"])
    exchanged: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        exchanged[fill["symbol"]] += _signed(fill["side"], fill["executedQty"])
    symbols = sorted(set(recorded) | set(mirror) | set(held) | set(exchanged))
    bad = []
    for symbol in symbols:
        values = [Decimal(held.get(symbol, "0")), Decimal(mirror.get(symbol, "0")), recorded[symbol], exchanged[symbol]]
        if len(set(values)) > 1:
            bad.append(f"{symbol}: exchange {values[0]}, mirror {values[1]}, our fills {values[2]}, exchange fills {values[3]}")
    report.check("symbols where exchange = mirror = our fills", bad, total=len(symbols))


def _signed(side: str, quantity: str) -> Decimal:
    return Decimal(quantity) if side == "BUY" else -Decimal(quantity)


# --- what each execution says against what its orders did ----------------------------------------------
def check_executions(report: Report, dump: dict) -> None:
    legs: dict[int, list[dict]] = defaultdict(list)
    for order in dump["orders"]:
        legs[order["execution_id"]].append(order)
    signals = {row["id"]: row for row in dump["signals"]}
    bad, found_later = [], 0
    for execution in dump["executions"]:
        orders = sorted(legs[execution["id"]], key=lambda o: o["leg"])
        problem = execution_disagreement(execution, orders)
        if problem == "found later":
            found_later += 1
        elif problem:
            bad.append(f"signal {execution['signal_id']}: {problem}")
        signal_status = signals.get(execution["signal_id"], {}).get("status")
        if signal_status not in SIGNAL_STATUS.get(execution["status"], set()):
            bad.append(f"signal {execution['signal_id']}: execution {execution['status']} but signal {signal_status}")
    report.check("executions whose status disagrees with their orders", bad, suspects=set(_ids(bad)),
                 note=f"{found_later} failed with an order the sweep later found filled, said so" if found_later else "")


def found_nothing(execution: dict, order: dict) -> bool:
    """A reduce-only leg refused -2022 because the position had been closed first at the exchange (our
    take-profit or stop won the race): no failure, and the execution says so in its reason — "leg N
    (close) found nothing to reduce", or "nothing to close" when it was every leg (docs/PROTECTION.md,
    "When the exchange got there first"). A reversal's open still goes."""
    return (order["status"] == "REJECTED" and order["error_code"] == "-2022"
            and (f"leg {order['leg']} ({order['purpose']}) found nothing to reduce" in execution["reason"]
                 or "nothing to close: " in execution["reason"]))


def execution_disagreement(execution: dict, orders: list[dict]) -> str:
    """'' when the status says what the orders did (docs/EXECUTION.md, Statuses)."""
    status, filled = execution["status"], [o["status"] == "FILLED" for o in orders]
    done = [o["status"] == "FILLED" or found_nothing(execution, o) for o in orders]
    shape = " ".join(f"{o['purpose']}:{o['status']}" for o in orders) or "no orders"
    if status == "filled":
        return "" if orders and all(done) and any(filled) else f"filled, but {shape}"
    if status == "partial":
        leading = done[:done.index(False)] if False in done else done
        return "" if any(filled) and not all(done) and sum(leading) == sum(done) else f"partial, but {shape}"
    if status == "nothing" and orders and all(found_nothing(execution, o) for o in orders):
        return ""
    if status in ("nothing", "skipped"):
        return "" if not orders else f"{status}, but {shape}"
    if status == "rejected":
        return "" if not any(filled) and any(o["status"] == "REJECTED" for o in orders) else f"rejected, but {shape}"
    if status == "failed":
        if not any(filled):
            return ""
        said = [f"{o['client_order_id']} later found FILLED" in execution["reason"] for o in orders if o["status"] == "FILLED"]
        later = all(said)
        return "found later" if later else f"failed, but {shape}; reason: {execution['reason'][:200]}"
    return f"status {status!r} is not final"


def check_order(report: Report, dump: dict, fills: list[dict], answered: dict[int, float]) -> None:
    """A symbol's fills reach the exchange in the order its signals were received (received_at, id).
    The lane holder can only order the signals it sees: one received first but committed after a
    later one was picked is overtaken (the intake race), which is told apart from a lane that skips
    a committed signal by when the earlier one was answered (its commit is then certain) against
    when the later one's execution started, with ORDER_MARGIN for the pick that precedes the start."""
    signal_of = {o["client_order_id"]: o["signal_id"] for o in dump["orders"]}
    signals = {row["id"]: row for row in dump["signals"]}
    started = {row["signal_id"]: when(row["started_at"]) for row in dump["executions"]}
    latest: dict[str, tuple[tuple, int]] = {}  # symbol → (the latest signal key filled, its signal id)
    lane_bugs, races = [], []
    for fill in fills:  # in the exchange's fill order
        sid = signal_of.get(fill["clientOrderId"])
        if sid is None:
            continue
        key, previous = (when(signals[sid]["received_at"]), sid), latest.get(fill["symbol"])
        if previous is not None and key < previous[0]:
            later = previous[1]
            proof = answered.get(sid)  # None: no answer reached the sender, so no moment its commit is certain
            line = (f"signal {sid}: {fill['symbol']} {fill['clientOrderId']} filled after signal {later}'s order; received "
                    f"{previous[0][0] - key[0]:.3f} s before it, its intake took {(signals[sid]['intake_us'] or 0) / 1e6:.3f} s, "
                    + (f"answered {proof - started[later]:+.3f} s from the start of signal {later}'s execution"
                       if proof is not None else "never answered"))
            (lane_bugs if proof is not None and proof + ORDER_MARGIN < started[later] else races).append(line)
        if previous is None or key > previous[0]:
            latest[fill["symbol"]] = (key, sid)
    report.check("fills out of receipt order among committed signals, per symbol", lane_bugs, suspects=set(_ids(lane_bugs)))
    report.figure("fills overtaken by a later signal before their own was committed", len(races),
                  "the intake race: received first, committed after the later signal was picked" if races else "")
    report.notes.extend(f"intake race: {line}" for line in races[:10])
    report.suspects |= set(_ids(races[:3]))


def check_too_late(report: Report, dump: dict, kills: list[float]) -> None:
    """Too late is legitimate only past EXECUTION_MAX_DELAY after receipt; reported with the
    signal's age at the last kill before it was given up (a kill explains a late start)."""
    limit = dump["max_delay"]
    ages, at_kill, early = [], [], []
    for execution in dump["executions"]:
        late = execution["reason"].startswith("too late") or "over EXECUTION_MAX_DELAY" in execution["reason"]
        if not late:
            continue
        received, ended = when(execution["received_at"]), when(execution["finished_at"])
        age = (ended or 0) - (received or 0)
        ages.append(age)
        kill_ages = [k - received for k in kills if received is not None and received <= k <= (ended or k)]
        if kill_ages:
            at_kill.append(max(kill_ages))
        if age < limit:
            early.append(f"signal {execution['signal_id']}: given up {age:.1f} s after receipt: {execution['reason'][:120]}")
    note = (f"max age {max(ages):.1f} s; {len(at_kill)} had a kill while waiting, max age at it "
            f"{max(at_kill):.1f} s" if at_kill else f"max age {max(ages):.1f} s; none saw a kill") if ages else ""
    report.figure(f"signals given up as too late (> {limit} s)", len(ages), note)
    report.check(f"given up as too late before {limit} s", early, suspects=set(_ids(early)))


def tallies(dump: dict) -> dict[str, Counter]:
    """Figures for the summary: executions and orders by status, legs by purpose, reversals."""
    by_execution: dict[int, list[str]] = defaultdict(list)
    for order in dump["orders"]:
        if order["execution_id"] is not None:  # not a fill the exchange made by itself (a protective order's)
            by_execution[order["execution_id"]].append(order["purpose"])
    return {
        "signals": Counter(row["status"] for row in dump["signals"]),
        "executions": Counter(row["status"] for row in dump["executions"]),
        "orders": Counter(row["status"] for row in dump["orders"]),
        "legs": Counter(row["purpose"] for row in dump["orders"]),
        "why not filled": Counter(_gist(row) for row in dump["executions"]
                                  if row["status"] in ("failed", "partial", "rejected", "skipped")),
        "shapes": Counter("reversal" if {"close", "open"} <= set(p) else
                          "close in parts" if p.count("close") > 1 else p[0] for p in by_execution.values()),
    }


def _gist(execution: dict) -> str:
    """An execution's reason without its numbers and ids, so alike reasons count together."""
    reason = re.sub(r"at-[0-9a-z]+-[0-9a-z]+-\d+", "<order>", execution["reason"].rsplit("not filled: ", 1)[-1])
    return f"{execution['status']}: " + re.sub(r"\d+(\.\d+)?", "N", reason)[:90]


# --- the ladder phase: protective orders at the exchange ---------------------------------------------------
# trading/protection.py: pt-<signal id>-<received ms>-<kind letter><level>[-<l|s> in hedge mode]
PROTECTIVE_ID = re.compile(r"^pt-([0-9a-f]+)-[0-9a-f]+-([str])(\d*)(?:-([ls]))?$")
ALGO_KINDS = {"STOP_MARKET": "stop_loss", "TAKE_PROFIT_MARKET": "take_profit", "TRAILING_STOP_MARKET": "trailing"}
LETTERS = {"s": "stop_loss", "t": "take_profit", "r": "trailing"}
ENDED = {"CANCELED", "TRIGGERED", "FINISHED", "EXPIRED", "REJECTED"}


def protective_level(client_id: str) -> int | None:
    """The level a protective order's client id names (a take-profit's ladder level; a stop-loss's:
    the level whose fill moved it to breakeven; 0: none), or None if not one of ours."""
    match = PROTECTIVE_ID.match(client_id)
    return int(match.group(3) or 0) if match else None


def algo_key(symbol: str, position_side: str, order_type: str, client_id: str) -> tuple:
    """(symbol, positionSide, kind, level): at most one open algo order each."""
    return symbol, position_side, ALGO_KINDS.get(order_type, order_type), protective_level(client_id)


def protection_gaps(positions: dict[str, str], algo_orders: list[dict], ladder_symbols: list[str]) -> dict[str, list[str]]:
    """What the exchange's open algo orders violate now (bench/chaos.py waits for none, then checks):
    duplicate — two open for the same (symbol, positionSide, kind, level);
    unprotected — a ladder symbol's open position with no open stop covering it (closePosition or a
    quantity at least the position's, on its closing side);
    left — a flat symbol with an open algo order."""
    by_key: dict[tuple, list[str]] = defaultdict(list)
    for algo in algo_orders:
        by_key[algo_key(algo["symbol"], algo["positionSide"], algo["orderType"], algo["clientAlgoId"])].append(
            algo["clientAlgoId"])
    duplicate = [f"{' '.join(map(str, key))}: {len(ids)} open: {', '.join(sorted(ids))}"
                 for key, ids in sorted(by_key.items(), key=str) if len(ids) > 1]
    unprotected = []
    for symbol in ladder_symbols:
        amount = Decimal(positions.get(symbol, "0"))
        if amount == 0:
            continue
        closing = "SELL" if amount > 0 else "BUY"
        resting = [algo for algo in algo_orders if algo["symbol"] == symbol]
        covered = [algo for algo in resting if algo["orderType"] == "STOP_MARKET" and algo["side"] == closing
                   and algo["positionSide"] == "BOTH"
                   and (algo["closePosition"] or Decimal(algo.get("quantity") or 0) >= abs(amount))]
        if not covered:
            unprotected.append(f"{symbol}: position {amount}, open algo orders: "
                               + (", ".join(f"{a['clientAlgoId']} {a['orderType']} {a['side']} "
                                            f"{'close' if a['closePosition'] else a.get('quantity')}" for a in resting)
                                  or "none"))
    left = []
    for symbol in sorted({algo["symbol"] for algo in algo_orders}):
        if Decimal(positions.get(symbol, "0")) == 0:
            left.append(f"{symbol}: flat, yet open: "
                        + ", ".join(f"{a['clientAlgoId']} {a['orderType']}" for a in algo_orders if a["symbol"] == symbol))
    return {"duplicate": duplicate, "unprotected": unprotected, "left": left}


def algo_history(events: list[dict]) -> dict[str, dict]:
    """Client id → {symbol, side, type, placed, ended (server ms, None if still open), how (its end)}
    from the exchange's ALGO_UPDATE events."""
    history: dict[str, dict] = {}
    for event in events:
        entry = history.setdefault(event["caid"], {"symbol": event["s"], "side": event["ps"], "type": event["o"],
                                                   "placed": None, "ended": None, "how": ""})
        if event["X"] == "NEW" and entry["placed"] is None:
            entry["placed"] = event["T"]
        elif event["X"] in ENDED and entry["ended"] is None:
            entry["ended"], entry["how"] = event["T"], event["X"]
    return history


def overlaps(history: dict[str, dict]) -> list[tuple[str, str, float | None]]:
    """(older, newer, seconds both open; None: both still open) for each order placed while another
    of the same (symbol, positionSide, kind, level) was open: a re-placed ladder places the new
    levels before it cancels the old, so this is transient by design (trading/protection.py)."""
    found = []
    placed = sorted((entry["placed"], cid) for cid, entry in history.items() if entry["placed"] is not None)
    for index, (at, cid) in enumerate(placed):
        entry = history[cid]
        key = algo_key(entry["symbol"], entry["side"], entry["type"], cid)
        for _, older in placed[:index]:
            other = history[older]
            if algo_key(other["symbol"], other["side"], other["type"], older) != key:
                continue
            if other["ended"] is not None and other["ended"] < at:
                continue
            ends = [moment for moment in (other["ended"], entry["ended"]) if moment is not None]
            both_open = (min(ends) - at) / 1000 if ends else None  # None: both are still open
            found.append((older, cid, both_open))
    return found


def check_ladder(report: Report, dump: dict, exchange: dict, ladder: dict, kills: list[float]) -> None:
    """The ladder phase (bench/chaos.py): once everything settled, no level twice at the exchange, no
    open position of the ladder's symbols without its stop, nothing left resting on a flat symbol;
    and the figures: levels triggered, breakeven moves, kills while a ladder signal executed."""
    start_ms = ladder["start"] * 1000
    history = algo_history(exchange["algo_events"])

    def shown(cid: str) -> str:
        entry = history.get(cid)
        if entry is None:
            return cid
        ended = f"{entry['how'].lower()} t={(entry['ended'] - start_ms) / 1000:.3f}" if entry["ended"] else "open"
        return f"{cid} (placed t={(entry['placed'] - start_ms) / 1000:.3f} s, {ended})"

    def evidence(items: list[str]) -> list[str]:
        return [re.sub(r"pt-[0-9a-f]+-[0-9a-f]+-[str]\d*(?:-[ls])?", lambda m: shown(m.group(0)), item) for item in items]

    gaps = protection_gaps(exchange["positions"], exchange["algo_orders"], ladder["symbols"])
    held = sum(Decimal(exchange["positions"].get(symbol, "0")) != 0 for symbol in ladder["symbols"])
    report.check("ladder: open algo orders for the same symbol, side, kind and level", evidence(gaps["duplicate"]),
                 note=f"{len(exchange['algo_orders'])} open at the end")
    report.check("ladder: open positions of its symbols without a stop covering them", evidence(gaps["unprotected"]),
                 total=held)
    report.check("ladder: flat symbols with algo orders still open", evidence(gaps["left"]))
    rows = {row["client_id"]: row for row in dump.get("protective", [])}
    live = {cid for cid, row in rows.items() if row["status"] in ("placing", "active")}
    resting = {algo["clientAlgoId"] for algo in exchange["algo_orders"]}
    report.check("ladder: protective orders live in the database but not at the exchange, or back", evidence(
                     [f"{cid}: {rows[cid]['status']} in the database, not open at the exchange" for cid in sorted(live - resting)]
                     + [f"{cid}: open at the exchange, {rows[cid]['status'] if cid in rows else 'no row'} in the database"
                        for cid in sorted(resting - live)]), total=len(live | resting))
    # Two stops on one position (a stop of another level not cancelled): not a duplicate level, worth seeing.
    stops: dict[tuple, list[str]] = defaultdict(list)
    for algo in exchange["algo_orders"]:
        if algo["orderType"] == "STOP_MARKET":
            stops[(algo["symbol"], algo["positionSide"])].append(algo["clientAlgoId"])
    doubled = [f"{' '.join(key)}: {', '.join(shown(cid) for cid in ids)}" for key, ids in stops.items() if len(ids) > 1]
    report.figure("ladder: positions with more than one stop open at the end", len(doubled), "; ".join(doubled)[:300])
    report.notes.extend(f"more than one stop at the end: {line}" for line in doubled[:5])
    transient = overlaps(history)
    lasting = [both for _, _, both in transient if both is not None]
    report.figure("ladder: orders placed while one of the same level was open", len(transient),
                  (f"both open at most {max(lasting):.3f} s (re-placed: the new before the old is cancelled)"
                   if lasting else "") if transient else "")
    triggered: Counter = Counter()
    for cid in {event["caid"] for event in exchange["algo_events"] if event["X"] == "TRIGGERED"}:
        match = PROTECTIVE_ID.match(cid)
        if match:
            triggered[(LETTERS[match.group(2)], int(match.group(3) or 0))] += 1
    levels = {level: n for (kind, level), n in triggered.items() if kind == "take_profit"}
    report.figure("ladder: take-profit levels triggered", sum(levels.values()),
                  " · ".join(f"level {level} ×{n}" for level, n in sorted(levels.items())))
    stopped = {level: n for (kind, level), n in triggered.items() if kind == "stop_loss"}
    report.figure("ladder: stops triggered", sum(stopped.values()),
                  f"{stopped.get(0, 0)} at the stop-loss, {sum(stopped.values()) - stopped.get(0, 0)} moved to breakeven")
    moves = [row for row in dump.get("protective", []) if row["kind"] == "stop_loss" and row["level"]]
    report.figure("ladder: breakeven moves (stops placed after a level filled)", len(moves),
                  " · ".join(f"{status} ×{n}" for status, n in Counter(row["status"] for row in moves).most_common()))
    statuses = Counter(f"{row['kind']} {row['status']}" for row in dump.get("protective", []))
    report.figure("ladder: protective orders recorded", sum(statuses.values()),
                  " · ".join(f"{key} ×{n}" for key, n in sorted(statuses.items())))
    strategy_of = {row["id"]: row["strategy"] for row in dump["signals"]}
    spans = [(when(row["started_at"]), when(row["finished_at"]), row["signal_id"]) for row in dump["executions"]
             if strategy_of.get(row["signal_id"]) == ladder["strategy"] and row["started_at"]]
    hits = [kill for kill in kills if any(s <= kill <= (f or s) for s, f, _ in spans)]
    report.figure("ladder: worker kills while one of its signals was executing", f"{len(hits)} of {len(kills)}",
                  f"{len(spans)} ladder executions")
    alarms = [row for row in dump["executions"] if strategy_of.get(row["signal_id"]) == ladder["strategy"]
              and row.get("protection_alarm")]
    report.figure("ladder: executions that raised a protection alarm", len(alarms),
                  "; ".join(f"signal {row['signal_id']}: {row['protection_alarm'][:100]}" for row in alarms[:3]))
