"""POST /webhook: TradingView's way in. Checks in a fixed order, then one commit that stores the
Signal and queues its job, then the answer — no exchange call, no balance lookup on this path.

    rate limit (429) → blocked for wrong passphrases (429) → size (413) → source address (403)
    → parse (400) → passphrase (401) → validation (400) → staleness (400)
    → idempotency (200 duplicate) → preferences (200 filtered) → store + queue (202)

Every attempt but a rate-limited one is recorded as a Signal. Attempts that did not authenticate
are recorded without their body; the passphrase is never stored or logged, and known secrets are
masked in the stored comment. WEBHOOK_AUTH_FAILURES wrong passphrases from one source (as the rate
limit counts sources) block it for WEBHOOK_AUTH_BLOCK seconds, and the block is notified once.

A POST is served by WebhookFastPath, a middleware right after SecurityMiddleware: the session, CSRF,
auth, messages, history, htmx and axes middleware and DRF's request wrapping do nothing for it, and
cost ~130 µs of CPU a request (docs/BENCHMARKS.md). The answers are the same bytes, status and
headers as through the full stack, where every other method (405, OPTIONS) still goes.
"""

import hmac
import ipaddress
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db import DatabaseError, IntegrityError, connection, connections, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from notifications.events import notify
from notifications.messages import passphrase_block_text
from notifications.redaction import redact as secrets_masked
from preferences.intake import STRATEGIES
from preferences.matching import trade_refusal
from preferences.models import StrategyPreference
from trading.intake import IntakeError, ParsedSignal, idempotency_key, parse_body, parse_signal, passphrase_of, redact
from trading.models import Signal
from trading.queue import broker_connect, enqueue_execution, enqueue_joins_transaction
from trading.rate_limit import RATE_LIMITER, rate_key

logger = logging.getLogger(__name__)
BodyReader = Callable[[], bytes]  # reads the request body only once the size check allows it


@dataclass
class Answer:
    status: int
    body: dict
    headers: dict | None = None


class Refusal(Exception):
    """Stops the checks with an answer, and the attempt is recorded; `wrong_passphrase` counts it
    towards its source's block."""

    def __init__(self, status: int, error: str, *, fields: dict | None = None, payload: dict | None = None,
                 parsed: ParsedSignal | None = None, strategy: str = "", headers: dict | None = None,
                 wrong_passphrase: bool = False) -> None:
        super().__init__(error)
        self.status, self.error, self.fields = status, error, fields
        self.payload, self.parsed, self.strategy = payload or {}, parsed, strategy
        self.headers, self.wrong_passphrase = headers, wrong_passphrase


class AlwaysJSON(BaseContentNegotiation):
    """TradingView sends no Accept header worth honouring; never answer 406."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return None

    def select_renderer(self, request: Request, renderers: Iterable[BaseRenderer],
                        format_suffix: str | None = None) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))  # the base class promises only an iterable
        return renderer, renderer.media_type


class WebhookView(APIView):
    authentication_classes: list = []
    permission_classes: list = []
    parser_classes: list = []  # the body is read raw: JSON or text/plain
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJSON

    def post(self, request: Request) -> Response:
        """Through the full stack only when WebhookFastPath is not installed (or stands aside)."""
        answer = _receive(request._request)
        return Response(answer.body, status=answer.status, headers=answer.headers)


WEBHOOK_PATHS = frozenset({"/webhook", "/webhook/"})  # alsatrade/urls.py: both spellings, a redirect loses the body
_JSON = JSONRenderer()
_ALLOW = ", ".join(WebhookView().allowed_methods)  # the Allow header DRF adds: "POST, OPTIONS"


class WebhookFastPath:
    """Answers POST /webhook straight from signal_receive, skipping the middleware after it and DRF.

    Placed right after SecurityMiddleware, which still applies (HTTPS redirect, proxy SSL header, its
    headers). Of the middleware skipped, the webhook needs only what changes its answer: the Host
    check of CommonMiddleware (a Host not in ALLOWED_HOSTS is a 400, as anywhere), its Content-Length,
    and X-Frame-Options; the rest act on sessions, cookies, users, messages and logins, which the
    webhook never reads. Should a setting make CommonMiddleware do more (DISALLOWED_USER_AGENTS,
    PREPEND_WWW), the request goes through the full stack instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if (request.method != "POST" or request.path_info not in WEBHOOK_PATHS or settings.DISALLOWED_USER_AGENTS
                or settings.PREPEND_WWW):
            return self.get_response(request)
        request.get_host()  # raises DisallowedHost (answered 400) as CommonMiddleware would
        answer = _receive(request)
        response = HttpResponse(_JSON.render(answer.body), status=answer.status, content_type="application/json")
        response["Allow"] = _ALLOW
        for name, value in (answer.headers or {}).items():
            response[name] = value
        response["X-Frame-Options"] = getattr(settings, "X_FRAME_OPTIONS", "DENY").upper()
        response["Content-Length"] = str(len(response.content))
        return response


