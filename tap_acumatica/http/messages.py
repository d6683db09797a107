"""Acumatica's error answers → one line in our words, a hint, and what kind of failure it is.

Every answer is classified here, where it is parsed: "API Login Limit" becomes
:class:`~tap_acumatica.errors.LoginLimitError`, throttling and transient 5xx a
:class:`~tap_acumatica.errors.RetriableError`, anything else an
:class:`~tap_acumatica.errors.AcumaticaAPIError` with a hint (docs/acumatica-api.md §9).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import html
import math
import re
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec
import requests

from tap_acumatica import redact
from tap_acumatica.errors import (
    AcumaticaAPIError,
    EntityUnavailableError,
    LoginLimitError,
    OptimizationError,
    RetriableError,
)

_LOGIN_LIMIT = "api login limit"
# docs/acumatica-api.md §6: IIS answers an exhausted seat pool with a bare 429 and this text.
_IIS_LIMIT_TEXT = "custom error module does not recognize this error"
_OPTIMIZATION = "Optimization cannot be performed"
# 500s that are deterministic, so retrying them only delays the error (docs/acumatica-api.md §9).
_FATAL_500 = (
    _OPTIMIZATION,
    "NoEntitySatisfiesTheCondition",
    "No entity satisfies the condition",
    "PXSetupNotEnteredException",
    "required configuration data is not entered",
)
_SETUP_TEXT = _FATAL_500[-1]
_SETUP_FORM = re.compile(r"not entered on the (.+?) form", re.IGNORECASE)
#: The longest ``Retry-After`` the tap sleeps; a longer one ends the run with one line.
MAX_RETRY_AFTER = 600.0


def is_login_limit(status: int, text: str) -> bool:
    """Acumatica's "API Login Limit" in any of its shapes (docs/acumatica-api.md §6).

    429 or 500 with the text (``PXLicensePolicy``), or IIS's bare 429 page when every seat is
    taken; the token endpoint and the sign-in answer the same way.
    """
    lowered = text.lower()
    return _LOGIN_LIMIT in lowered or (status == 429 and _IIS_LIMIT_TEXT in lowered)


def html_to_text(body: str, limit: int = 300) -> str:
    """Reduce an HTML (or plain text) error page to one short line (docs/acumatica-api.md §9)."""
    text = re.sub(r"(?is)<(script|style|head)[^>]*>.*?</\1>", " ", body)
    text = re.sub(r"(?s)<[^>]+>", " ", text)
    text = " ".join(html.unescape(text).split())
    return text[:limit] + ("…" if len(text) > limit else "")


def describe_error(response: requests.Response) -> str:
    """Acumatica's ``exceptionMessage`` (or ``message``), else the body reduced to text."""
    raw = response.content or b""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return html_to_text(raw.decode("utf-8", "replace")) or response.reason or ""
    if isinstance(body, dict):
        parts = []
        node: Any = body
        while isinstance(node, dict):
            text = node.get("exceptionMessage") or node.get("message") or node.get("error")
            if text and str(text) not in parts:
                parts.append(str(text))
            node = node.get("innerException")
        return " / ".join(parts) or html_to_text(raw.decode("utf-8", "replace"))
    return html_to_text(raw.decode("utf-8", "replace"))


