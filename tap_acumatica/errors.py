"""The tap's one exception tree.

``TapAcumaticaError`` and its subclasses carry a message that is one clear line saying what to
fix; the CLI prints that line to stderr and exits non-zero, without a traceback. Code decides
what to do from the exception's *type*, never by matching its text.
"""

from __future__ import annotations


class TapAcumaticaError(Exception):
    """An error whose message is one line telling the user what to fix."""


class ConfigError(TapAcumaticaError):
    """The configuration is wrong or incomplete."""


class AuthError(TapAcumaticaError):
    """Authentication failed in a way a retry cannot fix."""


#: docs/acumatica-api.md §6: seats held by sessions nobody signed out are freed only when idle.
LOGIN_LIMIT_MESSAGE = (
    "Acumatica answered 'API Login Limit': every API-user seat of the license is held by an "
    "open session (cookie or OAuth); sessions that were not signed out are freed after 10 "
    "minutes idle, so wait, stop other API clients, or raise 'Maximum Number of Web Services "
    "API Users' (License Monitoring Console, SM604000)"
)


class LoginLimitError(AuthError):
    """Every API seat is taken ("API Login Limit"); a later retry may succeed."""

    def __init__(self, message: str = LOGIN_LIMIT_MESSAGE) -> None:
        """Default to the message that explains seats."""
        super().__init__(message)


class AcumaticaAPIError(TapAcumaticaError):
    """A request failed for good (after retries, or not retriable)."""


class ShuttingDownError(AcumaticaAPIError):
    """The run is ending (a signal, or sign-out has begun): no new request may start."""


class RetriableError(Exception):
    """A failure worth another try, with the delay the server asked for (if any).

    Internal to the HTTP layer: it never reaches the user; after the last try it becomes an
    :class:`AcumaticaAPIError`.
    """

    def __init__(self, reason: str, delay: float | None = None) -> None:
        """``reason`` is logged with the retry; ``delay`` overrides the backoff."""
        super().__init__(reason)
        self.reason = reason
        self.delay = delay
