"""README's first steps: the buy example is followed at once by the literal close command."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_it_shows_the_close_command_right_after_the_first_buy():
    blocks = re.findall(r"```sh\n(.*?)```", README, re.DOTALL)
    buy = next(n for n, block in enumerate(blocks) if '"action": "buy"' in block)
    close = blocks[buy + 1]
    assert close.startswith("curl -s http://127.0.0.1:8000/webhook") and '"action": "close"' in close
    assert "$(cat .secrets/webhook-passphrase)" in close
