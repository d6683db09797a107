"""Every setting of the tap, its default and its check, stated once.

``DEFAULTS`` holds each default; ``config_schema()`` builds the JSON Schema the SDK validates
(and ``--about`` prints) from the same values; ``Settings`` is the typed view every layer
below reads. Building the schema imports singer_sdk (slow), so it happens on first use only:
``--login`` and the authenticator never need it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse
from collections.abc import Mapping
from functools import cache
from typing import Any

from tap_acumatica import __version__
from tap_acumatica.errors import ConfigError

AUTH_METHODS = ("oauth_code", "oauth_password", "cookie")
INITIATE_OAUTH = ("GETANDREFRESH", "REFRESH", "OFF")
SECRET_KEYS = ("client_secret", "access_token", "refresh_token", "password")

DEFAULTS: Mapping[str, Any] = {
    "endpoint_name": "Default",
    "page_size": 1000,
    "max_concurrent_requests": 2,
    "request_timeout": 660,
    "max_tries": 8,
    "backoff_base_seconds": 1.0,
    "login_limit_wait_seconds": 600,
    "lookback_minutes": 0,
    "safety_lag_seconds": 300,
    "progress_interval_seconds": 30,
    "user_agent": f"tap-acumatica/{__version__}",
    "auth_method": "oauth_code",
    "scope": "api offline_access",
    "initiate_oauth": "GETANDREFRESH",
    "login_timeout_seconds": 300,
    "open_browser": True,
}


def value(config: Mapping[str, Any], name: str) -> Any:
    """A setting's value, or its default when it is absent or null."""
    given = config.get(name)
    return DEFAULTS.get(name) if given is None else given


@dataclasses.dataclass(frozen=True)
class Settings:
    """The extraction settings, typed, with defaults applied (auth settings: auth.config)."""

    base_url: str
    endpoint_name: str
    endpoint_version: str | None
    entities: tuple[str, ...]
    page_size: int
    max_concurrent_requests: int
    request_timeout: float
    max_tries: int
    backoff_base_seconds: float
    login_limit_wait_seconds: float
    expand: Mapping[str, tuple[str, ...]]
    custom_fields: Mapping[str, Any]
    lookback_minutes: float
    safety_lag_seconds: float
    progress_interval_seconds: float
    user_agent: str | None
    branch: str | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """Read ``config`` (already validated against ``config_schema()``)."""
        size = int(value(config, "page_size"))
        if size < 2:
            msg = "page_size must be at least 2"
            raise ConfigError(msg)
        expand = config.get("expand") or {}
        return cls(
            base_url=check_base_url(str(config.get("base_url") or "")),
            endpoint_name=str(value(config, "endpoint_name")),
            endpoint_version=config.get("endpoint_version") or None,
            entities=tuple(config.get("entities") or ()),
            page_size=size,
            max_concurrent_requests=max(1, int(value(config, "max_concurrent_requests"))),
            request_timeout=float(value(config, "request_timeout")),
            max_tries=max(1, int(value(config, "max_tries"))),
            backoff_base_seconds=float(value(config, "backoff_base_seconds")),
            login_limit_wait_seconds=float(value(config, "login_limit_wait_seconds")),
            expand={k: tuple(v) for k, v in expand.items()},
            custom_fields=dict(config.get("custom_fields") or {}),
            lookback_minutes=float(value(config, "lookback_minutes")),
            safety_lag_seconds=float(value(config, "safety_lag_seconds")),
            progress_interval_seconds=float(value(config, "progress_interval_seconds")),
            user_agent=config.get("user_agent") or None,
            branch=config.get("branch") or None,
        )


# -- URLs ------------------------------------------------------------------------------------