_SAMPLE = (b'{"action": "buy", "symbol": "BTCUSDT.P", "strategy": "warm-up", "time": "2025-01-15T14:30:05Z", '
           b'"quantity": "0.001", "price": 45000, "passphrase": "-"}')


def warm_up() -> None:
    """Pay at start-up what a web process's first webhook would otherwise pay after stamping its
    receipt: importing redis-py (Django's cache imports it on first use), connecting to the database,
    Redis and the broker, loading the rate limit's script, and the parser's first run. That first
    request took ~70 ms of intake on an idle 2-core VM and several hundred under load: the window in
    which a younger signal, served by a warm process, is stored and executed first (docs/EXECUTION.md,
    step 1). alsatrade/wsgi.py calls it before the process takes requests. Best effort: a process
    whose database or Redis is away still starts, and its first webhook answers as it would have."""
    try:
        data = parse_body(_SAMPLE)
        redact(data)
        idempotency_key(parse_signal(data))
        RATE_LIMITER.warm_up()
        broker_connect()
        connection.ensure_connection()
        _connections_closed_before_fork()
    except Exception as error:
        logger.warning("webhook warm-up stopped early (%s: %s); the first webhook pays for the rest",
                       type(error).__name__, error)


@lru_cache(maxsize=1)
def _connections_closed_before_fork() -> None:
    """A process forked from this one (gunicorn's master under --preload, which is not how this app
    is served, but a setting away) must not share its database connection: close it before any fork.
    redis-py's pools notice a fork by themselves."""
    os.register_at_fork(before=connections.close_all)


def _receive(request: HttpRequest) -> Answer:
    return signal_receive(
        body_reader=lambda: request.body,
        content_length=request.META.get("CONTENT_LENGTH") or "",
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        forwarded_for=request.META.get("HTTP_X_FORWARDED_FOR", ""),
    )


def signal_receive(*, body_reader: BodyReader, content_length: str, remote_addr: str, forwarded_for: str) -> Answer:
    started = time.perf_counter()
    received_at = timezone.now()
    source_ip = client_address(remote_addr, forwarded_for)
    admission = RATE_LIMITER.admit(source_ip or remote_addr)
    if wait := admission.wait:
        _log_throttled(source_ip)
        return Answer(429, {"status": "rejected", "error": f"too many requests from {source_ip}; retry in {wait:.1f} s"},
                      {"Retry-After": str(max(1, round(wait)))})
    try:
        try:
            if admission.blocked and not _block_exempt(source_ip):
                raise _blocked_refusal(source_ip, admission.blocked)
            answer = _checked(body_reader, content_length, source_ip, received_at, started, admission.strategies)
        except StrategyGone:  # deleted since this process read it: read it again, once
            STRATEGIES.forget()
            answer = _checked(body_reader, content_length, source_ip, received_at, started, None)
    except Refusal as refusal:
        answer = _refused(refusal, source_ip, received_at, started)
        if refusal.wrong_passphrase:
            _passphrase_failed(source_ip, source_ip or remote_addr)
    except DatabaseError:
        # The database is unreachable: a 5xx makes TradingView resend in 5 s, and nothing was stored.
        logger.exception("webhook: database error; answered 503 so the sender retries")
        answer = Answer(503, {"status": "error", "error": "the signal could not be stored right now; it will be resent"})
    return answer


