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
    "open session (cookie or OAuth); a session nobody signed out keeps its seat until it has "
    "been idle for Acumatica's timeout (often 30 minutes, up to 60 for OAuth), so wait, stop "
    "other API clients, or raise 'Maximum Number of Web Services API Users' (License "
    "Monitoring Console, SM604000)"
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


class EntityUnavailableError(AcumaticaAPIError):
    """One entity cannot be read by this user on this instance, whatever the tap does.

    A 403 (no rights to the screen behind the entity) or a ``PXSetupNotEnteredException`` (its
    module is not set up), docs/acumatica-api.md §9. The stream is skipped; the others go on.
    """

    def __init__(self, message: str, *, entity: str, reason: str, fix: str) -> None:
        """``reason``: what is wrong, in a few words; ``fix``: what the user can do."""
        super().__init__(message)
        self.entity = entity
        self.reason = reason
        self.fix = fix


class StampInconsistencyError(AcumaticaAPIError):
    """A record's change stamp disagrees with the filter or the clock that returned it.

    The stream stops at its last consistent window (docs/acumatica-api.md §3, §13).
    """


class TimeSemanticsError(TapAcumaticaError):
    """The instance reads ``$filter`` date-time literals in a way the windows cannot trust."""


class OptimizationError(AcumaticaAPIError):
    """A list GET Acumatica cannot run as one optimized query (docs/acumatica-api.md §4, §9).

    Deterministic for that query: the same GET without ``$select`` may work.
    """


class CredentialsRejectedError(AuthError):
    """Acumatica refused the credentials themselves (password, client, locked user).

    docs/acumatica-api.md §6: repeated wrong passwords lock the user, so such a sign-in is
    never sent again in the same run.
    """


class ResponseLimitError(AcumaticaAPIError):
    """A response broke a bound: the run stops rather than wait or grow without end.

    It was not complete within ``response_deadline_seconds`` (a trickling server), or its body
    decoded to far more than any page (a decompression bomb).
    """


class InputFileError(ConfigError):
    """A ``--config``, ``--state`` or ``--catalog`` file cannot be read or has the wrong shape."""


class AnswerShapeError(AcumaticaAPIError):
    """A list answer is JSON but not a list of records with ids (docs/acumatica-api.md §3)."""


class DeletionsUntrackedError(AcumaticaAPIError):
    """A table's deleted records are not tracked (not on SM207010, docs/acumatica-api.md §10).

    The stream's records are read as usual; one warning says how to get its deletions.
    """
