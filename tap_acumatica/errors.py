"""Errors the user can act on.

Every subclass carries a message that is one clear line saying what to fix. The CLI
prints that line to stderr and exits non-zero, without a traceback.
"""

from __future__ import annotations


class TapAcumaticaError(Exception):
    """An error whose message is one line telling the user what to fix."""


class ConfigError(TapAcumaticaError):
    """The configuration is wrong or incomplete."""


class AuthError(TapAcumaticaError):
    """Authentication failed in a way a retry cannot fix."""


class AcumaticaAPIError(TapAcumaticaError):
    """A request failed for good (after retries, or not retriable)."""
