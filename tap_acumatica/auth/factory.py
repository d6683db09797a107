"""Build the run's one authenticator from the config (no network I/O)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from tap_acumatica import redact, settings
from tap_acumatica.auth.base import AcumaticaAuthenticator
from tap_acumatica.auth.config import tenant_of, validate_auth_config
from tap_acumatica.auth.cookie import CookieAuthenticator
from tap_acumatica.auth.grants import CodeGrantAuthenticator, PasswordGrantAuthenticator
from tap_acumatica.auth.oauth import OAuthAuthenticator
from tap_acumatica.auth.pgstore import PgTokenStore
from tap_acumatica.auth.tokenstore import (
    TokenSet,
    TokenStore,
    fingerprint,
    is_database_url,
    resolve_location,
)
from tap_acumatica.errors import ConfigError

logger = logging.getLogger("tap_acumatica.auth")


def build_authenticator(
    config: Mapping[str, Any], *, config_files: Sequence[str] = ()
) -> AcumaticaAuthenticator:
    """The one authenticator of a tap run, from explicit config values (no network I/O)."""
    validate_auth_config(config)
    redact.register_config(config, settings.SECRET_KEYS)
    method = settings.value(config, "auth_method")
    user_agent = config.get("user_agent") or None
    if method == "cookie":
        return CookieAuthenticator(
            base_url=str(config["base_url"]).strip(),
            username=config["username"],
            password=config["password"],
            tenant=tenant_of(config) or None,
            branch=config.get("branch"),
            locale=config.get("locale"),
            user_agent=user_agent,
            sessions=sessions_wanted(config),
        )
    return build_oauth(config, config_files=config_files, user_agent=user_agent)


def sessions_wanted(config: Mapping[str, Any]) -> int:
    """Server sessions for ``max_concurrent_requests`` (docs/acumatica-api.md §6: one each)."""
    try:
        return max(1, int(settings.value(config, "max_concurrent_requests")))
    except (TypeError, ValueError):
        return 1


def build_oauth(
    config: Mapping[str, Any], *, config_files: Sequence[str], user_agent: str | None
) -> OAuthAuthenticator:
    """The OAuth authenticator for ``config`` (validated by auth.validate_auth_config)."""
    method = settings.value(config, "auth_method")
    common: dict[str, Any] = {
        "base_url": str(config["base_url"]).strip(),
        "client_id": str(config["client_id"]),
        "client_secret": str(config["client_secret"]),
        "scope": str(settings.value(config, "scope")),
        # The tenant is part of client_id (docs/acumatica-api.md §7); the `tenant` setting serves
        # cookie
        # sign-in and must not change which tokens the store accepts.
        "tenant": tenant_of({"client_id": config["client_id"]}),
        "user_agent": user_agent,
        "sessions": sessions_wanted(config),
        "seed": TokenSet(
            access_token=config.get("access_token") or None,
            refresh_token=config.get("refresh_token") or None,
        ),
    }
    location = config.get("oauth_settings_location") or None
    key = fingerprint(common["client_id"], common["base_url"], common["tenant"])
    if method == "oauth_password":
        # The password grant can always sign in again: it keeps tokens on disk only when asked to.
        store = token_store(location, config_files=(), key=key) if location else None
        return PasswordGrantAuthenticator(
            username=str(config["username"]),
            password=str(config["password"]),
            store=store,
            **common,
        )
    initiate = str(settings.value(config, "initiate_oauth")).upper()
    if initiate != "OFF" and "offline_access" not in str(common["scope"]).split():
        # docs/acumatica-api.md §7: no offline_access, no refresh token: every hour needs a person.
        logger.warning("scope lacks offline_access: no refresh token, so no unattended renewal.")
    store = None
    if initiate != "OFF":
        store = token_store(location, config_files=config_files, key=key)
        if store is None:
            msg = (
                "nowhere durable to keep rotating OAuth tokens: set oauth_settings_location "
                "(or run the tap with exactly one --config file)"
            )
            raise ConfigError(msg)
    return CodeGrantAuthenticator(
        initiate_oauth=initiate,
        redirect_uri=config.get("redirect_uri") or None,
        login_timeout=float(settings.value(config, "login_timeout_seconds")),
        open_browser=bool(settings.value(config, "open_browser")),
        store=store,
        **common,
    )


def token_store(
    location: str | None, *, config_files: Sequence[str], key: str
) -> TokenStore | None:
    """A row of a PostgreSQL table for a database URL (``key``: its row), else a file."""
    if location and is_database_url(location):
        return PgTokenStore(location, key=key)
    return resolve_location(oauth_settings_location=location, config_files=config_files)
