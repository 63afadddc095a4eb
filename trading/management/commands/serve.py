"""`make run`: migrate, make sure there is a login, and serve web + worker together until Ctrl-C."""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

SECRETS_DIR = Path(settings.BASE_DIR) / ".secrets"


def _secret_file(name: str, length: int) -> tuple[str, bool]:
    """A generated secret kept in .secrets/ (git-ignored, mode 0600), so it survives restarts."""
    path = SECRETS_DIR / name
    if path.exists():
        return path.read_text().strip(), False
    SECRETS_DIR.mkdir(mode=0o700, exist_ok=True)
    value = secrets.token_urlsafe(length)
    path.write_text(value + "\n")
    path.chmod(0o600)
    return value, True


class Command(BaseCommand):
    help = ("Migrate, create an admin login if none exists, and run the web server, a worker and the exchange's "
            "user data stream until Ctrl-C.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--web-workers", default=os.environ.get("WEB_CONCURRENCY", "2"))

    def handle(self, *args: str, host: str, port: str, web_workers: str, **options: object) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        env = os.environ.copy()
        base = f"http://{host}:{port}"
        self._ensure_login(base)
        self._ensure_passphrase(env, base)
        self._ensure_example_strategy()
        self.stdout.write(f"Exchange: {settings.EXCHANGE}. Health: {base}/health. Ctrl-C stops web, worker and stream.\n")
        web = [sys.executable, "-m", "gunicorn", "alsatrade.wsgi", "--bind", f"{host}:{port}", "--workers", web_workers,
               "--access-logfile", "-", "--log-level", "warning"]
        # The exchange's own events as they happen: protective fills, liquidations, trades by hand (trading/live.py).
        stream = [sys.executable, "manage.py", "userstream"]
        commands = [web, [sys.executable, "manage.py", "qcluster"], stream]
        # Each child in a session of its own: Ctrl-C reaches only this supervisor, which then stops each
        # child's main process. (A SIGINT/SIGTERM to qcluster's whole process group kills its workers
        # mid-job and leaves its main process hung: docs/DEPLOY.md.)
        sys.exit(self._supervise([subprocess.Popen(command, env=env, start_new_session=True) for command in commands]))

    def _ensure_login(self, base: str) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            self.stdout.write(f"Admin: {base}/admin/ (your existing superuser).")
            return
        password, _ = _secret_file("admin-password", 18)
        users.objects.create_superuser("admin", "", password)
        self.stdout.write(
            f"Admin: {base}/admin/ as user 'admin'; the password is in .secrets/admin-password "
            "(change it under Users once logged in)."
        )

    def _ensure_passphrase(self, env: dict[str, str], base: str) -> None:
        if settings.WEBHOOK_PASSPHRASE:
            self.stdout.write(f"Webhook: POST {base}/webhook with WEBHOOK_PASSPHRASE as the passphrase.")
            return
        if settings.EXCHANGE != "paper":
            self.stdout.write(self.style.WARNING("WEBHOOK_PASSPHRASE is not set: webhooks are refused until it is."))
            return
        passphrase, _ = _secret_file("webhook-passphrase", 24)
        env["WEBHOOK_PASSPHRASE"] = passphrase
        self.stdout.write(
            f"Webhook: POST {base}/webhook; the passphrase (paper mode) is in .secrets/webhook-passphrase. "
            "README.md shows a curl line to try."
        )

    def _ensure_example_strategy(self) -> None:
        """Paper mode on a fresh database: one strategy, so the README's first curl trades."""
        from preferences.models import StrategyPreference

        if settings.EXCHANGE != "paper" or StrategyPreference.objects.exists():
            return
        StrategyPreference.objects.create(
            name="ALSAPRO 1", products=["BTCUSDT", "ETHUSDT"], leverage=5, sizing=StrategyPreference.Sizing.AUTO,
            notes="Example created by `make run` in paper mode; edit or delete it.",
        )
        self.stdout.write("Strategy: created the example 'ALSAPRO 1' (BTCUSDT, ETHUSDT at 5x; the alert's quantity, "
                          "else 10% of equity) in paper mode.")

    def _supervise(self, processes: list[subprocess.Popen[bytes]]) -> int:
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        while not stopping and all(p.poll() is None for p in processes):
            time.sleep(0.2)
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        failed = [p.returncode for p in processes if p.returncode not in (0, -signal.SIGTERM, -signal.SIGINT)]
        return 0 if stopping and not failed else 1