def is_loopback(host: str | None) -> bool:
    """True for localhost (and ``*.localhost``) and loopback IP addresses: the one rule."""
    if not host:
        return False
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_parts(name: str, url: str) -> urllib.parse.SplitResult:
    """``urlsplit(url)``, or ConfigError naming the setting when the URL cannot be sent.

    ``urlsplit`` raises on a broken IPv6 literal and accepts a host with a space, which
    requests later refuses mid-run; checking as requests would keeps it to one line.
    """
    import requests  # noqa: PLC0415 - only needed to check the URL

    text = url.strip()
    try:
        parts = urllib.parse.urlsplit(text)
        _ = parts.port  # a port that is not a number raises here
        if parts.scheme in ("http", "https") and parts.hostname:
            requests.models.PreparedRequest().prepare_url(text, None)
    except (ValueError, requests.exceptions.RequestException) as exc:
        reason = str(exc).removeprefix("Failed to parse: ")
        msg = f"{name} {url!r} is not a valid URL ({reason}); fix the host name and port"
        raise ConfigError(msg) from None
    return parts


def check_base_url(base_url: str) -> str:
    """``base_url`` without its trailing slash: https, or http for a loopback host only.

    docs/acumatica-api.md §7: HTTPS is mandatory; passwords and tokens never travel in clear.
    """
    if not base_url.strip():
        msg = "base_url is required (the instance URL, e.g. https://example.acumatica.com)"
        raise ConfigError(msg)
    parts = url_parts("base_url", base_url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        msg = f"base_url {base_url!r} is not an http(s) URL such as https://example.acumatica.com"
        raise ConfigError(msg)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        msg = (
            f"base_url must use https:// for a non-local host ({parts.hostname}); http:// is "
            "only allowed for loopback hosts"
        )
        raise ConfigError(msg)
    if parts.query or parts.fragment:
        msg = f"base_url {base_url!r} must not have a query or fragment"
        raise ConfigError(msg)
    return base_url.strip().rstrip("/")


# -- the JSON Schema -------------------------------------------------------------------------


@cache
def config_schema() -> dict[str, Any]:
    """The tap's settings as JSON Schema (built once; see the module docstring)."""
    from singer_sdk import typing as th  # noqa: PLC0415

    def prop(name: str, kind: Any, description: str, **extra: Any) -> th.Property[Any]:
        if name in DEFAULTS:
            extra["default"] = DEFAULTS[name]
        return th.Property(name, kind, description=description, **extra)

    string, integer = th.StringType, th.IntegerType
    return dict(
        th.PropertiesList(
            prop(
                "base_url",
                string,
                "Instance URL, including the site path if any, e.g. "
                "https://example.acumatica.com or https://erp.example.com/AcumaticaERP. "
                "http:// is accepted for loopback hosts only.",
                required=True,
            ),
            prop(
                "endpoint_name",
                string,
                "Web-service endpoint (SM207060); the system endpoint is Default.",
            ),
            prop(
                "endpoint_version",
                string,
                "Endpoint version, e.g. 24.200.001. Default: the "
                "highest version of endpoint_name that GET /entity lists on the instance.",
            ),
            prop(
                "entities",
                th.ArrayType(string),
                "Only discover these entities (e.g. "
                '["SalesOrder", "Customer"]). Default: every top-level entity with a list GET.',
            ),
            prop(
                "start_date",
                th.DateTimeType,
                "Read records changed at or after this time on "
                "the first run (ISO-8601 with offset). Default: everything.",
            ),
            prop(
                "page_size",
                integer(minimum=2),
                "Records per request ($top). A time window "
                "that returns a full page is split and re-read; only records sharing one "
                "timestamp are paged.",
            ),
            prop(
                "max_concurrent_requests",
                integer(minimum=1, maximum=100),
                "Windows fetched "
                "in parallel. Keep it at or below the licence's 'Maximum Number of Concurrent "
                "Web Services API Requests' (SM604000).",
            ),
            prop(
                "request_timeout",
                integer(minimum=1, maximum=86400),
                "Seconds to wait for a "
                "response. Acumatica queues requests over the licence limit for up to 10 "
                "minutes without any signal, hence the generous default.",
            ),
            prop(
                "max_tries",
                integer(minimum=1),
                "Attempts per request on 429, 5xx, timeouts, "
                "dropped connections and truncated JSON (exponential backoff with jitter; "
                "Retry-After honoured).",
            ),
            prop(
                "backoff_base_seconds",
                th.NumberType(minimum=0),
                "First retry delay; it doubles per attempt (capped at 60 s), with jitter.",
            ),
            prop(
                "login_limit_wait_seconds",
                integer(minimum=0),
                "How long to keep retrying "
                "when Acumatica answers 'API Login Limit' (every API seat taken); unclosed "
                "sessions free their seat after 10 minutes. 0 fails at once.",
            ),
            prop(
                "expand",
                th.ObjectType(additional_properties=th.ArrayType(string)),
                "Entity → detail/linked entities to read with it ($expand), e.g. "
                '{"SalesOrder": ["Details", "ShipToAddress"], "Customer": '
                '["MainContact/Address"]}. They become nested arrays/objects in the records.',
            ),
            prop(
                "custom_fields",
                th.ObjectType(
                    additional_properties=th.CustomType(
                        {"type": ["array", "string"], "items": {"type": "string"}}
                    )
                ),
                'Entity → custom fields to read ($custom) as View.Field names, or "all" for '
                'every custom field $adHocSchema lists, e.g. {"SalesOrder": '
                '["Document.UsrRepairType"], "StockItem": "all"}. Records carry them as '
                'custom: {"View": {"Field": value}}.',
            ),
            prop(
                "lookback_minutes",
                integer(minimum=0),
                "Re-read this many minutes before the "
                "bookmark on every run (covers transactions that commit long after they stamp "
                "their records).",
            ),
            prop(
                "safety_lag_seconds",
                integer(minimum=0),
                "Read only up to this many seconds "
                "before the sync started; newer changes are read on the next run, so a "
                "late-committing transaction is never skipped.",
            ),
            prop(
                "progress_interval_seconds",
                integer(minimum=1),
                "Seconds between progress log lines per stream (stderr).",
            ),
            prop("user_agent", string, "User-Agent header sent with every request."),
            *_auth_properties(th, prop),
        ).to_dict()
    )


def _auth_properties(th: Any, prop: Any) -> list[Any]:
    string = th.StringType
    return [
        prop(
            "auth_method",
            string,
            "oauth_code (authorization-code grant, default), "
            "oauth_password (resource-owner password grant) or cookie (/entity/auth/login "
            "session).",
            allowed_values=list(AUTH_METHODS),
        ),
        prop(
            "client_id",
            string,
            "OAuth client ID of the connected application (SM303010), <GUID>@<Tenant>.",
        ),
        prop(
            "client_secret",
            string,
            "OAuth shared secret of the connected application.",
            secret=True,
        ),
        prop(
            "redirect_uri",
            string,
            "Redirect URI registered on the connected application, "
            "e.g. http://localhost:8765/callback (the tap listens there during --login); a "
            "non-loopback URI means you paste the redirected address instead.",
        ),
        prop("scope", string, "OAuth scopes; offline_access is needed for a refresh token."),
        prop(
            "initiate_oauth",
            string,
            "GETANDREFRESH: sign in through the browser when no "
            "usable token exists, then refresh; REFRESH: never interactive, refresh the stored "
            "or given refresh_token; OFF: use access_token as given.",
            allowed_values=list(INITIATE_OAUTH),
        ),
        prop(
            "oauth_settings_location",
            string,
            "JSON file holding the rotating OAuth tokens "
            "(created 0600). Default: the --config file itself, or "
            ".meltano/tap-acumatica/oauth-tokens.json under Meltano.",
        ),
        prop(
            "access_token",
            string,
            "An OAuth access token (with initiate_oauth OFF, the only credential).",
            secret=True,
        ),
        prop(
            "refresh_token",
            string,
            "Seed refresh token, used when the token store has none "
            "(or a different one that this value replaces). Rotated tokens go to the token "
            "store, not here.",
            secret=True,
        ),
        prop("username", string, "Acumatica user (cookie, oauth_password)."),
        prop("password", string, "Password of that user.", secret=True),
        prop(
            "tenant",
            string,
            "Tenant login name for cookie sign-in; default: the part of client_id after '@'.",
        ),
        prop("branch", string, "Branch ID for cookie sign-in (optional)."),
        prop("locale", string, "Locale for cookie sign-in (optional)."),
        prop(
            "login_timeout_seconds",
            th.IntegerType(minimum=1, maximum=86400),
            "How long --login waits for the browser sign-in.",
        ),
        prop(
            "open_browser",
            th.BooleanType,
            "Open the system browser for sign-in (the URL is always printed to stderr).",
        ),
    ]
