"""README's first steps: the buy example is followed at once by the literal close command."""

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

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
