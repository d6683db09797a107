"""Rotating OAuth tokens in PostgreSQL: one row per store key, shared across processes and machines.

``oauth_settings_location`` may be a database URL: ``postgresql://``, ``postgres://`` or Meltano's
``postgresql+psycopg://`` (so ``MELTANO_DATABASE_URI`` can be reused as is). The tokens then live
in the table ``tap_acumatica_oauth_tokens`` (created when absent; schema by ``search_path``),
one row per key: the fingerprint of client_id, base URL and tenant (``tokenstore.fingerprint``),
so many tenants share one table. A row holds the document the file store writes
(``tokenstore.document_of``). psycopg 3 is the optional extra ``tap-acumatica[postgres]``,
imported on first use; nothing here touches the network before ``lock()`` or ``read()``.

Why a row lock (``SELECT … FOR UPDATE`` in a transaction held from reading the row through the
token POST to writing it back) and not a compare-and-swap on a version column: Acumatica
rotates the refresh token on every refresh and answers ``invalid_grant`` to one used twice
(docs/acumatica-api.md §7). A swap checked after the POST comes too late: the loser has spent
the same refresh token already. A swap that claims the refresh before the POST is a lease, and
a process killed while holding it blocks everyone until the lease times out, a timeout no
one can pick safely since a refresh may legitimately take minutes. PostgreSQL ends a row lock
the moment its holder's connection dies (kill -9 closes the socket; keepalives catch a vanished
machine), and rolls back what the holder had not committed, so the next process reads the last
committed chain: the old refresh token if the holder died before saving the new one.

Writes made under the lock are committed when the ``lock()`` block ends, on success or failure
alike (as the file store's writes are durable at once), and before the authenticator hands out
the new access token: the rotated refresh token is saved first. The "refresh in flight" mark
(``pending_refresh_sha256``), which the file store writes to disk before the token POST, cannot
wait for that commit: it is committed at once in a row of its own (``<key>:refresh-in-flight``,
through a second short connection), so a run killed during the POST leaves it behind as a file
would, and the next run can say that a refresh was cut short.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tap_acumatica import redact
from tap_acumatica.auth.tokenstore import (
    LOCK_TIMEOUT_SECONDS,
    StoredTokens,
    TokenStore,
    document_of,
    is_database_url,
    stored_of,
)
from tap_acumatica.errors import AuthError, ConfigError

TABLE = "tap_acumatica_oauth_tokens"
EXTRA = "tap-acumatica[postgres]"
CONNECT_TIMEOUT_SECONDS = 15
_CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (
    store_key text PRIMARY KEY,
    document jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)"""
_SESSION = {
    "lock_timeout": f"{int(LOCK_TIMEOUT_SECONDS)}s",  # a stuck holder: one line, as for files
    "statement_timeout": "0",  # the wait for the row is bounded by lock_timeout alone
    "idle_in_transaction_session_timeout": "0",  # the lock is held across a slow token POST
}
_PENDING = "pending_refresh_sha256"
_DRIVER = re.compile(r"^postgres(?:ql)?(?:\+[a-z0-9_]+)?://", re.IGNORECASE)


def _psycopg() -> Any:
    """psycopg 3, or one line naming the extra to install."""
    try:
        return importlib.import_module("psycopg")
    except ImportError:
        msg = (
            "oauth_settings_location is a PostgreSQL URL but psycopg 3 is not installed; "
            f"install the extra: pip install '{EXTRA}'"
        )
        raise ConfigError(msg) from None