def auth_error_text(resp: requests.Response) -> str:
    """A short, redacted description of an answer of the sign-in or token endpoint."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        parts = [body.get(k) for k in ("error", "error_description", "exceptionMessage")]
        text = " ".join(str(p) for p in parts if p) or str(body.get("message") or "")
    else:
        text = " ".join(resp.text.split())[:200]
    return redact.redact(f"HTTP {resp.status_code} {text}".strip())


def retry_after_seconds(response: requests.Response) -> float | None:
    """``Retry-After`` as seconds (delta or HTTP date), as asked, maybe huge or infinite.

    None when absent or meaningless (not a number or date, NaN, negative, a date in the past):
    the client then backs off as if the header were not there.
    """
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - dt.datetime.now(dt.timezone.utc)).total_seconds()
    if math.isnan(seconds) or seconds < 0:
        return None
    return seconds


def check(response: requests.Response, where: str) -> None:
    """Return if ``response`` succeeded; else raise what kind of failure it is."""
    status = response.status_code
    if status < 400:
        return
    detail = describe_error(response)
    if is_login_limit(status, detail):
        raise LoginLimitError(detail)
    unavailable = entity_unavailable(response, detail, where)
    if unavailable is not None:
        raise unavailable
    if status == 429 or (status >= 500 and not any(m in detail for m in _FATAL_500)):
        delay = retry_after_seconds(response)
        if delay is not None and delay > MAX_RETRY_AFTER:
            # Retrying sooner than asked only repeats the refusal: said once, not slept on.
            wait = response.headers.get("Retry-After", "")[:40]
            msg = (
                f"{where} failed: HTTP {status}: {detail}; it asks the tap to wait "
                f"(Retry-After: {wait}) longer than the tap waits before a retry "
                f"({MAX_RETRY_AFTER:.0f}s): run the tap again later"
            )
            raise AcumaticaAPIError(msg)
        raise RetriableError(f"HTTP {status}: {detail}", delay)
    line = f"{where} failed: HTTP {status}: {detail}{hint(status, detail)}"
    if _OPTIMIZATION in detail:
        raise OptimizationError(line)
    raise AcumaticaAPIError(line)


def hint(status: int, detail: str) -> str:
    """What the user can do about a failed request, as the end of its one line."""
    if _OPTIMIZATION in detail:
        fields = (
            detail.split("cause the error:", 1)[-1].strip() if "cause the error" in detail else ""
        )
        named = f" ({fields})" if fields else ""
        return (
            f". Acumatica cannot read these fields{named} in one list query "
            "(docs/acumatica-api.md §4): remove the entities they belong to from `expand` for "
            "this stream, or deselect the fields in the catalog"
        )
    if status == 403:
        return (
            ". The API user has no access rights to the form behind this entity: "
            "grant them or deselect the stream"
        )
    if status == 404:
        return (
            ". The endpoint does not have this entity or version: "
            "check endpoint_name and endpoint_version"
        )
    return ""


def entity_of(url: str) -> str | None:
    """The entity of a contract-API URL (``…/entity/{endpoint}/{version}/{Entity}…``), or None.

    Also the DAC or GI of an OData URL (docs/acumatica-api.md §8: ``…/api/odata/{gi|dac}/{Name}``,
    legacy ``…/odata/{tenant}/{GI}`` and ``…/odatav4/{tenant}/{DAC}``), without parameters.
    """
    parts = [unquote(p) for p in urlsplit(url).path.split("/") if p]
    lower = [p.lower() for p in parts]
    for i, part in enumerate(lower):
        odata = part == "odata" and i > 0 and lower[i - 1] == "api"
        legacy = part in ("odata", "odatav4") and (i == 0 or lower[i - 1] != "api")
        name = parts[i + 2] if (odata or legacy) and i + 2 < len(parts) else ""
        if name and not name.startswith("$"):
            return name.split("_WithParameters(", 1)[0].split("(", 1)[0]
    if "entity" not in parts:
        return None
    rest = parts[parts.index("entity") + 1 :]
    if len(rest) < 3 or rest[2].endswith(".json") or rest[0] == "auth":
        return None
    return rest[2]


def entity_unavailable(
    response: requests.Response, detail: str, where: str
) -> EntityUnavailableError | None:
    """A 403 or a module that is not set up, on one entity (docs/acumatica-api.md §9)."""
    status = response.status_code
    setup = status >= 500 and (
        _SETUP_TEXT in detail.lower() or "PXSetupNotEnteredException" in _exception_types(response)
    )
    if status != 403 and not setup:
        return None
    entity = entity_of(response.url or "")
    if entity is None:
        return None
    if setup:
        found = _SETUP_FORM.search(detail)
        form = f"the {found.group(1)} form" if found else "its preferences form"
        reason = f"the module behind {entity} is not set up ({detail})"
        fix = f"enter the module's settings on {form}, or deselect the stream {entity}"
    else:
        reason = f"HTTP 403, the API user has no rights to the screen behind {entity} ({detail})"
        fix = (
            f"grant the API user's role access to the {entity} screen (Access Rights by "
            f"Screen), or deselect the stream {entity}"
        )
    msg = f"{where} failed: {reason}; to fix: {fix}"
    return EntityUnavailableError(msg, entity=entity, reason=reason, fix=fix)


def _exception_types(response: requests.Response) -> str:
    """Every ``exceptionType`` of a §9 error body, innermost included, as one text."""
    try:
        node: Any = msgspec.json.decode(response.content or b"")
    except msgspec.DecodeError:
        return ""
    types = []
    while isinstance(node, dict):
        types.append(str(node.get("exceptionType") or ""))
        node = node.get("innerException")
    return " ".join(types)
