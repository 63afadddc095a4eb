"""What the libraries under the Binance adapter would log, kept out of the log at every level.

- binance-futures-connector logs every request's URL (its signed query string, a listenKey) and
  every raw answer (balances, positions) at DEBUG, through the *root* logger;
- urllib3 logs each request line, query string included, at DEBUG, and the URL of a retried one;
- websocket-client, when tracing, dumps the handshake, whose path is the stream's listenKey.

`install()` puts a filter on each of those loggers, so not even LOG_LEVEL=debug, or a test's
caplog at DEBUG, lets them through. alsatrade.logging.RedactSecrets masks the key and secret on top.
"""

import logging
import os
import re

import binance

CONNECTOR = os.path.dirname(binance.__file__) + os.sep  # records carry the path the module was loaded from
QUERY = re.compile(r"\?[^\s\"'<>)]*")
URLLIB3_LOGGERS = ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry")


class ConnectorLinesOut(logging.Filter):
    """Drops what the connector logs through the root logger: URLs and raw answers, nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.pathname.startswith(CONNECTOR)


class QueryStringsOut(logging.Filter):
    """Keeps urllib3's lines, without the query strings (signatures, listenKeys) in them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "?" in message:
            record.msg, record.args = QUERY.sub("?<query left out>", message), None
        return True


class TraceOut(logging.Filter):
    """websocket-client's debug and trace lines (the handshake names the listenKey); warnings stay."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING


_GUARDS: list[tuple[str, logging.Filter]] = [("", ConnectorLinesOut()), ("websocket", TraceOut())]
_GUARDS += [(name, QueryStringsOut()) for name in URLLIB3_LOGGERS]


def install() -> None:
    """Put the filters in place; safe to call any number of times."""
    for name, guard in _GUARDS:
        logger = logging.getLogger(name or None)
        if guard not in logger.filters:
            logger.addFilter(guard)
