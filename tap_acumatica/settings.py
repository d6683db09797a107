"""Every setting's default and check, stated once, and the typed view of the settings.

``DEFAULTS`` holds each default; ``settings_schema.config_schema()`` builds the JSON Schema
the SDK validates (and ``--about`` prints) from the same values; ``Settings`` is the typed
view every layer below reads. This module never imports singer_sdk (slow): ``--login`` and
the authenticator do not need it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
import urllib.parse
from collections.abc import Mapping
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
    "response_deadline_seconds": 1800,
    "max_tries": 8,
    "backoff_base_seconds": 1.0,
    "login_limit_wait_seconds": 1800,
    "lookback_minutes": 0,
    "expand_lookback_days": 0,
    "safety_lag_seconds": 300,
    "progress_interval_seconds": 30,
    "user_agent": f"tap-acumatica/{__version__}",
    "auth_method": "oauth_code",
    "scope": "api offline_access",
    "initiate_oauth": "GETANDREFRESH",
    "login_timeout_seconds": 300,
    "open_browser": True,
    "date_only_time_zone": "UTC",
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
    response_deadline_seconds: float
    max_tries: int
    backoff_base_seconds: float
    login_limit_wait_seconds: float
    expand: Mapping[str, tuple[str, ...]]
    custom_fields: Mapping[str, Any]
    lookback_minutes: float
    expand_lookback_days: float
    safety_lag_seconds: float
    progress_interval_seconds: float
    user_agent: str | None
    branch: str | None
    date_only_time_zone: dt.tzinfo = dt.timezone.utc

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
            response_deadline_seconds=float(value(config, "response_deadline_seconds")),
            max_tries=max(1, int(value(config, "max_tries"))),
            backoff_base_seconds=float(value(config, "backoff_base_seconds")),
            login_limit_wait_seconds=float(value(config, "login_limit_wait_seconds")),
            expand={k: tuple(v) for k, v in expand.items()},
            custom_fields=dict(config.get("custom_fields") or {}),
            lookback_minutes=float(value(config, "lookback_minutes")),
            expand_lookback_days=float(value(config, "expand_lookback_days")),
            safety_lag_seconds=float(value(config, "safety_lag_seconds")),
            progress_interval_seconds=float(value(config, "progress_interval_seconds")),
            user_agent=config.get("user_agent") or None,
            branch=config.get("branch") or None,
            date_only_time_zone=time_zone(str(value(config, "date_only_time_zone"))),
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
    if _has_user_info(base_url):
        # Never echo it: the part before '@' is a user name and password. requests would also
        # send it as Basic auth in place of the bearer token, on every call.
        msg = (
            "base_url must not contain a user name or password (user:password@host): remove "
            "them and set username/password (or OAuth) instead"
        )
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


def _has_user_info(url: str) -> bool:
    """True when the URL's authority has a ``user[:password]@`` part."""
    after_scheme = url.strip().split("://", 1)[-1]
    authority = re.split(r"[/?#]", after_scheme, maxsplit=1)[0]
    return "@" in authority


def time_zone(name: str) -> dt.tzinfo:
    """The IANA time zone ``name`` (``UTC`` included), or ConfigError naming the setting."""
    import zoneinfo  # noqa: PLC0415 - only needed to read this one setting

    if name.strip().upper() in {"UTC", "Z", "ETC/UTC"}:
        return dt.timezone.utc
    try:
        return zoneinfo.ZoneInfo(name.strip())
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        msg = (
            f"date_only_time_zone {name!r} is not an IANA time zone name such as "
            "America/New_York or UTC"
        )
        raise ConfigError(msg) from None