def _checked(body_reader: BodyReader, content_length: str, source_ip: str | None, received_at: datetime,
             started: float, generation: str | None) -> Answer:
    body = _body_within_limit(body_reader, content_length)
    if not address_allowed(source_ip):
        raise Refusal(403, f"address {source_ip} is not allowed to post signals")
    admitted = admit(body, received_at=received_at, generation=generation)
    return _store(admitted.parsed, admitted.payload, admitted.preference, source_ip, received_at, started)


@dataclass(frozen=True)
class Admitted:
    """An alert that passed the webhook's checks: what it says, as stored (redacted), and its strategy."""

    parsed: ParsedSignal
    payload: dict
    preference: StrategyPreference | None


def admit(body: bytes, *, received_at: datetime, generation: str | None, authenticate: bool = True) -> Admitted:
    """The webhook's checks of a body, in order: JSON, passphrase, fields, freshness; Refusal at the
    first that fails. The strategy page's rehearsal (trading/rehearsal.py) runs the same checks
    without the passphrase (`authenticate` False), which that page never asks for."""
    try:
        data = parse_body(body)
    except IntakeError as error:
        raise Refusal(400, error.message) from None
    raw_strategy = data.get("strategy")
    strategy_name = raw_strategy if isinstance(raw_strategy, str) else ""
    lookup = strategy_name.strip()
    preference = STRATEGIES.get(lookup, generation) if lookup else None
    given = passphrase_of(data)
    if authenticate:
        _authenticate(given, preference, strategy_name)
    _comment_masked(data, given)
    payload = redact(data)
    try:
        parsed = parse_signal(data)
    except IntakeError as error:
        raise Refusal(400, error.message, fields=error.fields, payload=payload, strategy=strategy_name[:100]) from None
    _check_fresh(parsed, preference, received_at, payload)
    return Admitted(parsed, payload, preference)


class StrategyGone(Exception):
    """The strategy this process kept was deleted meanwhile: its signal cannot refer to it."""


def _body_within_limit(body_reader: BodyReader, content_length: str) -> bytes:
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    too_large = Refusal(413, f"the body is over {limit // 1024} KiB")
    if content_length.isdigit() and int(content_length) > limit:
        raise too_large  # refused before reading it
    try:
        body = body_reader()
    except Exception:  # RequestDataTooBig, or a client that hung up mid-body
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return body


def _authenticate(given: str, preference: StrategyPreference | None, strategy_name: str) -> None:
    """A strategy with its own passphrase accepts only that one; others take WEBHOOK_PASSPHRASE."""
    if preference is not None and preference.passphrase_hash:
        if not preference.check_passphrase(given):
            raise Refusal(401, "wrong or missing passphrase", strategy=strategy_name[:100], wrong_passphrase=True)
        return
    expected = settings.WEBHOOK_PASSPHRASE
    if not expected:  # the server's omission, not the sender's guess: it counts towards no block
        raise Refusal(401, "no webhook passphrase is configured on the server (set WEBHOOK_PASSPHRASE)",
                      strategy=strategy_name[:100])
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refusal(401, "wrong or missing passphrase", strategy=strategy_name[:100], wrong_passphrase=True)


def _comment_masked(data: dict, given: str) -> None:
    """The comment is stored twice (the Signal's comment, and in its payload): with the passphrase it
    came with and every other known secret masked, as notifications are (a trader may paste the
    whole alert message into it). A comment that is not text is stored as its JSON text."""
    comment = data.get("comment")
    if comment is None or comment == "":
        return
    text = comment if isinstance(comment, str) else json.dumps(redact({"comment": comment})["comment"])
    data["comment"] = secrets_masked(text, [given])


def _check_fresh(parsed: ParsedSignal, preference: StrategyPreference | None, received_at: datetime, payload: dict) -> None:
    age = (received_at - parsed.sender_time).total_seconds()
    limit = (preference.max_signal_age if preference and preference.max_signal_age else None) or settings.WEBHOOK_MAX_SIGNAL_AGE
    if age > limit:
        raise Refusal(400, f"stale: sent {age:.1f} s ago (limit {limit} s); send {{{{timenow}}}} as the time",
                      payload=payload, parsed=parsed)
    if -age > settings.WEBHOOK_MAX_FUTURE_SKEW:
        raise Refusal(400, f"stale: its time is {-age:.1f} s in the future (limit {settings.WEBHOOK_MAX_FUTURE_SKEW} s); "
                      "check the sender's clock", payload=payload, parsed=parsed)


