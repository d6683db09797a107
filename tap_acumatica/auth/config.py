"""Checks of the auth settings: ``validate_auth_config`` needs no network and raises
ConfigError with one clear line. The settings themselves are declared in ``settings``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tap_acumatica.errors import ConfigError
from tap_acumatica.settings import (
    AUTH_METHODS,
    INITIATE_OAUTH,
    check_base_url,
    is_loopback,
    url_parts,
    value,
)


def tenant_of(config: Mapping[str, Any]) -> str:
    """The tenant: the ``tenant`` setting, else the part of client_id after '@'.

    docs/acumatica-api.md §7: client_id is ``<GUID>@<Tenant>``.
    """
    if config.get("tenant"):
        return str(config["tenant"])
    client_id = str(config.get("client_id") or "")
    return client_id.rpartition("@")[2] if "@" in client_id else ""


def validate_auth_config(config: Mapping[str, Any], *, login: bool = False) -> None:
    """Check the auth settings without any network call; ConfigError (one line) if wrong."""
    base_url = config.get("base_url")
    check_base_url(base_url if isinstance(base_url, str) else "")
    method = value(config, "auth_method")
    if method not in AUTH_METHODS:
        msg = f"auth_method must be one of {', '.join(AUTH_METHODS)} (got {method!r})"
        raise ConfigError(msg)
    if login and method != "oauth_code":
        msg = f"--login is for auth_method oauth_code (this config uses {method})"
        raise ConfigError(msg)
    need = _missing(config, method, login=login)
    if need:
        msg = f"auth_method {method} needs: {', '.join(need)}"
        raise ConfigError(msg)
    client_id = str(config.get("client_id") or "")
    if method != "cookie" and not tenant_of({"client_id": client_id}):
        msg = "client_id must look like <GUID>@<Tenant>, as shown on Connected Applications"
        raise ConfigError(msg)
    _check_tenant(config, client_id)
    redirect = config.get("redirect_uri")
    if method == "oauth_code" and redirect:
        _check_redirect(str(redirect))
    timeout = value(config, "login_timeout_seconds")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 < timeout <= 86400:
        msg = "login_timeout_seconds must be a whole number of seconds from 1 to 86400"
        raise ConfigError(msg)


def _missing(config: Mapping[str, Any], method: str, *, login: bool) -> list[str]:
    """The settings ``method`` needs that ``config`` lacks."""
    need: list[str] = []
    if method in ("cookie", "oauth_password"):
        need += [k for k in ("username", "password") if not config.get(k)]
    if method != "cookie":
        need += [k for k in ("client_id", "client_secret") if not config.get(k)]
    if method == "oauth_code":
        initiate = str(value(config, "initiate_oauth")).upper()
        if initiate not in INITIATE_OAUTH:
            msg = f"initiate_oauth must be one of {', '.join(INITIATE_OAUTH)} (got {initiate!r})"
            raise ConfigError(msg)
        if initiate == "OFF" and not login and not config.get("access_token"):
            need.append("access_token")
        if login and not config.get("redirect_uri"):
            need.append("redirect_uri")
    return need


def _check_redirect(redirect: str) -> None:
    parts = url_parts("redirect_uri", redirect)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        msg = f"redirect_uri {redirect!r} must be an absolute http(s) URL without a fragment"
        raise ConfigError(msg)
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        msg = "redirect_uri must use https:// unless it is a loopback address"
        raise ConfigError(msg)


def _check_tenant(config: Mapping[str, Any], client_id: str) -> None:
    """client_id's ``@Tenant`` must name the ``tenant`` setting when both are set.

    docs/acumatica-api.md §7: the token reaches only the tenant after '@'. Tenant login names
    are compared without regard to case.
    """
    suffix = tenant_of({"client_id": client_id})
    tenant = str(config.get("tenant") or "")
    if suffix and tenant and suffix.casefold() != tenant.casefold():
        msg = (
            f"client_id {client_id!r} is for tenant {suffix!r} (after '@') but tenant {tenant!r} "
            "is set; make them name the same tenant (Connected Applications, SM303010)"
        )
        raise ConfigError(msg)
