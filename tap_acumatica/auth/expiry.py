"""How old a refresh-token chain is, to tell an expired refresh token from a revoked one.

Acumatica answers ``invalid_grant`` alike for a refresh token that expired, was revoked or was
already used (docs/acumatica-api.md §7). The token store records when the chain began
(``TokenSet.signed_in_at``) and when its current token was issued (``issued_at``): a chain
older than the default lifetime has most likely expired, and says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tap_acumatica.auth.tokenstore import TokenSet

DAY = 86400.0
#: docs/acumatica-api.md §7: by default a refresh-token chain ends 30 days after the sign-in
#: (Absolute Expiration); under Sliding Expiration a token unused for 15 days (default) lapses.
ABSOLUTE_DAYS, SLIDING_DAYS = 30, 15


def rejected_chain_text(tokens: TokenSet, now: float) -> str:
    """Why invalid_grant refused this chain's refresh token, judged by the chain's age."""
    signed, used = (
        None if at is None else max(0.0, now - at) / DAY
        for at in (tokens.signed_in_at, tokens.issued_at)
    )
    # Never refreshed (the sign-in issued this token): name the sign-in only.
    refreshed = None if signed is not None and used is not None and signed - used < 0.01 else used
    ages = "; ".join(
        f"{what} {_days_ago(age)}"
        for what, age in (
            ("signed in", signed),
            ("last refreshed" if signed is not None else "token issued", refreshed),
        )
        if age is not None
    )
    if not ages:  # a refresh_token from the config: its age is unknown
        return "the refresh token was rejected (invalid_grant: expired, revoked or already used)"
    if max(signed or 0.0, used or 0.0) >= ABSOLUTE_DAYS:
        return (
            f"the refresh token has expired (invalid_grant; {ages}; Acumatica's refresh tokens "
            f"live {ABSOLUTE_DAYS} days from sign-in unless the connected application sets "
            "another lifetime)"
        )
    if used is not None and used >= SLIDING_DAYS:
        return (
            f"the refresh token was rejected (invalid_grant; {ages}): expired if the connected "
            f"application uses sliding expiration ({SLIDING_DAYS} unused days by default), "
            "else revoked"
        )
    return (
        "the refresh token was rejected (invalid_grant: revoked on Acumatica, or already used by "
        f"another copy of the token store; {ages})"
    )


def _days_ago(days: float) -> str:
    whole = int(days)
    return "less than a day ago" if whole < 1 else f"{whole} day{'s' * (whole > 1)} ago"
