"""A strategy's own webhook passphrase is stored as HMAC-SHA256 under a key from SECRET_KEY; a bare
SHA-256 stored before still works once, and is rewritten in the keyed form when it matches."""

import hashlib

import pytest
from django.test import override_settings

from preferences.intake import strategy_read
from preferences.models import StrategyPreference

pytestmark = pytest.mark.django_db
PASSPHRASE = "the-strategy-own-secret"
HistoricalStrategyPreference = StrategyPreference.history.model


def saved(digest: str) -> StrategyPreference:
    return StrategyPreference.objects.create(name="ALSAPRO 1", products=["BTCUSDT"], passphrase_hash=digest)


def stored() -> str:
    return StrategyPreference.objects.values_list("passphrase_hash", flat=True).get()


def test_it_stores_a_keyed_digest_that_is_no_plain_sha256():
    strategy = StrategyPreference(name="ALSAPRO 1")
    strategy.set_passphrase(PASSPHRASE)
    prefix, digest = strategy.passphrase_hash.split("$")
    assert prefix == "hmac-sha256" and len(digest) == 64 and int(digest, 16) >= 0
    assert digest != hashlib.sha256(PASSPHRASE.encode()).hexdigest()
    assert len(strategy.passphrase_hash) <= StrategyPreference._meta.get_field("passphrase_hash").max_length
    assert strategy.check_passphrase(PASSPHRASE) and not strategy.check_passphrase(PASSPHRASE + "x")


def test_it_refuses_a_digest_made_under_another_secret_key():
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        strategy = StrategyPreference(name="ALSAPRO 1")
        strategy.set_passphrase(PASSPHRASE)
    assert not strategy.check_passphrase(PASSPHRASE)


def test_it_accepts_a_legacy_digest_once_and_upgrades_the_row():
    legacy = hashlib.sha256(PASSPHRASE.encode()).hexdigest()
    saved(legacy)
    strategy = strategy_read("ALSAPRO 1")  # as the webhook's cache holds it: the checked fields only
    history = HistoricalStrategyPreference.objects.count()
    assert not strategy.check_passphrase("a-wrong-guess-here")
    assert stored() == legacy
    assert strategy.check_passphrase(PASSPHRASE)
    assert stored() == strategy.passphrase_hash and stored().startswith("hmac-sha256$")
    assert HistoricalStrategyPreference.objects.count() == history  # a format change, not a settings change
    again = StrategyPreference.objects.get()
    assert again.check_passphrase(PASSPHRASE) and not again.check_passphrase("a-wrong-guess-here")


def test_it_leaves_a_passphrase_changed_meanwhile_as_it_is():
    strategy = saved(hashlib.sha256(PASSPHRASE.encode()).hexdigest())
    StrategyPreference.objects.update(passphrase_hash="hmac-sha256$" + "0" * 64)  # rotated by another process
    assert strategy.check_passphrase(PASSPHRASE)  # what this process read still matched
    assert strategy.passphrase_hash.startswith("hmac-sha256$") and stored() == "hmac-sha256$" + "0" * 64


def test_it_accepts_a_digest_under_a_fallback_key_and_rewrites_it_under_the_current_one():
    old_key = "the-secret-key-before-rotation-" + "y" * 30
    with override_settings(SECRET_KEY=old_key):
        strategy = StrategyPreference(name="ALSAPRO 1", products=["BTCUSDT"])
        strategy.set_passphrase(PASSPHRASE)
        strategy.save()
        before = strategy.passphrase_hash
    with override_settings(SECRET_KEY_FALLBACKS=[old_key]):
        assert not strategy.check_passphrase("a-wrong-guess-here")
        assert strategy.check_passphrase(PASSPHRASE)
    assert stored() != before and StrategyPreference.objects.get().check_passphrase(PASSPHRASE)
