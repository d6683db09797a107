"""How real Acumatica instances fail, entity by entity and user by user (issue 11).

* ``--forbidden E,…``: the user has no rights to the entity's screen → **403** on every request on
  the entity (api.md §9: "403 (no rights to the screen behind the entity)").
* ``--not-set-up E,…``: the module behind the entity is not configured → **500**
  ``PX.Data.PXSetupNotEnteredException`` on every request on the entity (api.md §9, deterministic
  500s: "module not set up").
* ``--optimization-error E,…``: a list GET with ``$select`` → **500** "Optimization cannot be
  performed…" naming the selected fields; the same GET without ``$select`` works (api.md §4:
  "a plain ``$select`` can cause it too … they retry without ``$select``").
* ``--lockout-after N``: N consecutive wrong passwords lock the user; then every sign-in, even
  with the right password, is refused until ``POST /_sandbox/reset`` (api.md §6 "Lockout").
* ``--unstable-ids E,…``: the records' ``id`` changes with the session, like records without a
  NoteID (api.md §3/§11: ``id`` is the NoteID; without one it is generated per session).

All bodies use the §9 ``HttpError`` shape (``error_body``). Exact texts: see each reply builder.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import re
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.sandbox import Reply, error_body, json_reply
from tests.sandbox.auth import TENANT, USERNAME, basic_credentials, bearer_token
from tests.sandbox.entities import ENTITIES

if TYPE_CHECKING:
    from tests.sandbox.app import App
    from tests.sandbox.server import Handler

#: The screen's "Preferences" form and the setup DAC each entity's graph needs (the graph's
#: constructor reads ``PXSetup<…>.Current`` and throws PXSetupNotEnteredException when it is
#: empty). Display names as in Acumatica's site map.
SETUP_FORMS: dict[str, tuple[str, str]] = {
    "Customer": ("Accounts Receivable Preferences", "PX.Objects.AR.ARSetup"),
    "SalesInvoice": ("Accounts Receivable Preferences", "PX.Objects.AR.ARSetup"),
    "Invoice": ("Accounts Receivable Preferences", "PX.Objects.AR.ARSetup"),
    "Payment": ("Accounts Receivable Preferences", "PX.Objects.AR.ARSetup"),
    "Vendor": ("Accounts Payable Preferences", "PX.Objects.AP.APSetup"),
    "Bill": ("Accounts Payable Preferences", "PX.Objects.AP.APSetup"),
    "SalesOrder": ("Sales Orders Preferences", "PX.Objects.SO.SOSetup"),
    "Shipment": ("Sales Orders Preferences", "PX.Objects.SO.SOSetup"),
    "StockItem": ("Inventory Preferences", "PX.Objects.IN.INSetup"),
    "NonStockItem": ("Inventory Preferences", "PX.Objects.IN.INSetup"),
    "PurchaseOrder": ("Purchase Orders Preferences", "PX.Objects.PO.POSetup"),
    "JournalTransaction": ("General Ledger Preferences", "PX.Objects.GL.GLSetup"),
    "Account": ("General Ledger Preferences", "PX.Objects.GL.GLSetup"),
    "Subaccount": ("General Ledger Preferences", "PX.Objects.GL.GLSetup"),
    "Contact": ("Customer Management Preferences", "PX.Objects.CR.CRSetup"),
    "Employee": ("Time and Expenses Preferences", "PX.Objects.EP.EPSetup"),
    "Project": ("Projects Preferences", "PX.Objects.PM.PMSetup"),
}

#: api.md §6 "Lockout": the text of the refusal is not published. Our guess, in the style of the
#: "Invalid credentials" login error (cookie login) and of IdentityServer (password grant).
LOCKED_OUT = "Error: Your account is locked out. Please contact your system administrator."
LOCKED_OUT_OAUTH = "The user account is locked out."

_GUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ID_FIELD = re.compile(rb'"id":"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"')
_GUID_TEXT = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


@dataclass
class FailingOptions:
    """Issue 11 failure modes; all off by default this session (see README "Failing entities")."""

    forbidden: frozenset[str] = field(default_factory=frozenset)
    not_set_up: frozenset[str] = field(default_factory=frozenset)
    optimization_error: frozenset[str] = field(default_factory=frozenset)
    unstable_ids: frozenset[str] = field(default_factory=frozenset)
    lockout_after: int = 5  # 0 = never lock


# ---------------------------------------------------------------------------- command line
#: The command line's defaults (in-process ``FailingOptions`` default to none).
DEFAULT_FORBIDDEN = frozenset({"Employee"})
DEFAULT_NOT_SET_UP = frozenset({"Project"})
DEFAULT_OPTIMIZATION_ERROR = frozenset({"Payment"})
#: A FULL_TABLE entity (no change field, api.md §2.1) whose NoteID is not confirmed (§3: records
#: without one get session-scoped ids): the unfavourable variant by default.
DEFAULT_UNSTABLE_IDS = frozenset({"Subaccount"})


def entity_list(text: str) -> frozenset[str]:
    """``"A,B"`` → ``{"A", "B"}``; every name must be a sandbox entity (exact spelling)."""
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    unknown = sorted(n for n in names if n not in ENTITIES)
    if unknown:
        msg = f"unknown entity {', '.join(unknown)} (known: {', '.join(sorted(ENTITIES))})"
        raise argparse.ArgumentTypeError(msg)
    return names


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        msg = "must be >= 0"
        raise argparse.ArgumentTypeError(msg)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``failing entities and users`` option group of ``python -m tests.sandbox``."""
    g = parser.add_argument_group("failing entities and users (issue 11; README 'Failing')")
    # Defaults: one entity each, none of them selected by the README demo, so `*.*` on the
    # default sandbox meets all three, as it would on many real instances (api.md §4, §9).
    g.add_argument(
        "--forbidden",
        type=entity_list,
        default=DEFAULT_FORBIDDEN,
        metavar="E,…",
        help="entities whose screen the user may not open: every request → 403 "
        f"(default {','.join(sorted(DEFAULT_FORBIDDEN))}; '' for none)",
    )
    g.add_argument(
        "--not-set-up",
        type=entity_list,
        default=DEFAULT_NOT_SET_UP,
        metavar="E,…",
        help="entities whose module is not set up: 500 PXSetupNotEnteredException "
        f"(default {','.join(sorted(DEFAULT_NOT_SET_UP))}; '' for none)",
    )
    g.add_argument(
        "--optimization-error",
        type=entity_list,
        default=DEFAULT_OPTIMIZATION_ERROR,
        metavar="E,…",
        help="entities whose list GET with $select → 500 'Optimization cannot be performed' "
        f"(default {','.join(sorted(DEFAULT_OPTIMIZATION_ERROR))}; '' for none)",
    )
    g.add_argument(
        "--unstable-ids",
        type=entity_list,
        default=DEFAULT_UNSTABLE_IDS,
        metavar="E,…",
        help="entities whose record ids change with the session (no NoteID; default "
        f"{','.join(sorted(DEFAULT_UNSTABLE_IDS))}; '' for none)",
    )
    g.add_argument(
        "--lockout-after",
        type=non_negative,
        default=5,
        metavar="N",
        help="lock the user after N consecutive wrong passwords until /_sandbox/reset; "
        "0 = never (default 5)",
    )


