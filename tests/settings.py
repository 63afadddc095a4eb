"""Settings for the test run: the project's own, with development defaults and test-only tweaks."""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("WEBHOOK_PASSPHRASE", "test-passphrase-0123456789")
# A test's database transaction hides the lane rows from a keeper thread's own connection (and on
# SQLite would block it): tests renew from the holder's thread; worker subprocesses turn it on.
os.environ.setdefault("LANE_KEEPER", "0")

from alsatrade.settings import *  # noqa: E402,F403
from alsatrade.settings import BASE_DIR, DATABASES, Q_CLUSTER  # noqa: E402

# Tests never collect static files, so the manifest storage has nothing to map names to.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Keep test jobs out of a developer's running worker queue.
Q_CLUSTER = {**Q_CLUSTER, "name": "alsatrade-test"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, so threads and subprocesses of a test see the same database.
    (BASE_DIR / "tmp").mkdir(exist_ok=True)
    # TEST_SQLITE_NAME lets two test runs share a checkout without sharing a database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "tmp" / os.environ.get("TEST_SQLITE_NAME", "test.sqlite3"))}
