"""README's first steps: the buy example is followed at once by the literal close command, and the
API token command works as written."""

import json
import os
import re
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.support.cluster import database_url

ROOT = Path(__file__).resolve().parents[2]

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_it_shows_the_close_command_right_after_the_first_buy():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    buy = next(n for n, block in enumerate(blocks) if '"action": "buy"' in block)
    close = blocks[buy + 1]
    assert close.startswith("curl -s http://127.0.0.1:8000/webhook") and '"action": "close"' in close
    assert "$(cat .secrets/webhook-passphrase)" in close


def first_buy() -> dict:
    block = next(block for block in re.findall(r"```sh\n(.*?)```", README, re.DOTALL) if '"action": "buy"' in block)
    body = block[block.index("-d '{") + 4:block.index("}'") + 1]
    return json.loads(re.sub(r"'\"\$\(.*?\)\"'", "", body))


@pytest.mark.django_db
def test_it_buys_what_the_readme_says_the_first_alert_buys(committed_client):
    from preferences.models import StrategyPreference
    from tests.support.queue import run_queued_jobs
    from trading.management.commands.serve import Command
    from trading.models import Order

    Command()._ensure_example_strategy()  # what `make run` creates on a fresh database
    assert StrategyPreference.objects.get().sizing == "auto"
    alert = {**first_buy(), "time": datetime.now(UTC).isoformat(), "passphrase": "test-passphrase-0123456789"}
    response = committed_client.post("/webhook", json.dumps(alert), content_type="application/json")
    assert response.status_code == 202, response.content
    run_queued_jobs()
    stated = re.search(r"the buy filled ([\d.]+) BTC", README.replace("\n", " "))
    assert stated is not None
    assert Order.objects.get().executed_qty == Decimal(stated.group(1))


@pytest.mark.slow  # starts manage.py
@pytest.mark.django_db(transaction=True)  # the command's process must see the test database
def test_it_makes_a_working_api_token_with_the_readme_command_as_written():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    line = next(line for block in blocks for line in block.splitlines() if "manage.py api_token create" in line)
    command = re.fullmatch(r"TOKEN=\$\((.*)\)", line)[1]
    # Outside make: no DEBUG or SECRET_KEY but what the line itself says.
    env = {key: value for key, value in os.environ.items() if key not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    done = subprocess.run(["bash", "-c", command], cwd=ROOT, env={**env, "DATABASE_URL": database_url()},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/executions").status_code == 200
    user = get_user_model().objects.get(username="api")
    assert (user.is_staff, user.is_superuser, user.has_usable_password()) == (False, False, False)
    assert [f"{p.content_type.app_label}.{p.codename}" for p in user.user_permissions.all()] == [
        "preferences.change_strategypreference"
    ]
