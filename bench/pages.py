"""The trader pages' own cost: dashboard, executions list and analytics over a large history (and the
API's analytics and account-history endpoints, which read the same figures).

Builds a throw-away SQLite database (or --database-url) holding 10,000 executions (each with its
signal and order), 50,000 ledger lines and 60 days of one-a-minute account snapshots
(tests/ui/bulk_records.py), logs in with Django's test Client and times each page in this process:
the view, its queries and its template, without a web server or network. Production-like settings
(DEBUG=0). A trivial login-required page (the admin index) is timed the same way, so the figures can
be read as multiples of what the framework alone costs on this machine.

The analytics page caches its figures until the data changes (analytics/performance.py): "warm" is
every request after the first; "cold" clears the cache before each request, as the first visit after
a new fill, ledger line or snapshot pays.

    .venv/bin/python bench/pages.py [--requests 30] [--executions 10000] [--ledger 50000] [--snapshot-days 60]
"""

import argparse
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

PAGES = (
    ("dashboard", "/ui/", False),
    ("executions list", "/ui/executions/", False),
    ("analytics, all time (warm)", "/ui/analytics/?period=all", False),
    ("analytics, all time (cold)", "/ui/analytics/?period=all", True),
    ("analytics, 7 days (cold)", "/ui/analytics/?period=7d", True),
    ("account history", "/ui/account/", False),
    ("account history (cold)", "/ui/account/", True),
    ("API: GET /analytics/summary (cold)", "/analytics/summary?period=all", True),
    ("API: GET /account/history", "/account/history", False),
)
REFERENCES = (
    ("reference: admin index", "/admin/", False),
    ("reference: empty signals list", "/ui/signals/?status=filtered", False),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--ledger", type=int, default=50_000)
    parser.add_argument("--snapshot-days", type=int, default=60)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    scratch = None if args.database_url else tempfile.mkdtemp(prefix="alsatrade-bench-")
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "alsatrade.settings", "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "testserver", "SECURE_SSL_REDIRECT": "0", "LOG_LEVEL": "error", "EXCHANGE": "paper",
        "DATABASE_URL": args.database_url or f"sqlite:///{scratch}/bench.sqlite3",
    })
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import override_settings, setup_test_environment

    from common import machine

    call_command("migrate", verbosity=0)
    print(f"machine: {machine()}")
    print("load average before: {:.2f} {:.2f} {:.2f} (other work on the machine skews every figure)".format(*os.getloadavg()))
    seconds = seed(args)
    print(f"database: {os.environ['DATABASE_URL'].split('://')[0]}; {args.executions} executions (with orders), "
          f"{args.ledger} ledger lines, {args.snapshot_days * 1440} snapshots; seeded in {seconds:.1f} s")
    setup_test_environment()
    # Static files are not collected for a throw-away run: plain storage instead of the manifest.
    with override_settings(STORAGES={
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }):
        run(args.requests)
    print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if scratch:
        shutil.rmtree(scratch, ignore_errors=True)


def seed(args: argparse.Namespace) -> float:
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from tests.ui.bulk_records import bulk_history

    started = time.perf_counter()
    with transaction.atomic():
        bulk_history(executions=args.executions, ledger=args.ledger, snapshots=args.snapshot_days * 1440,
                     days=args.snapshot_days)
        get_user_model().objects.create_superuser("bench", password="bench-password-0123")
    return time.perf_counter() - started


def run(count: int) -> None:
    from django.core.cache import cache
    from django.test import Client

    from common import percentile

    client = Client()
    # Through the login form, as a trader does (the login throttle wants a request to judge).
    response = client.post("/accounts/login/", {"username": "bench", "password": "bench-password-0123"})
    assert response.status_code == 302, response.status_code
    results = {}
    for label, url, cold in (*REFERENCES, *PAGES):
        client.get(url)  # the first request compiles templates and fills per-process caches
        timings = []
        for _ in range(count):
            if cold:
                cache.clear()
            started = time.perf_counter()
            response = client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, (url, response.status_code)
        results[label] = timings
    reference = percentile(results[REFERENCES[0][0]], 50)
    print(f"\n{count} requests each, ms (× = p50 ÷ the admin index's p50)")
    print(f"{'page':34} {'p50':>8} {'p90':>8} {'p99':>8} {'×':>6}")
    for label, timings in results.items():
        p50 = percentile(timings, 50)
        print(f"{label:34} {p50:8.1f} {percentile(timings, 90):8.1f} {percentile(timings, 99):8.1f} {p50 / reference:6.1f}")


if __name__ == "__main__":
    main()