def options_from_args(ns: argparse.Namespace) -> FailingOptions:
    return FailingOptions(
        forbidden=ns.forbidden,
        not_set_up=ns.not_set_up,
        optimization_error=ns.optimization_error,
        unstable_ids=ns.unstable_ids,
        lockout_after=ns.lockout_after,
    )


# ---------------------------------------------------------------------------- replies
def forbidden_reply() -> Reply:
    """403 (api.md §9). The body is our guess: §9 shape with PX.Data's rights exception text."""
    return json_reply(
        403,
        error_body(
            "You don't have enough rights on 'Select'.", "PX.Data.PXNotEnoughRightsException"
        ),
    )


def setup_not_entered_reply(entity: str) -> Reply:
    """500 PXSetupNotEnteredException (api.md §9), text of PX.Data ErrorMessages.SetupNotEntered.

    Published bodies show the generic exception type with the setup DAC, e.g.
    ``PX.Data.PXSetupNotEnteredException`1[[PX.Objects.AR.ARSetup, PX.Objects]]``.
    """
    form, dac = SETUP_FORMS.get(entity, ("Preferences", "PX.Objects.CS.Setup"))
    return json_reply(
        500,
        error_body(
            f"The required configuration data is not entered on the {form} form.",
            f"PX.Data.PXSetupNotEnteredException`1[[{dac}, PX.Objects]]",
        ),
    )


def cannot_optimize_reply(entity: str, select: str) -> Reply:
    """500 CannotOptimizeException (api.md §4) naming the selected fields (line text: guess)."""
    view = ENTITIES[entity].view
    names = [p.strip().split("/")[-1] for p in select.split(",") if p.strip()][:3]
    lines = "".join(f"{view}.{n}: Field {n} is not bound to the database\r\n" for n in names)
    msg = f"Optimization cannot be performed.The following fields cause the error:\r\n{lines}"
    return json_reply(
        500, error_body(msg, "PX.Api.ContractBased.OptimizedExport.CannotOptimizeException")
    )


