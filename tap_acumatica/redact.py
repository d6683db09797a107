"""Keep secrets out of logs: a registry of secret values and a logging filter that masks them.

Every log record is redacted when it is created (a LogRecord factory), so records of any
logger reach every handler already masked; a filter on the root handlers, the tap's and the
SDK's loggers does the same for records built elsewhere. Secrets are the config's secret
settings plus every token as it is issued or rotated (``register`` is called at once).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

MASK = "***"
# Values shorter than this are not masked on their own: masking "1" or "api" would wreck
# every line while protecting nothing.
_MIN_SECRET_LEN = 6

# Patterns for secrets the registry has not seen (e.g. a token in a response body).
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/=]+"),
    re.compile(
        r"(?i)((?:refresh_token|access_token|id_token|client_secret|password|code_verifier)"
        r"[\"']?\s*[=:]\s*[\"']?)[^\s\"'&,;}]+"
    ),
    re.compile(r"([?&]code=)[^&#\s\"']+"),
    re.compile(r"(?i)((?:ASP\.NET_SessionId|\.ASPXAUTH)=)[^;\s\"']+"),
    # A password in a URL's user info (a database token store, a mistyped base_url).
    re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^:/@\s\"']+:)[^@\s/\"']+(?=@)"),
)

_lock = threading.Lock()
_secrets: set[str] = set()
_ordered: tuple[str, ...] = ()
_installed = False


def register(*values: Any) -> None:
    """Add secret values (None, empty and short values are ignored)."""
    global _ordered
    fresh = {v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LEN}
    with _lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        # Longest first, so a secret containing another is masked whole. Plain substring
        # replacement: no regex to recompile each time a token rotates.
        _ordered = tuple(sorted(_secrets, key=len, reverse=True))


def register_config(config: Any, secret_keys: Iterable[str]) -> None:
    """Register the values of ``secret_keys`` found in ``config`` (a mapping).

    A secret given with the wrong type (e.g. ``"password": ["…"]``) is registered too: the
    config validation error quotes the value it rejects.
    """
    if hasattr(config, "get"):
        register(*(s for k in secret_keys for s in _strings(config.get(k))))


def _strings(value: Any) -> Iterable[str]:
    """Every string inside ``value`` (nested lists and mappings included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _strings(item)
    elif hasattr(value, "values"):
        for item in value.values():
            yield from _strings(item)


def redact(text: str) -> str:
    """Return ``text`` with every known secret and secret-looking pattern masked."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def _scrub(record: logging.LogRecord) -> None:
    if getattr(record, "_tap_acumatica_redacted", False):
        return
    try:
        message = record.getMessage()
    except Exception:
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._tap_acumatica_redacted = True


class RedactingFilter(logging.Filter):
    """A filter that masks secrets in a record's message, arguments and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask the record in place; never drop it."""
        _scrub(record)
        return True


_FILTER = RedactingFilter()


def _factory_wrapper(
    base: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        _scrub(record)
        return record

    factory._tap_acumatica = True  # type: ignore[attr-defined]
    return factory


def install(logger_names: Iterable[str] = ("tap-acumatica", "tap_acumatica", "singer_sdk")) -> None:
    """Install redaction on record creation, the named loggers and every root handler.

    Idempotent; call again after logging is (re)configured to cover new root handlers.
    """
    global _installed
    with _lock:
        current = logging.getLogRecordFactory()
        if not getattr(current, "_tap_acumatica", False):
            logging.setLogRecordFactory(_factory_wrapper(current))
        _installed = True
    for name in (*logger_names, ""):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