class PgTokenStore(TokenStore):
    """The tokens of one store key in the table ``tap_acumatica_oauth_tokens``."""

    def __init__(self, url: str, *, key: str) -> None:
        """``url`` names the database, ``key`` the row; no I/O (no ``super()``: no file)."""
        if not is_database_url(url):
            raise ConfigError("oauth_settings_location is not a postgresql:// URL")
        self.url = url.strip()
        self.key = key
        self._mark_key = f"{key}:refresh-in-flight"
        self.in_config = False
        self._conn: Any = None  # the connection holding the row lock, inside lock()
        self._held = threading.RLock()  # one thread at a time; the holder may re-enter
        self._staged: dict[str, Any] | None = None  # the document written under the lock
        parts = urlsplit(self.url)
        # The password may sit in the URL or in its query: never in a log, error or output.
        secrets = [self.url, _password(parts.netloc)]
        secrets += [v for k, v in parse_qsl(parts.query) if k == "password"]
        redact.register(*secrets, *(unquote(s) for s in secrets if s))
        self._shown = _without_secrets(parts.netloc, parts.path)

    def __repr__(self) -> str:
        return f"PgTokenStore({self._shown!r}, key={self.key!r})"

    @property
    def describe(self) -> str:
        """Where the tokens live, for messages (never the password)."""
        return f"{self._shown} (table {TABLE}, key {self.key})"

    def check_kind(self) -> None:
        """ConfigError unless psycopg is installed and libpq accepts the URL (no network)."""
        self._params()

    def _params(self) -> dict[str, Any]:
        psycopg = _psycopg()
        libpq_url = _DRIVER.sub("postgresql://", self.url, count=1)
        try:
            urlsplit(libpq_url).port  # noqa: B018  (a port that is not a number: ValueError)
            params: dict[str, Any] = psycopg.conninfo.conninfo_to_dict(libpq_url)
        except (psycopg.Error, ValueError) as exc:
            msg = (
                f"oauth_settings_location is not a valid PostgreSQL URL ({_one_line(exc)}); "
                "expected postgresql://user:password@host:port/database"
            )
            raise ConfigError(msg) from None
        params.setdefault("connect_timeout", CONNECT_TIMEOUT_SECONDS)
        params.setdefault("application_name", "tap-acumatica token store")
        for name, value in (("keepalives", 1), ("keepalives_idle", 30), ("keepalives_count", 3)):
            params.setdefault(name, value)
        return params

    # -- the lock ------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the row lock (read → refresh → write happen inside it); commit at the end."""
        with self._held:
            if self._conn is not None:  # re-entered by the holder: the same transaction
                yield
                return
            with self._transaction():
                yield

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self._connect()
        try:
            self._lock_row(conn)
            self._conn, self._staged = conn, None
            try:
                yield
            finally:
                self._conn = None
                self._finish(conn)
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _connect(self) -> Any:
        params = self._params()
        psycopg = _psycopg()
        try:
            conn = psycopg.connect(**params)
        except psycopg.Error as exc:
            raise self._error(exc, "connect to") from None
        try:
            for name, value in _SESSION.items():
                conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            conn.commit()
        except psycopg.Error as exc:
            conn.close()
            raise self._error(exc, "set up a session on") from None
        return conn

    def _lock_row(self, conn: Any) -> None:
        psycopg = _psycopg()
        doing = "read"
        try:
            if conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
                doing = "create"
                self._create_table(conn)
            doing = "lock"
            for _ in range(3):  # a row deleted between the insert and the lock: insert again
                if self._select(conn, lock=True) is not None:
                    return
                conn.rollback()
                doing = "insert into"
                conn.execute(
                    f"INSERT INTO {TABLE} (store_key, document) VALUES (%s, '{{}}'::jsonb) "  # noqa: S608
                    "ON CONFLICT (store_key) DO NOTHING",
                    (self.key,),
                )
                conn.commit()
                doing = "lock"
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()
            raise self._error(exc, doing) from None
        msg = f"the row of the OAuth token store {self.describe} keeps disappearing"
        raise AuthError(msg)

    def _create_table(self, conn: Any) -> None:
        psycopg = _psycopg()
        try:
            conn.execute(_CREATE)
            conn.commit()
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            conn.rollback()  # another process created it at the same moment

    def _select(self, conn: Any, *, lock: bool) -> Any:
        query = f"SELECT document FROM {TABLE} WHERE store_key = %s"  # noqa: S608
        row = conn.execute(query + (" FOR UPDATE" if lock else ""), (self.key,)).fetchone()
        return None if row is None else row[0]

    def _finish(self, conn: Any) -> None:
        """Commit what was written under the lock (or just release it)."""
        psycopg = _psycopg()
        staged, self._staged = self._staged, None
        if staged is None:
            with contextlib.suppress(psycopg.Error):
                conn.rollback()  # nothing written: only the lock to let go
            return
        try:
            conn.commit()
        except psycopg.Error as exc:
            raise self._error(exc, "save the tokens to") from None
        if not staged.get(_PENDING):
            with contextlib.suppress(psycopg.Error):  # a mark left behind only misleads later
                conn.execute(f"DELETE FROM {TABLE} WHERE store_key = %s", (self._mark_key,))  # noqa: S608
                conn.commit()

    # -- reading and writing -------------------------------------------------------------
    def read(self) -> StoredTokens | None:
        """The stored tokens, or None when the row holds none (locks the row if not held)."""
        with self.lock():
            return self._read(self._conn)

    def _read(self, conn: Any) -> StoredTokens | None:
        query = f"SELECT store_key, document FROM {TABLE} WHERE store_key IN (%s, %s)"  # noqa: S608
        try:
            rows = dict(conn.execute(query, (self.key, self._mark_key)).fetchall())
        except _psycopg().Error as exc:
            raise self._error(exc, "read") from None
        doc, mark = rows.get(self.key), (rows.get(self._mark_key) or {}).get(_PENDING)
        if isinstance(doc, dict) and mark and not doc.get(_PENDING):
            doc = {**doc, _PENDING: mark}  # a refresh a killed process had in flight
        return stored_of(doc)

    def write(self, stored: StoredTokens, *, meta: Mapping[str, str] | None = None) -> None:
        """Replace the stored tokens; committed when ``lock()`` ends (call with it held)."""
        with self.lock():
            self._write(self._conn, stored, meta)

    def _write(self, conn: Any, stored: StoredTokens, meta: Mapping[str, str] | None) -> None:
        psycopg = _psycopg()
        doc = document_of(stored, meta)
        try:
            conn.execute(
                f"UPDATE {TABLE} SET document = %s, updated_at = now() WHERE store_key = %s",  # noqa: S608
                (psycopg.types.json.Jsonb(doc), self.key),
            )
        except psycopg.Error as exc:
            raise self._error(exc, "write") from None
        self._staged = doc
        if stored.pending_refresh_sha256:
            self._mark(stored.pending_refresh_sha256)

    def _mark(self, digest: str) -> None:
        """Commit the "refresh in flight" mark now, in its own row (ours is locked until the end).

        A process killed during the token POST rolls its row back; this row stays and tells the
        next run, should the server have rotated the token, that a refresh was cut short.
        """
        psycopg = _psycopg()
        side = self._connect()
        try:
            side.execute(
                f"INSERT INTO {TABLE} (store_key, document) VALUES (%s, %s) "  # noqa: S608
                "ON CONFLICT (store_key) DO UPDATE SET document = EXCLUDED.document, "
                "updated_at = now()",
                (self._mark_key, psycopg.types.json.Jsonb({_PENDING: digest})),
            )
            side.commit()
        except psycopg.Error as exc:
            raise self._error(exc, "write") from None
        finally:
            side.close()

    # -- errors --------------------------------------------------------------------------
    def _error(self, exc: Exception, doing: str) -> ConfigError | AuthError:
        """One line for a failed database call; the password never appears in it."""
        psycopg = _psycopg()
        reason = _one_line(exc)
        if isinstance(exc, psycopg.errors.InsufficientPrivilege):
            msg = (
                f"the PostgreSQL user may not {doing} the OAuth token store {self.describe} "
                f"({reason}); grant SELECT, INSERT, UPDATE, DELETE on {TABLE} (and CREATE on "
                "its schema if the table does not exist yet)"
            )
            return ConfigError(msg)
        if isinstance(exc, psycopg.errors.LockNotAvailable):
            msg = (
                f"another tap-acumatica process has held the OAuth token store {self.describe} "
                f"for {LOCK_TIMEOUT_SECONDS:.0f} s; is a refresh stuck?"
            )
            return AuthError(msg)
        if doing == "save the tokens to":
            msg = (
                f"cannot save the OAuth tokens to {self.describe} ({reason}); a refresh token "
                "rotated by this run may be lost"
            )
            return AuthError(msg)
        return AuthError(f"cannot {doing} the OAuth token store {self.describe}: {reason}")


def _password(netloc: str) -> str | None:
    userinfo = netloc.rpartition("@")[0]
    return userinfo.partition(":")[2] or None if ":" in userinfo else None


def _without_secrets(netloc: str, path: str) -> str:
    """``postgresql://user@host:port/db``: no password, no query (it may hold one)."""
    user, _, hostport = netloc.rpartition("@")
    user = user.partition(":")[0]
    return f"postgresql://{user + '@' if user else ''}{hostport}{path}"


def _one_line(exc: BaseException) -> str:
    """A database error in one line, secrets masked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact.redact(text)
