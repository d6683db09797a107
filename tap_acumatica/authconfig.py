"""Auth settings (the ``AUTH_SETTINGS`` part of the tap's config schema) and their checks.

``validate_auth_config`` needs no network and raises ConfigError with one clear line.
``AUTH_SETTINGS`` is built on first use: importing singer_sdk costs seconds, and ``--login``
and the authenticator itself do not need it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tap_acumatica.codegrant import is_loopback
from tap_acumatica.errors import ConfigError

if TYPE_CHECKING:
    from singer_sdk import typing as th

    AUTH_SETTINGS: list[th.Property]

AUTH_METHODS = ("oauth_code", "oauth_password", "cookie")
INITIATE_OAUTH = ("GETANDREFRESH", "REFRESH", "OFF")
DEFAULT_SCOPE = "api offline_access"
SECRET_KEYS = ("client_secret", "access_token", "refresh_token", "password")


def _settings() -> list[th.Property]:
    from singer_sdk import typing as th  # noqa: PLC0415 - see module docstring

    return [
        th.Property(
            "auth_method",
            th.StringType,
            default="oauth_code",
            allowed_values=list(AUTH_METHODS),
            description="oauth_code (authorization-code grant, default), oauth_password "
            "(resource-owner password grant) or cookie (/entity/auth/login session).",
        ),
        th.Property(
            "client_id",
            th.StringType,
            description="OAuth client ID of the connected application (SM303010), <GUID>@<Tenant>.",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            description="OAuth shared secret of the connected application.",
        ),
        th.Property(
            "redirect_uri",
            th.StringType,
            description="Redirect URI registered on the connected application, e.g. "
            "http://localhost:8765/callback (the tap listens there during --login); a non-loopback "
            "URI means you paste the redirected address instead.",
        ),
        th.Property(
            "scope",
            th.StringType,
            default=DEFAULT_SCOPE,
            description="OAuth scopes; offline_access is needed for a refresh token.",
        ),
        th.Property(
            "initiate_oauth",
            th.StringType,
            default="GETANDREFRESH",
            allowed_values=list(INITIATE_OAUTH),
            description="GETANDREFRESH: sign in through the browser when no usable token exists, "
            "then refresh; REFRESH: never interactive, refresh the stored or given refresh_token; "
            "OFF: use access_token as given.",
        ),
        th.Property(
            "oauth_settings_location",
            th.StringType,
            description="JSON file holding the rotating OAuth tokens (created 0600). Default: the "
            "--config file itself, or .meltano/tap-acumatica/oauth-tokens.json under Meltano.",
        ),
        th.Property(
            "access_token",
            th.StringType,
            secret=True,
            description="An OAuth access token (with initiate_oauth OFF, the only credential).",
        ),
        th.Property(
            "refresh_token",
            th.StringType,
            secret=True,
            description="Seed refresh token, used when the token store has none (or a different "
            "one that this value replaces). Rotated tokens go to the token store, not here.",
        ),
        th.Property(
            "username", th.StringType, description="Acumatica user (cookie, oauth_password)."
        ),
        th.Property("password", th.StringType, secret=True, description="Password of that user."),
        th.Property(
            "tenant",
            th.StringType,
            description="Tenant login name for cookie sign-in; default: the part of client_id "
            "after '@'.",
        ),
        th.Property(
            "branch", th.StringType, description="Branch ID for cookie sign-in (optional)."
        ),
        th.Property("locale", th.StringType, description="Locale for cookie sign-in (optional)."),
        th.Property(
            "login_timeout_seconds",
            th.IntegerType(minimum=1, maximum=86400),
            default=300,
            description="How long --login waits for the browser sign-in.",
        ),
        th.Property(
            "open_browser",
            th.BooleanType,
            default=True,
            description="Open the system browser for sign-in (the URL is always printed to "
            "stderr).",
        ),
    ]


def __getattr__(name: str) -> Any:
    """``AUTH_SETTINGS`` is built on first use (PEP 562)."""
    if name == "AUTH_SETTINGS":
        value = _settings()
        globals()[name] = value
        return value
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def tenant_of(config: Mapping[str, Any]) -> str:
    """The tenant: the ``tenant`` setting, else the part of client_id after '@' (§7)."""
    if config.get("tenant"):
        return str(config["tenant"])
    client_id = str(config.get("client_id") or "")
    return client_id.rpartition("@")[2] if "@" in client_id else ""


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


def validate_auth_config(config: Mapping[str, Any], *, login: bool = False) -> None:
    """Check the auth settings without any network call; ConfigError (one line) if wrong."""
    base_url = config.get("base_url")
    if not isinstance(base_url, str) or not base_url.strip():
        msg = "base_url is required (the instance URL, e.g. https://example.acumatica.com)"
        raise ConfigError(msg)
    parts = url_parts("base_url", base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"base_url {base_url!r} is not an http(s) URL"
        raise ConfigError(msg)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        # API-FACTS §7 "HTTPS mandatory": never send passwords or tokens in clear text.
        msg = f"base_url must use https:// for a non-local host ({parts.hostname})"
        raise ConfigError(msg)
    method = config.get("auth_method") or "oauth_code"
    if method not in AUTH_METHODS:
        msg = f"auth_method must be one of {', '.join(AUTH_METHODS)} (got {method!r})"
        raise ConfigError(msg)
    if login and method != "oauth_code":
        msg = f"--login is for auth_method oauth_code (this config uses {method})"
        raise ConfigError(msg)
    need: list[str] = []
    if method in ("cookie", "oauth_password"):
        need += [k for k in ("username", "password") if not config.get(k)]
    if method != "cookie":
        need += [k for k in ("client_id", "client_secret") if not config.get(k)]
    initiate = str(config.get("initiate_oauth") or "GETANDREFRESH").upper()
    if method == "oauth_code":
        if initiate not in INITIATE_OAUTH:
            msg = f"initiate_oauth must be one of {', '.join(INITIATE_OAUTH)} (got {initiate!r})"
            raise ConfigError(msg)
        if initiate == "OFF" and not login and not config.get("access_token"):
            need.append("access_token")
        if login and not config.get("redirect_uri"):
            need.append("redirect_uri")
    if need:
        msg = f"auth_method {method} needs: {', '.join(need)}"
        raise ConfigError(msg)
    client_id = str(config.get("client_id") or "")
    if method != "cookie" and not tenant_of({"client_id": client_id}):
        msg = "client_id must look like <GUID>@<Tenant>, as shown on Connected Applications"
        raise ConfigError(msg)
    redirect = config.get("redirect_uri")
    if method == "oauth_code" and redirect:
        rparts = url_parts("redirect_uri", str(redirect))
        if rparts.scheme not in ("http", "https") or not rparts.hostname or rparts.fragment:
            msg = f"redirect_uri {redirect!r} must be an absolute http(s) URL without a fragment"
            raise ConfigError(msg)
        if rparts.scheme == "http" and not is_loopback(rparts.hostname):
            msg = "redirect_uri must use https:// unless it is a loopback address"
            raise ConfigError(msg)
    timeout = config.get("login_timeout_seconds", 300)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 < timeout <= 86400:
        msg = "login_timeout_seconds must be a whole number of seconds from 1 to 86400"
        raise ConfigError(msg)
