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
    "overlap_streams": True,
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
    "track_deletions": False,
    "deleted_records_keep_days": 10,
}

#: What ``odata_inquiry_options[<GI>]`` may say (docs/acumatica-api.md §8: a GI has no stamp
#: or key of its own that the tap could trust, so the user names them).
INQUIRY_OPTION_KEYS = ("replication_key", "primary_keys", "parameters")


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
    odata_dacs: tuple[str, ...] = ()
    odata_inquiries: tuple[str, ...] = ()
    odata_all_inquiries: bool = False
    #: GI name → {"replication_key": str | None, "primary_keys": tuple, "parameters": dict};
    #: plain values (this layer cannot import odata.model), made InquiryOptions by odata.catalog.
    odata_inquiry_options: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    track_deletions: bool = False
    deleted_records_keep_days: float = 10.0
    #: REST entity → DAC whose deleted records it reads ("" = none), over odata.registry's.
    deletion_dacs: Mapping[str, str] = dataclasses.field(default_factory=dict)
    #: Read the next streams' first windows while a stream is read (``sync.prefetch``).
    overlap_streams: bool = True

    @property
    def odata_selected(self) -> bool:
        """True when any DAC or GI stream is asked for (else discovery sends no OData request)."""
        return bool(self.odata_dacs or self.odata_inquiries or self.odata_all_inquiries)

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
            overlap_streams=bool(value(config, "overlap_streams")),
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
            **odata_settings(config),
        )


# -- OData streams and deletions ---------------------------------------------------------------


def odata_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The OData and deletion fields of :class:`Settings`; ConfigError (one line) on a bad shape."""
    dacs = _names(config, "odata_dacs", '["SOLine", "ARTran"]')
    raw = config.get("odata_inquiries")
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
        raw = raw[0] if raw[0].strip().lower() == "all" else raw  # ENV: the SDK reads a list
    every = isinstance(raw, str) and raw.strip().lower() == "all"
    if isinstance(raw, str) and not every:
        msg = f'odata_inquiries must be "all" or a list of generic inquiry names, not {raw!r}'
        raise ConfigError(msg)
    inquiries = () if every else _names(config, "odata_inquiries", '["SalesOrders"]')
    keep = float(value(config, "deleted_records_keep_days"))
    if not keep > 0:
        msg = "deleted_records_keep_days must be more than 0 (SM207010's Days to Keep Records)"
        raise ConfigError(msg)
    return {
        "odata_dacs": dacs,
        "odata_inquiries": inquiries,
        "odata_all_inquiries": every,
        "odata_inquiry_options": _inquiry_options(config, inquiries, every=every),
        "track_deletions": bool(value(config, "track_deletions")),
        "deleted_records_keep_days": keep,
        "deletion_dacs": _deletion_dacs(config),
    }


def _names(config: Mapping[str, Any], name: str, example: str) -> tuple[str, ...]:
    """A list setting of non-empty names, each once, in order."""
    raw = config.get(name)
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(n, str) and n.strip() for n in raw):
        msg = f"{name} must be a list of names such as {example}"
        raise ConfigError(msg)
    return tuple(dict.fromkeys(n.strip() for n in raw))


def _inquiry_options(
    config: Mapping[str, Any], inquiries: tuple[str, ...], *, every: bool
) -> dict[str, dict[str, Any]]:
    """``odata_inquiry_options``, each GI's options checked and normalised."""
    raw = config.get("odata_inquiry_options") or {}
    if not isinstance(raw, dict):
        msg = "odata_inquiry_options must be an object: generic inquiry name → options"
        raise ConfigError(msg)
    out: dict[str, dict[str, Any]] = {}
    for gi, options in raw.items():
        where = f"odata_inquiry_options.{gi}"
        if not every and gi not in inquiries:
            chosen = ", ".join(inquiries) or "none"
            msg = f"{where}: {gi} is not in odata_inquiries ({chosen}); add it there or drop this"
            raise ConfigError(msg)
        if not isinstance(options, dict) or set(options) - set(INQUIRY_OPTION_KEYS):
            msg = f"{where} must be an object with only {', '.join(INQUIRY_OPTION_KEYS)}"
            raise ConfigError(msg)
        out[gi] = _one_inquiry(where, options)
    return out


def _one_inquiry(where: str, options: Mapping[str, Any]) -> dict[str, Any]:
    rkey = options.get("replication_key")
    if rkey is not None and not (isinstance(rkey, str) and rkey.strip()):
        msg = f"{where}.replication_key must be a column name (a string)"
        raise ConfigError(msg)
    keys = options.get("primary_keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) and k.strip() for k in keys):
        msg = f'{where}.primary_keys must be a list of column names such as ["OrderNbr"]'
        raise ConfigError(msg)
    params = options.get("parameters") or {}
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        msg = f'{where}.parameters must be an object of parameter → text, e.g. {{"Status": "Open"}}'
        raise ConfigError(msg)
    return {
        "replication_key": rkey.strip() if rkey else None,
        "primary_keys": tuple(k.strip() for k in keys),
        "parameters": dict(params),
    }


def _deletion_dacs(config: Mapping[str, Any]) -> dict[str, str]:
    raw = config.get("deletion_dacs") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        msg = 'deletion_dacs must map REST entities to DAC names, e.g. {"Shipment": "SOShipment"}'
        raise ConfigError(msg)
    return {str(k): v.strip() for k, v in raw.items()}


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
