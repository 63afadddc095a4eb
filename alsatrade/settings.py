"""Alsa Trade settings: one module, read from the environment through django-environ.

Every variable in docs/CONFIGURATION.md has a default that runs a fresh checkout on SQLite in paper
mode. A bad value stops start-up with an ImproperlyConfigured error naming the variable.
"""

import ipaddress
import os
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
# A `.env` in the project root fills in what the real environment leaves unset (.env.example lists
# every variable). The test settings skip it: a developer's .env may hold real exchange keys.
if os.environ.get("DJANGO_SETTINGS_MODULE", "alsatrade.settings") == "alsatrade.settings" and (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    """A strict boolean: django-environ reads any unknown word as False, which hides typos."""
    raw = env.str(name, default=str(int(default))).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off.")


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = env.str(name, default=default).strip().lower()
    if raw not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of: {', '.join(choices)}.")
    return raw


def env_int(name: str, default: int, *, low: int, high: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={value} is out of range: {low}..{high}.")
    return value


def env_decimal(name: str, default: str, *, low: Decimal, high: Decimal) -> Decimal:
    raw = env.str(name, default=default).strip()
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number.") from None
    if not value.is_finite() or not low <= value <= high:
        raise ImproperlyConfigured(f"{name}={raw} is out of range: {low}..{high}.")
    return value


def env_list(name: str) -> list[str]:
    return [item.strip() for item in env.str(name, default="").split(",") if item.strip()]


# --- Django core -------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is not set: set it (50+ random characters), or DEBUG=1 for development.")
    SECRET_KEY = "django-insecure-development-key-only-used-when-DEBUG-is-1"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS") or (["127.0.0.1", "localhost", "[::1]", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # API tokens stored as SHA-512 digests, with an expiry (REST_KNOX below).
    "knox",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "axes",
    "simple_history",
    "trading",
    # After trading: Django runs a command from the first app that has it, and trading's `qcluster`
    # (refusing an unmigrated database) wraps django-q2's.
    "django_q",
    "preferences",
    "analytics",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # POST /webhook is answered here, past SecurityMiddleware and ahead of everything below, which it
    # does not use (trading/webhook.py; docs/BENCHMARKS.md, Webhook acknowledgement).
    "trading.webhook.WebhookFastPath",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The Content-Security-Policy header on every page (CONTENT_SECURITY_POLICY below); below the
    # webhook and the static files, which are no pages and need not pay for it.
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Hands the request to django-simple-history, so a strategy's history row records who changed it.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # request.htmx: a page view answers an htmx poll with its fragment only (STYLE.md, Pages).
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a login refused for too many failures into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "alsatrade.urls"
WSGI_APPLICATION = "alsatrade.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web and worker processes write the same file: WAL lets readers go on during a write, and
    # IMMEDIATE transactions take the write lock at BEGIN, so two writers queue up (for `timeout`
    # seconds) instead of failing with "database is locked" half-way through a transaction.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env_int("DB_CONN_MAX_AGE", 60, low=0, high=3600))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env_bool("DB_PREPARED_STATEMENTS", True):
        # Values sent apart from the statement, and a statement run 5 times on a connection prepared
        # there: PostgreSQL parses and plans the webhook's INSERT and the worker's statements once per
        # connection, not on every run (docs/BENCHMARKS.md). Off (0) behind a pooler in transaction
        # mode that cannot keep prepared statements (PgBouncer before 1.21).
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, broker, worker ---------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Per process: without Redis, each web process keeps its own webhook rate limit. Room for many
    # addresses, so a flood from many sources does not evict the limiter's counts.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "OPTIONS": {"MAX_ENTRIES": 20_000}}}

# At-least-once delivery: a task not acknowledged within `retry` seconds is delivered again, so
# `timeout` (the longest a task may run) stays below it. Execution claims its signal atomically, so
# a second delivery does nothing. `poll` sets the ORM broker's dispatch latency (docs/BENCHMARKS.md).
Q_CLUSTER = {
    "name": "alsatrade",
    "workers": env_int("Q_WORKERS", 2, low=1, high=64),
    "timeout": 60,
    "retry": 90,
    "max_attempts": 3,
    "ack_failures": True,
    "poll": float(env_decimal("Q_POLL", "0.03", low=Decimal("0.01"), high=Decimal("5"))),
    # Success records are pruned by the retention job (Q_SUCCESS_KEEP_DAYS), not on every save: with a
    # save_limit, django-q2 loads up to that many rows per task saved, which made the result saver fall
    # 16-28 s behind at 20 signals/s and held recycling workers (docs/BENCHMARKS.md, Steady load).
    "save_limit": 0,
    # A worker process is replaced after this many tasks (django-q2's default is 500: both workers every
    # ~50 s at 20/s, a latency tail each time); memory stays flat over 10,000 signals without it.
    "recycle": 5000,
    "catch_up": False,
    "label": "Background jobs",
}
# Order threads per worker process: how many symbols' orders one process keeps in flight at once
# (trading/concurrency.py). Each busy thread holds a database connection and an HTTP connection to the
# exchange, and costs ~0.1-0.3 MB of the worker's memory (docs/CONFIGURATION.md).
WORKER_THREADS = env_int("WORKER_THREADS", 16, low=1, high=256)
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Exchange ----------------------------------------------------------------------------------
EXCHANGE = env_choice("EXCHANGE", "paper", ("paper", "binance"))
# Accounts' API keys at rest (trading/keyring.py): comma-separated Fernet keys, the first encrypts,
# every one decrypts (rotation: docs/CONFIGURATION.md). Empty with DEBUG=1: one kept in .secrets/.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEY")
BINANCE_API_KEY = env.str("BINANCE_API_KEY", default="")
BINANCE_API_SECRET = env.str("BINANCE_API_SECRET", default="")
BINANCE_USE_TESTNET = env_bool("BINANCE_USE_TESTNET", True)
BINANCE_BASE_URL = env.str("BINANCE_BASE_URL", default="").rstrip("/") or (
    "https://demo-fapi.binance.com" if BINANCE_USE_TESTNET else "https://fapi.binance.com"
)
# The user data stream (live fills, liquidations, protective fills): `manage.py userstream`.
BINANCE_STREAM_URL = env.str("BINANCE_STREAM_URL", default="").rstrip("/") or (
    "wss://fstream.binancefuture.com/ws" if BINANCE_USE_TESTNET else "wss://fstream.binance.com/private/ws"
)
BINANCE_TIMEOUT = float(env_decimal("BINANCE_TIMEOUT", "5", low=Decimal("0.1"), high=Decimal("60")))
BINANCE_RECV_WINDOW = env_int("BINANCE_RECV_WINDOW", 5000, low=1, high=60000)
# Leverage and margin type can be changed in Binance's app: remembered ones older than this many
# seconds are read again before an opening order (trading/account_setup.py).
EXCHANGE_SETTINGS_MAX_AGE = env_int("EXCHANGE_SETTINGS_MAX_AGE", 300, low=0, high=86400)
# Binance's futures test environment: its REST hosts (the demo one and the older testnet's) and its
# stream's. Any other host, a proxy included, may be production: real money.
BINANCE_TEST_HOSTS = frozenset({"demo-fapi.binance.com", "testnet.binancefuture.com", "fstream.binancefuture.com"})


def exchange_host(name: str, url: str, secure: str, plain: str) -> str:
    """The URL's host, once its scheme is known safe: `secure` (https, wss), or `plain` only to this
    machine (a local fake), since the signed requests and the stream's events would cross the network
    in the clear."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in (secure, plain):
        raise ImproperlyConfigured(f"{name}={url!r} is not a {secure}:// URL.")
    if parts.scheme == plain and not is_loopback(host):
        raise ImproperlyConfigured(f"{name}={url!r}: use {secure}://; {plain}:// only to this machine "
                                   "(127.0.0.0/8, ::1, localhost).")
    return host


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


BINANCE_HOST = exchange_host("BINANCE_BASE_URL", BINANCE_BASE_URL, "https", "http")
exchange_host("BINANCE_STREAM_URL", BINANCE_STREAM_URL, "wss", "ws")
if EXCHANGE == "binance":
    # Debug pages show settings and tracebacks to anyone who reaches the site: never with real money.
    # Decided by where the orders go, not by BINANCE_USE_TESTNET, which BINANCE_BASE_URL overrides.
    if DEBUG and not (BINANCE_HOST in BINANCE_TEST_HOSTS or is_loopback(BINANCE_HOST)):
        raise ImproperlyConfigured(
            f"DEBUG=1 with EXCHANGE=binance sends orders to {BINANCE_HOST} (BINANCE_BASE_URL, or BINANCE_USE_TESTNET=0), "
            "which is not Binance's test environment: real money in debug mode. Set DEBUG=0, or point BINANCE_BASE_URL "
            "at https://demo-fapi.binance.com or a local fake."
        )
    for _name in ("BINANCE_API_KEY", "BINANCE_API_SECRET"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"{_name} is not set, and EXCHANGE=binance needs it.")

PAPER_BALANCE = env_decimal("PAPER_BALANCE", "10000", low=Decimal("0"), high=Decimal("1e12"))
PAPER_TAKER_FEE = env_decimal("PAPER_TAKER_FEE", "0.0005", low=Decimal("0"), high=Decimal("0.01"))
PAPER_HEDGE_MODE = env_bool("PAPER_HEDGE_MODE", False)  # the paper account in hedge mode (docs/EXECUTION.md)
# The paper market's prices between alerts: a Binance USDⓈ-M REST base URL whose public mark prices
# (GET /fapi/v1/premiumIndex) the user data stream process reads every PAPER_PRICE_FEED_SECONDS, so
# resting limit entries, stops, ladders and trailing stops trigger where the market goes. Empty: the
# paper market moves only with the prices alerts carry. https://fapi.binance.com for the real one.
PAPER_PRICE_FEED = env.str("PAPER_PRICE_FEED", default="").rstrip("/")
PAPER_PRICE_FEED_SECONDS = float(env_decimal("PAPER_PRICE_FEED_SECONDS", "2", low=Decimal("0.2"), high=Decimal("3600")))

# A queued signal not executed within this many seconds of its receipt is not traded any more: a
# worker that was down for ten minutes must not fire ten-minute-old orders when it comes back.
EXECUTION_MAX_DELAY = env_int("EXECUTION_MAX_DELAY", 30, low=1, high=3600)
# A symbol's lane is leased for this long and renewed every quarter of it by the holder's keeper
# thread: a worker killed on another host frees its lanes within LANE_LEASE (docs/EXECUTION.md).
LANE_LEASE = float(env_decimal("LANE_LEASE", "3", low=Decimal("1"), high=Decimal("60")))
LANE_KEEPER = env_bool("LANE_KEEPER", True)

# --- Webhook -----------------------------------------------------------------------------------
WEBHOOK_PASSPHRASE = env.str("WEBHOOK_PASSPHRASE", default="")
WEBHOOK_PASSPHRASE_MIN_LENGTH = 24
# With real orders, a passphrase short enough to guess is refused. Unset stays allowed: every webhook
# without a strategy passphrase of its own is then refused.
if EXCHANGE == "binance" and WEBHOOK_PASSPHRASE and len(WEBHOOK_PASSPHRASE) < WEBHOOK_PASSPHRASE_MIN_LENGTH:
    raise ImproperlyConfigured(
        f"WEBHOOK_PASSPHRASE has {len(WEBHOOK_PASSPHRASE)} characters; with EXCHANGE=binance it needs at least "
        f"{WEBHOOK_PASSPHRASE_MIN_LENGTH}: python -c \"import secrets; print(secrets.token_urlsafe(32))\""
    )
# TradingView's documented source addresses; WEBHOOK_ALLOWED_IPS=tradingview selects them.
TRADINGVIEW_IPS = ["52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7"]
WEBHOOK_ALLOWED_IPS = [
    ip for item in env_list("WEBHOOK_ALLOWED_IPS") for ip in (TRADINGVIEW_IPS if item.lower() == "tradingview" else [item])
]
WEBHOOK_TRUSTED_PROXIES = env_list("WEBHOOK_TRUSTED_PROXIES")
for _name in ("WEBHOOK_ALLOWED_IPS", "WEBHOOK_TRUSTED_PROXIES"):
    for _entry in globals()[_name]:
        try:
            ipaddress.ip_network(_entry, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{_name}: {_entry!r} is not an IP address or network (e.g. 10.0.0.0/8).") from None
WEBHOOK_MAX_BODY_BYTES = 64 * 1024
WEBHOOK_MAX_SIGNAL_AGE = env_int("WEBHOOK_MAX_SIGNAL_AGE", 60, low=1, high=7 * 24 * 3600)
WEBHOOK_MAX_FUTURE_SKEW = env_int("WEBHOOK_MAX_FUTURE_SKEW", 5, low=0, high=3600)
# A bar close sends every strategy's alert in the same second, from TradingView's four addresses (or
# one): 300 at once per address, a 6 s window (issue #18; docs/CONFIGURATION.md).
WEBHOOK_RATE_BURST = env_int("WEBHOOK_RATE_BURST", 300, low=1, high=1_000_000)
WEBHOOK_RATE_PER_SECOND = env_int("WEBHOOK_RATE_PER_SECOND", 50, low=1, high=1_000_000)
# After WEBHOOK_AUTH_FAILURES wrong passphrases within WEBHOOK_AUTH_WINDOW seconds, a source (an IPv4
# address, an IPv6 /64) is answered 429 for WEBHOOK_AUTH_BLOCK seconds without its passphrase being
# checked (trading/rate_limit.py). 0 failures: never blocked.
WEBHOOK_AUTH_FAILURES = env_int("WEBHOOK_AUTH_FAILURES", 10, low=0, high=1_000_000)
WEBHOOK_AUTH_WINDOW = env_int("WEBHOOK_AUTH_WINDOW", 600, low=1, high=7 * 24 * 3600)
WEBHOOK_AUTH_BLOCK = env_int("WEBHOOK_AUTH_BLOCK", 900, low=1, high=7 * 24 * 3600)
# Refused attempts that never authenticated (401, 403, 413, unreadable 400, a blocked source's 429) are anyone's to send:
# a scheduled job keeps only this many of the newest (trading/retention.py).
WEBHOOK_REFUSED_KEEP = env_int("WEBHOOK_REFUSED_KEEP", 10_000, low=0, high=100_000_000)
# django-q2's records of successful jobs older than this are deleted by the same job.
Q_SUCCESS_KEEP_DAYS = env_int("Q_SUCCESS_KEEP_DAYS", 7, low=1, high=3650)
# /health answers its detail to a staff session or `Authorization: Bearer <HEALTH_TOKEN>`; unset: staff only.
HEALTH_TOKEN = env.str("HEALTH_TOKEN", default="").strip()
if HEALTH_TOKEN and len(HEALTH_TOKEN) < 16:
    raise ImproperlyConfigured("HEALTH_TOKEN is too short to be a secret: use 16+ random characters, or leave it unset.")

# --- Notifications and e-mail (docs/CONFIGURATION.md, Notifications) -----------------------------
# Channels (Telegram, Discord, e-mail) are configured in the admin; these tune how they are reached.
NOTIFY_TELEGRAM_API = env.str("NOTIFY_TELEGRAM_API", default="https://api.telegram.org").rstrip("/")
if not NOTIFY_TELEGRAM_API.startswith("https://"):
    raise ImproperlyConfigured(f"NOTIFY_TELEGRAM_API={NOTIFY_TELEGRAM_API!r}: only an https:// URL is allowed.")
# Channels post only to Discord's hosts, NOTIFY_TELEGRAM_API's host and these (a relay of your own),
# and only when every address the host resolves to is public (notifications/destinations.py).
NOTIFY_ALLOWED_HOSTS = [host.lower().rstrip(".") for host in env_list("NOTIFY_ALLOWED_HOSTS")]
for _item in NOTIFY_ALLOWED_HOSTS:
    if "/" in _item or " " in _item or _item.count(":") == 1:
        raise ImproperlyConfigured(f"NOTIFY_ALLOWED_HOSTS: {_item!r} is not a host name (no scheme, path or port).")
# Test-only, never read from the environment: lets the tests' local receiver (plain http on 127.0.0.1)
# through the address checks that otherwise keep channels from posting inside the network.
NOTIFY_ALLOW_PRIVATE_ADDRESSES = False
NOTIFY_TIMEOUT = float(env_decimal("NOTIFY_TIMEOUT", "3", low=Decimal("0.1"), high=Decimal("30")))

# Seconds to wait before each retry of a failed delivery: the list's length + 1 attempts in all.
NOTIFY_RETRY_DELAYS: list[int] = []
for _item in env_list("NOTIFY_RETRY_DELAYS") or ["30", "120", "600", "3600"]:
    if not _item.isdigit() or not 1 <= int(_item) <= 86400:
        raise ImproperlyConfigured(f"NOTIFY_RETRY_DELAYS: {_item!r} is not a whole number of seconds (1..86400).")
    NOTIFY_RETRY_DELAYS.append(int(_item))
# Prefixed to the `/ui/executions/<id>/` link in messages, e.g. https://trade.example.com; unset: the path alone.
NOTIFY_BASE_URL = env.str("NOTIFY_BASE_URL", default="").rstrip("/")
# The worker's deliver job hands the request to a sender thread and returns at once, so a chat
# service that hangs never holds a worker a signal needs. Tests turn it off to send in the job itself.
NOTIFY_SEND_IN_THREAD = True

# Django's SMTP settings, for e-mail channels. Unset: localhost:25, which most hosts do not serve.
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, low=1, high=65535)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are both on: STARTTLS (port 587) or SSL (port 465), not both.")
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10, low=1, high=120)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="alsatrade@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- REST API ----------------------------------------------------------------------------------
# A token lasts API_TOKEN_TTL_DAYS from its creation (`manage.py api_token create`); 0: until deleted.
API_TOKEN_TTL_DAYS = env_int("API_TOKEN_TTL_DAYS", 90, low=0, high=3650)
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS) if API_TOKEN_TTL_DAYS else None,
    "AUTH_HEADER_PREFIX": "Token",  # the header scripts already send: `Authorization: Token <key>`
    "AUTO_REFRESH": False,  # a token in use still ends when its time is up
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "alsatrade.api_tokens.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "alsatrade.api_fields.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The API's OpenAPI 3 schema and its Swagger UI, served from vendored assets (no outside CDN).
SPECTACULAR_SETTINGS = {
    "TITLE": "Alsa Trade API",
    "DESCRIPTION": "Execution history, account summary and strategy preferences. Authenticate with `Authorization: Token …`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI's default validator is an outside service (validator.swagger.io): keep the page local.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "PREPROCESSING_HOOKS": ["alsatrade.openapi.api_endpoints_only"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "alsatrade.openapi.preference_operations",
        "alsatrade.openapi.unauthenticated_responses",
    ],
}

# --- Login throttle (django-axes): the admin's and the traders' login pages ----------------------
# Failed logins are counted three ways, each with its own limit (alsatrade/login_throttle.py): one
# username from one address (a guesser at one account), one address across usernames (a guesser
# trying many accounts), one username across addresses (a guesser with many addresses). Reaching any
# limit refuses the login (429) for AXES_COOLOFF_MINUTES from the failure that locked it, even with
# the right password; a successful login clears its own username's count from its own address.
# The REST API's tokens never pass through a login, so scripts are not throttled here.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, low=1, high=1000)
LOGIN_THROTTLE_LIMITS = {
    ("username", "ip_address"): AXES_FAILURE_LIMIT,
    ("ip_address",): env_int("AXES_ADDRESS_FAILURE_LIMIT", 20, low=1, high=10_000),
    ("username",): env_int("AXES_USERNAME_FAILURE_LIMIT", 20, low=1, high=10_000),
}
AXES_LOCKOUT_PARAMETERS = [list(parameters) for parameters in LOGIN_THROTTLE_LIMITS]
AXES_HANDLER = "alsatrade.login_throttle.LoginThrottle"
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15, low=1, high=7 * 24 * 60))
AXES_RESET_ON_SUCCESS = True
# Attempts during a lock are refused unrecorded: a guesser hammering a locked pair neither extends its
# lock nor grows its row (axes appends each attempt's form data to it).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False  # no start-up banner on every manage.py command
# The address as the webhook reads it: X-Forwarded-For only from WEBHOOK_TRUSTED_PROXIES, so a client
# cannot pick a fresh address for each guess, and behind a proxy users are not all one address.
AXES_CLIENT_IP_CALLABLE = "alsatrade.login_throttle.login_client_address"
AXES_COOLOFF_MESSAGE = (
    "Too many failed logins for this username or from your address: try again in "
    f"{AXES_COOLOFF_TIME // timedelta(minutes=1)} minutes, or ask an administrator to unlock it."
)

# --- Sessions and Content-Security-Policy ------------------------------------------------------
# A login lasts SESSION_MAX_HOURS (Django's default is two weeks). Use does not renew it, so it ends
# that many hours after the login, and a browser left open somewhere stops being a key to the kill switch.
SESSION_COOKIE_AGE = env_int("SESSION_MAX_HOURS", 12, low=1, high=7 * 24) * 3600

# Every page's scripts come from our own files only (django-csp): markup that ever slipped into a page
# could not run script. Style attributes stay allowed (the bars' widths on our pages, DRF's browsable
# API, simple-history's list); <style> blocks do not. /api/docs/ loads its Swagger set-up as a file too.
# lightweight-charts (static/vendor/) draws TradingView's attribution logo, which its licence asks
# for, with a <style> element of its own: that exact text is allowed by its hash, no other <style>.
CHARTS_LOGO_STYLE = "'sha256-3pRED1tOXas1FXFoPb9TGCjmYe9XQsmO9OV23khV2nY='"
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", CHARTS_LOGO_STYLE],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Auth, i18n, static ------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# django-axes first: it refuses a locked-out username+address before the password is even checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/ui/"
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Production security (python manage.py check --deploy is clean with DEBUG=0) -----------------
# Believe X-Forwarded-Proto only behind a proxy that sets it (any client can send the header): on
# when SECURE_PROXY_SSL_HEADER=1, or by default when a proxy is declared in WEBHOOK_TRUSTED_PROXIES.
if env_bool("SECURE_PROXY_SSL_HEADER", bool(WEBHOOK_TRUSTED_PROXIES)):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^health$"]  # monitors probe over plain HTTP inside the network
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, low=0, high=63072000)
# Opt-in: both bind every subdomain of the domain to HTTPS, and leaving the browsers' preload list
# takes months. The operator decides; check --deploy is not asked to nag about a deliberate choice.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SILENCED_SYSTEM_CHECKS = [
    check for check, opted_in in (("security.W005", SECURE_HSTS_INCLUDE_SUBDOMAINS), ("security.W021", SECURE_HSTS_PRELOAD))
    if not opted_in
]

# --- Logging: one line per event on stdout; secrets are masked by a filter as a last line of defence
LOG_LEVEL = env_choice("LOG_LEVEL", "info", ("debug", "info", "warning", "error")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "alsatrade.logging.RedactSecrets"}},
    "formatters": {"line": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "line", "filters": ["redact"]}
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # The connector logs every URL and raw answer at DEBUG through the root logger; keep
        # urllib3 quiet too, so signed query strings never reach the log even at LOG_LEVEL=debug.
        "urllib3": {"level": "WARNING"},
        "django-q": {"level": "WARNING" if LOG_LEVEL != "DEBUG" else "DEBUG"},
    },
}
