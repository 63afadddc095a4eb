from notifications.redaction import redact
from tests.notifications.conftest import DISCORD_PATH, TELEGRAM_TOKEN


def test_it_masks_the_configured_secrets(settings):
    settings.BINANCE_API_SECRET = "binance-secret-0123456789"
    settings.EMAIL_HOST_PASSWORD = "smtp-password-42"
    text = f"{settings.WEBHOOK_PASSPHRASE} / {settings.BINANCE_API_SECRET} / {settings.EMAIL_HOST_PASSWORD}"
    assert redact(text) == "******** / ******** / ********"


def test_it_masks_the_secrets_it_is_given_longest_first():
    url = "https://proxy.example.com/hooks/abcdefghijklmnop"
    assert redact(f"POST {url} failed; token abcdefghijklmnop", [url, "abcdefghijklmnop"]) == (
        "POST ******** failed; token ********")


def test_it_masks_anything_shaped_like_a_chat_services_token():
    text = f"bot{TELEGRAM_TOKEN}/sendMessage and https://discord.com{DISCORD_PATH}"
    assert redact(text) == "bot********/sendMessage and https://discord.com/api/webhooks/112233445566778899/********"


def test_it_leaves_ordinary_text_and_short_values_alone(settings):
    settings.BINANCE_API_KEY = "abc"  # too short to be a secret: masking it would garble words
    text = "ALSAPRO 1 · BTCUSDT buy: filled at 45,000 (abc)"
    assert redact(text, ["", "xyz"]) == text