def filter_reason(parsed: ParsedSignal, preference: StrategyPreference | None) -> str:
    """Why the strategy's settings take no trade from this alert ("" when they do): answered 200."""
    return trade_refusal(preference, parsed.strategy, parsed.symbol)


def _store(parsed: ParsedSignal, payload: dict, preference: StrategyPreference | None, source_ip: str | None,
           received_at: datetime, started: float) -> Answer:
    """One commit: the Signal (unique by its idempotency key) and, if it is to be traded, its job."""
    reason = filter_reason(parsed, preference)
    key = idempotency_key(parsed)
    fields = signal_fields(parsed, payload, source_ip, received_at)
    # The unique key decides, not a prior SELECT. The insert is the transaction's first statement (or,
    # in autocommit, the whole of it), so a duplicate rolls back nothing else and needs no savepoint.
    try:
        with _one_commit(with_job=not reason):
            signal_id = Signal.objects.insert(
                **fields, preference_id=preference.pk if preference else None, idempotency_key=key,
                status=Signal.Status.FILTERED if reason else Signal.Status.QUEUED,
                reason=reason, http_status=200 if reason else 202,
                queued_at=None if reason else timezone.now(), intake_us=_elapsed_us(started),
            )
            if not reason:
                enqueue_execution(signal_id, parsed.symbol)
    except IntegrityError:
        return _duplicate(key, parsed, source_ip, started, preference)
    if reason:
        _log(200, "filtered", signal_id, parsed.strategy, parsed.symbol, source_ip, started, reason)
        return Answer(200, {"status": "filtered", "signal_id": signal_id, "reason": reason})
    _log(202, "queued", signal_id, parsed.strategy, parsed.symbol, source_ip, started)
    return Answer(202, {"status": "queued", "signal_id": signal_id})


def _one_commit(*, with_job: bool) -> AbstractContextManager:
    """A transaction only where one is needed: the ORM broker's job row must commit with the Signal,
    and inside a caller's transaction a failed INSERT must roll back to a savepoint. Otherwise the
    INSERT is the whole transaction and commits by itself, sparing BEGIN and COMMIT (two of five
    database round trips); a Redis job still goes out only once the Signal is committed."""
    if (with_job and enqueue_joins_transaction()) or connection.in_atomic_block:
        return transaction.atomic()
    return nullcontext()


def _duplicate(key: str, parsed: ParsedSignal, source_ip: str | None, started: float,
               preference: StrategyPreference | None) -> Answer:
    original = Signal.objects.filter(idempotency_key=key).values_list("pk", flat=True).first()
    if original is None and preference is not None:
        raise StrategyGone  # not a duplicate: the INSERT referred to a strategy no longer there
    Signal.objects.filter(idempotency_key=key).update(duplicate_count=F("duplicate_count") + 1, last_duplicate_at=timezone.now())
    _log(200, "duplicate", original, parsed.strategy, parsed.symbol, source_ip, started)
    return Answer(200, {"status": "duplicate", "signal_id": original})


def signal_fields(parsed: ParsedSignal, payload: dict, source_ip: str | None, received_at: datetime) -> dict:
    """The Signal's columns for an admitted alert."""
    return {
        "payload": payload, "action": parsed.action, "symbol": parsed.symbol, "quantity": parsed.quantity,
        "price": parsed.price, "strategy": parsed.strategy, "sender_time": parsed.sender_time,
        "market_position": parsed.market_position, "prev_market_position": parsed.prev_market_position,
        "position_size": parsed.position_size, "stop_loss": parsed.stop_loss, "take_profit": parsed.take_profit,
        "comment": parsed.comment, "quantity_type": parsed.quantity_type, "source_ip": source_ip,
        "received_at": received_at,
    }