# ---------------------------------------------------------------------------- state
class Failing:
    """One sandbox's failure modes and the sign-in lockout state (thread-safe)."""

    def __init__(self, options: FailingOptions) -> None:
        self.opt = options
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """``POST /_sandbox/reset``: unlock the user and zero the counters."""
        with self._lock:
            self.consecutive = 0
            self.locked = False
            self.failed_logins = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"failed_logins": self.failed_logins, "locked_out": self.locked}

    # -------------------------------------------------------------- entities
    def entity_gate(self, entity: str) -> Reply | None:
        """Every request on a forbidden / not-set-up entity fails before anything else."""
        if entity in self.opt.forbidden:
            return forbidden_reply()
        if entity in self.opt.not_set_up:
            return setup_not_entered_reply(entity)
        return None

    def list_gate(self, entity: str, params: dict[str, str]) -> Reply | None:
        select = params.get("$select", "")
        if entity in self.opt.optimization_error and select.strip():
            return cannot_optimize_reply(entity, select)
        return None

    # -------------------------------------------------------------- session-scoped ids
    def _mask(self, session: str) -> int:
        return int.from_bytes(hashlib.sha256(session.encode()).digest()[:16], "big")

    def hide_ids(self, entity: str, session: str | None, body: bytes) -> bytes:
        """Replace every record/line id (and its echoes in links) by id XOR H(session)."""
        if entity not in self.opt.unstable_ids or session is None:
            return body
        ids = set(_ID_FIELD.findall(body))
        if not ids:
            return body
        mask = self._mask(session)

        def swap(m: re.Match[bytes]) -> bytes:
            g = m.group(0)
            return _xor_guid(g.decode(), mask).encode() if g in ids else g

        return _GUID.sub(swap, body)

    def reveal_keys(self, entity: str, session: str | None, keys: list[str]) -> list[str]:
        """GET by a session id: map it back to the stored NoteID (same session only)."""
        if entity not in self.opt.unstable_ids or session is None:
            return keys
        if len(keys) == 1 and _GUID_TEXT.match(keys[0]):
            return [_xor_guid(keys[0].lower(), self._mask(session))]
        return keys

    # -------------------------------------------------------------- lockout
    def is_locked(self) -> bool:
        with self._lock:
            return self.locked

    def signed_in(self, ok: bool) -> None:
        """Record one sign-in attempt of the user (right or wrong password)."""
        with self._lock:
            if ok:
                self.consecutive = 0
                return
            self.failed_logins += 1
            self.consecutive += 1
            if self.opt.lockout_after and self.consecutive >= self.opt.lockout_after:
                self.locked = True

    def refused(self) -> None:
        """A refused sign-in that does not move the lockout counter."""
        with self._lock:
            self.failed_logins += 1


def _xor_guid(guid: str, mask: int) -> str:
    h = f"{int(guid.replace('-', ''), 16) ^ mask:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def request_session(h: Handler) -> str | None:
    """The session of a request: server.py's ``session_id`` when it sets one, else derived."""
    sid = getattr(h, "session_id", None)
    return sid or session_of(h.server.app, h.cookies, h.authorization)


def session_of(app: App, cookies: dict[str, str], authorization: str | None) -> str | None:
    """The server session a (validated) request runs in: the bearer's seat, else the cookie."""
    auth = app.auth
    token = bearer_token(authorization)
    if token is not None:
        with auth._lock:  # read-only peek at the session table
            at = auth.access.get(token)
            chain = auth.chains.get(at.chain) if at is not None else None
            return (chain.session if chain is not None else None) or token
    return cookies.get("ASP.NET_SessionId")


# ---------------------------------------------------------------------------- sign-in wrappers
def _is_user(name: str, tenant: str = TENANT) -> bool:
    """Only the sandbox user's own attempts count (another name or tenant is another user)."""
    return name.strip().lower() == USERNAME and tenant.lower() == TENANT.lower()


def login(app: App, body: dict[str, Any]) -> Reply:
    """``POST /entity/auth/login`` with the lockout (api.md §6) around ``Seats.login``."""
    name = str(body.get("name") or "")
    tenant = str(body.get("tenant") or body.get("company") or TENANT)
    if not _is_user(name, tenant):  # another user or tenant: counted, locks nobody
        reply = app.auth.login(body)
        if reply.status == 500 and b"Invalid credentials" in reply.body:
            app.failing.refused()
        return reply
    if app.failing.is_locked():
        app.failing.refused()
        return json_reply(500, error_body(LOCKED_OUT, "PX.Data.PXException"))
    ok = app.auth.check_user(name, str(body.get("password") or ""))
    app.failing.signed_in(ok=ok)
    return app.auth.login(body)


def token(app: App, form: dict[str, str], authorization: str | None, base: str) -> Reply:
    """``POST /identity/connect/token``: the password grant counts toward the lockout."""
    auth = app.auth
    if form.get("grant_type") != "password":
        return auth.token(form, authorization, base)
    if not _is_user(form.get("username", "")):  # another user: counted, locks nobody
        reply = auth.token(form, authorization, base)
        if b"invalid_username_or_password" in reply.body:
            app.failing.refused()
        return reply
    client_id, secret = form.get("client_id"), form.get("client_secret")
    basic = basic_credentials(authorization)
    if basic is not None and not secret:
        client_id, secret = basic
    client_ok = client_id == auth.client_id and hmac.compare_digest(
        (secret or "").encode(), auth.client_secret.encode()
    )
    if not client_ok:  # invalid_client: the user's password was never checked
        return auth.token(form, authorization, base)
    if app.failing.is_locked():
        app.failing.refused()
        body = {"error": "invalid_grant", "error_description": LOCKED_OUT_OAUTH}
        return json_reply(400, body, [("Cache-Control", "no-store")])
    app.failing.signed_in(ok=auth.check_user(form.get("username", ""), form.get("password", "")))
    return auth.token(form, authorization, base)
