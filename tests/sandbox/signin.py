"""The identity server's HTML: the sign-in and consent page and its error page (api.md §7)."""

from __future__ import annotations

from html import escape

from tests.sandbox import Reply
from tests.sandbox.auth import TENANT

_STYLE = (
    "body{font-family:sans-serif;background:#f3f5f8;margin:0}"
    "main{max-width:26rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:6px}"
    "label{display:block;margin-top:1rem}input{width:100%;padding:.4rem;box-sizing:border-box}"
    "button{margin-top:1.2rem;margin-right:.6rem;padding:.5rem 1.2rem}#error{color:#b00020}"
)


def html_error(status: int, error: str, description: str) -> Reply:
    """IdentityServer-style error page (never redirects to an unvalidated redirect_uri)."""
    body = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Error</title>'
        f"<style>{_STYLE}</style></head><body><main><h1>Sorry, there was an error</h1>"
        f'<p id="error-code">{escape(error)}</p><p id="error-description">'
        f"{escape(description)}</p></main></body></html>"
    )
    return Reply(status, body.encode(), "text/html; charset=utf-8")


def signin_page(base: str, rid: str, params: dict[str, str], error: str | None) -> Reply:
    """One page that signs the user in and asks for consent; stable ids for browser tests."""
    scopes = "".join(f"<li>{escape(s)}</li>" for s in params.get("scope", "").split())
    err = f'<p id="error" role="alert">{escape(error)}</p>' if error else ""
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Acumatica ERP - Sign In</title>
<style>{_STYLE}</style></head>
<body><main id="signin">
<h1>Acumatica ERP</h1>
<p id="consent-text">The application
<strong id="client-id">{escape(params.get("client_id", ""))}</strong>
requests access to tenant <strong>{TENANT}</strong> with these permissions:</p>
<ul id="scopes">{scopes}</ul>
<form id="signin-form" method="post" action="{escape(base)}/identity/connect/authorize">
<input type="hidden" name="request_id" value="{escape(rid)}">
<label for="username">Username</label>
<input id="username" name="username" type="text" autocomplete="username">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
{err}
<button id="approve" name="action" value="approve" type="submit">Approve</button>
<button id="deny" name="action" value="deny" type="submit">Deny</button>
</form></main></body></html>
"""
    return Reply(200, body.encode(), "text/html; charset=utf-8", [("Cache-Control", "no-store")])
