"""An encryption key for accounts' API keys (trading/keyring.py) in tests: the test settings hold no
FIELD_ENCRYPTION_KEY, and pytest runs with DEBUG off, so no development key is made either."""

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet

from trading import keyring


@pytest.fixture
def encryption_key(settings: object) -> Iterator[str]:
    """A fresh Fernet key in FIELD_ENCRYPTION_KEYS for the test; the keyring forgets it afterwards."""
    key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [key]  # type: ignore[attr-defined]
    keyring.reset()
    yield key
    keyring.reset()
