import io
import logging

from alsatrade.logging import MASK, RedactSecrets


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactSecrets())
    logger = logging.getLogger("tests.redact")
    logger.handlers = [handler]
    logger.propagate = False
    return logger, stream


def test_it_masks_configured_secrets_in_messages_and_tracebacks(settings):
    settings.BINANCE_API_SECRET = "binance-secret-abcdef"
    settings.WEBHOOK_PASSPHRASE = "hook-passphrase-123456"
    logger, stream = capture()
    logger.warning("signed with %s for %s", "binance-secret-abcdef", "hook-passphrase-123456")
    try:
        raise ValueError("bad secret binance-secret-abcdef")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    assert "binance-secret-abcdef" not in text and "hook-passphrase-123456" not in text
    assert text.count(MASK) == 4 and "ValueError: bad secret ********" in text  # message, source line, error
