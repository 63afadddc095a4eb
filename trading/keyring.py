"""Accounts' API keys at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`).

The keys come from FIELD_ENCRYPTION_KEY, a comma-separated list of Fernet keys
(`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`): the
first encrypts, every one decrypts. To rotate, put a new key first, keep the old ones after it, run
`manage.py accounts_rekey` (every stored secret re-encrypted under the first key), then drop the old.
With DEBUG=1 and no FIELD_ENCRYPTION_KEY, `make run` uses one generated into
`.secrets/field-encryption-key` (git-ignored, mode 0600); pytest runs with DEBUG off, so tests that
store keys set FIELD_ENCRYPTION_KEYS themselves. Production without a key can still trade
the `default` account (its keys come from the environment); adding an account with keys is refused.

Only this module sees a decrypted secret, and only on its way into an exchange adapter.
"""

import os
import threading
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.views.decorators.debug import sensitive_variables

DEVELOPMENT_KEY_FILE = ".secrets/field-encryption-key"
_lock = threading.Lock()


class KeyringError(Exception):
    """No key to encrypt with, or a stored secret none of the keys opens: said in words."""


@sensitive_variables()
def encrypt(secret: str) -> str:
    """`secret` as a Fernet token under the first key: what the database stores."""
    return _fernet().encrypt(secret.encode()).decode()


@sensitive_variables()
def decrypt(token: str) -> str:
    """The secret a stored token holds, for an exchange adapter only."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise KeyringError("a stored API key cannot be decrypted with any key in FIELD_ENCRYPTION_KEY: "
                           "was a key removed before `manage.py accounts_rekey` ran?") from None


def rekey(token: str) -> str:
    """`token` encrypted again under the first key (it opens with any of them)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise KeyringError("a stored API key cannot be decrypted with any key in FIELD_ENCRYPTION_KEY") from None


def hint(secret: str) -> str:
    """What a page may show of a key: its last four characters."""
    return secret[-4:] if len(secret) >= 8 else ""


def configured() -> bool:
    """Whether keys can be stored now: a production deployment without FIELD_ENCRYPTION_KEY cannot."""
    try:
        _fernet()
    except KeyringError:
        return False
    return True


def reset() -> None:
    """Forget the keys read (tests, after a settings change)."""
    _fernet.cache_clear()


@cache
def _fernet() -> MultiFernet:
    keys = list(settings.FIELD_ENCRYPTION_KEYS) or _development_keys()
    if not keys:
        raise KeyringError("FIELD_ENCRYPTION_KEY is not set: an account's API keys cannot be stored without it "
                           "(docs/CONFIGURATION.md)")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise KeyringError("FIELD_ENCRYPTION_KEY holds a value that is not a Fernet key (32 url-safe base64 bytes)") from None


def _development_keys() -> list[str]:
    """With DEBUG, the key kept in .secrets/ (made on first use); none otherwise."""
    if not settings.DEBUG:
        return []
    path = Path(settings.BASE_DIR) / DEVELOPMENT_KEY_FILE
    with _lock:
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            # Written whole under another name, then linked into place: a process starting at the same
            # moment reads either no file or the complete key, never a half-written one.
            draft = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(Fernet.generate_key().decode() + "\n")
            try:
                os.link(draft, path)
            except FileExistsError:  # another process made it first: its key is the one
                pass
            finally:
                draft.unlink()
    return [path.read_text().strip()]
