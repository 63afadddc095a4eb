"""Settings of the floor app: the real app's database (same URL, same connection reuse and health
checks) and Redis, and nothing else — no middleware, one app, one URL."""

import environ

env = environ.Env()

DEBUG = False
SECRET_KEY = env.str("SECRET_KEY", default="floor-bench-only-not-a-secret-" + "x" * 30)
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["floor"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "floor.urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# As alsatrade/settings.py sets them for a server database, so the floor pays what the app pays.
DATABASES = {"default": env.db("DATABASE_URL")}
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("CONN_MAX_AGE", 60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DB_PREPARED_STATEMENTS", True):
        DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
else:
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20,
                                       "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/14")
FLOOR_LIST_KEY = "bench-floor:q"
LOGGING_CONFIG = None  # Django's default logging set-up is not part of the floor either