def _refused(refusal: Refusal, source_ip: str | None, received_at: datetime, started: float) -> Answer:
    """Record the refused attempt (without the body unless it authenticated) and answer it."""
    fields: dict[str, Any] = {"payload": refusal.payload, "strategy": refusal.strategy, "source_ip": source_ip,
                              "received_at": received_at}
    if refusal.parsed is not None:
        fields = signal_fields(refusal.parsed, refusal.payload, source_ip, received_at)
    reason = refusal.error if not refusal.fields else refusal.error + " — " + "; ".join(
        f"{name}: {problem}" for name, problem in sorted(refusal.fields.items()))
    try:
        with _one_commit(with_job=False):
            signal_id = Signal.objects.insert(**fields, status=Signal.Status.REJECTED, reason=reason[:2000],
                                              http_status=refusal.status, intake_us=_elapsed_us(started))
    except DatabaseError:
        logger.exception("webhook: could not record a refused attempt")
        signal_id = None
    _log(refusal.status, "rejected", signal_id, fields["strategy"], fields.get("symbol", ""), source_ip, started, reason)
    body: dict[str, Any] = {"status": "rejected", "error": refusal.error}
    if refusal.fields:
        body["fields"] = refusal.fields
    if signal_id is not None:
        body["signal_id"] = signal_id
    return Answer(refusal.status, body, refusal.headers)


def _elapsed_us(started: float) -> int:
    return int((time.perf_counter() - started) * 1_000_000)


def _log(status: int, outcome: str, signal_id: int | None, strategy: str, symbol: str, source_ip: str | None,
         started: float, reason: str = "") -> None:
    if not logger.isEnabledFor(logging.INFO):  # at LOG_LEVEL=warning or above, not even the arguments
        return
    logger.info("webhook %s %s signal=%s strategy=%r symbol=%s ip=%s %.1fms%s", status, outcome, signal_id, strategy,
                symbol or "-", source_ip, (time.perf_counter() - started) * 1000, f" reason={reason!r}" if reason else "")


# --- source address --------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _in(address: str, entries: list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _networks(tuple(entries)))


def client_address(remote_addr: str, forwarded_for: str) -> str | None:
    """The sender's address. X-Forwarded-For is believed only from a trusted proxy, and only up to
    the first hop that is not itself a trusted proxy (a client can put anything on its left)."""
    address = remote_addr
    if forwarded_for and _in(remote_addr, settings.WEBHOOK_TRUSTED_PROXIES):
        for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
            address = hop
            if not _in(hop, settings.WEBHOOK_TRUSTED_PROXIES):
                break
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def address_allowed(address: str | None) -> bool:
    allowed = settings.WEBHOOK_ALLOWED_IPS
    return not allowed or (address is not None and _in(address, allowed))


# --- blocks for wrong passphrases (trading/rate_limit.py keeps the counts) -----------------------------
def _block_exempt(address: str | None) -> bool:
    """An address WEBHOOK_ALLOWED_IPS names is never blocked: TradingView's four are shared by all its
    users, and anyone who knows the URL could otherwise lock out the trader's own alerts."""
    allowed = settings.WEBHOOK_ALLOWED_IPS
    return bool(allowed) and address is not None and _in(address, allowed)


def _blocked_refusal(address: str | None, left: float) -> Refusal:
    return Refusal(429, f"too many wrong passphrases from {address}; blocked, retry in {left:.0f} s",
                   headers={"Retry-After": str(max(1, round(left)))})


def _passphrase_failed(address: str | None, counted_as: str) -> None:
    if not RATE_LIMITER.passphrase_failed(counted_as):
        return
    exempt = _block_exempt(address)
    logger.warning("webhook: %s wrong passphrases from %s (last %s)%s", settings.WEBHOOK_AUTH_FAILURES,
                   rate_key(counted_as), address, "; not blocked: WEBHOOK_ALLOWED_IPS names it" if exempt else "")
    notify("limit", passphrase_block_text(source=rate_key(counted_as), address=address or counted_as, exempt=exempt))


# --- rate limit (trading/rate_limit.py: one limit per deployment, through the cache) ------------------
_last_throttle_log = [0.0]


def _log_throttled(address: str | None) -> None:
    now = time.monotonic()
    if now - _last_throttle_log[0] >= 1:
        _last_throttle_log[0] = now
        logger.warning("webhook 429 rate limited ip=%s", address)
