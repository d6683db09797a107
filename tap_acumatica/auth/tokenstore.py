"""A durable, locked, atomically written home for OAuth tokens that rotate.

Acumatica rotates the refresh token on every refresh (docs/acumatica-api.md §7): the new one
must be on disk before anything else happens, or the next run has no valid token. singer-sdk
0.54 keeps no rotated token and Meltano deletes the config file it hands the tap
(docs/architecture.md, "The SDK"), so the store lives in one of three places
(``resolve_location``):

1. ``oauth_settings_location`` when set: a JSON file of its own (a ``postgresql://`` URL
   instead picks a row of a PostgreSQL table: ``auth.pgstore``, opened by ``auth.factory``);
2. else, the tap was started with one real ``--config`` file outside Meltano: the key
   ``oauth_tokens`` inside that file (every other key and the file's mode are kept);
3. else, under Meltano: ``$MELTANO_PROJECT_ROOT/.meltano/tap-acumatica/oauth-tokens.json``.

Every write goes to a temp file in the same directory, is fsynced, ``os.replace``\\ d over the
store and the directory is fsynced. Callers hold ``lock()`` (an inter-process file lock) from
reading the store through refreshing to writing it.

The store must be a regular file or a path that does not exist yet (created with mode 0600).
Anything else (a directory, a device such as ``/dev/null``, a FIFO, a socket) is refused before
the lock is taken and is never opened, replaced or written. A symlink is followed: tokens are
written into the file it points to, the link stays (and a link to anything but a regular file
is refused like its target).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import filelock

from tap_acumatica.errors import AuthError, ConfigError

logger = logging.getLogger("tap_acumatica.tokenstore")

FORMAT = "tap-acumatica/oauth-tokens/v1"
CONFIG_KEY = "oauth_tokens"
MELTANO_DEFAULT = Path(".meltano") / "tap-acumatica" / "oauth-tokens.json"
LOCK_TIMEOUT_SECONDS = 300.0
_warned: set[str] = set()


def fingerprint(client_id: str, base_url: str, tenant: str) -> str:
    """Identify the client and instance that tokens were issued for."""
    raw = "\n".join((client_id.strip().lower(), base_url.strip().rstrip("/").lower(), tenant))
    return hashlib.sha256(raw.lower().encode()).hexdigest()[:24]


def sha256(value: str | None) -> str | None:
    """Hash of a secret, for remembering it without keeping it."""
    return hashlib.sha256(value.encode()).hexdigest() if value else None


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(text: Any) -> float | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclasses.dataclass(frozen=True)
class TokenSet:
    """One access/refresh token pair with its absolute expiry (epoch seconds, UTC)."""

    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: float | None = None
    scope: str | None = None
    issued_at: float | None = None
    #: When the chain began (the sign-in whose refresh tokens this pair descends from).
    signed_in_at: float | None = None

    def access_valid(self, margin: float = 60.0, now: float | None = None) -> bool:
        """True if there is an access token that is good for at least ``margin`` seconds.

        The margin shrinks to half the token's lifetime for short-lived tokens. A token of
        unknown expiry counts as valid until the server says otherwise (401).
        """
        if not self.access_token:
            return False
        if self.expires_at is None:
            return True
        if self.issued_at is not None:
            margin = min(margin, max(0.0, self.expires_at - self.issued_at) / 2)
        return self.expires_at - margin > (time.time() if now is None else now)


@dataclasses.dataclass(frozen=True)
class StoredTokens:
    """What a store holds: tokens, whom they belong to, and bookkeeping."""

    tokens: TokenSet
    fingerprint: str | None
    seed_sha256: str | None = None
    pending_refresh_sha256: str | None = None


def stored_of(body: Any) -> StoredTokens | None:
    """The tokens of a store document (None when it holds none)."""
    if not isinstance(body, dict) or not (body.get("refresh_token") or body.get("access_token")):
        return None
    tokens = TokenSet(
        access_token=body.get("access_token") or None,
        refresh_token=body.get("refresh_token") or None,
        expires_at=_ts(body.get("expires_at")),
        scope=body.get("scope") or None,
        issued_at=_ts(body.get("issued_at")),
        signed_in_at=_ts(body.get("signed_in_at")),
    )
    return StoredTokens(
        tokens=tokens,
        fingerprint=body.get("fingerprint"),
        seed_sha256=body.get("seed_sha256"),
        pending_refresh_sha256=body.get("pending_refresh_sha256"),
    )


def document_of(stored: StoredTokens, meta: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The JSON document a store keeps for ``stored`` (``meta``: client_id, base_url)."""
    t = stored.tokens
    body: dict[str, Any] = {
        "format": FORMAT,
        **(meta or {}),
        "fingerprint": stored.fingerprint,
        "access_token": t.access_token,
        "issued_at": _iso(t.issued_at),
        "expires_at": _iso(t.expires_at),
        "refresh_token": t.refresh_token,
        "scope": t.scope,
        "signed_in_at": _iso(t.signed_in_at),
        "updated_at": _iso(time.time()),
    }
    if stored.seed_sha256:
        body["seed_sha256"] = stored.seed_sha256
    if stored.pending_refresh_sha256:
        body["pending_refresh_sha256"] = stored.pending_refresh_sha256
    return body


def is_database_url(location: str) -> bool:
    """True for a PostgreSQL URL (``auth.pgstore``), e.g. Meltano's ``postgresql+psycopg://``."""
    scheme = location.strip().split("://", 1)[0].lower() if "://" in location else ""
    return scheme in ("postgres", "postgresql") or scheme.startswith(("postgres+", "postgresql+"))


class TokenStore:
    """A JSON token document in its own file, or under ``oauth_tokens`` in a config file.

    Also the interface of every store (``lock``, ``read``, ``write``, ``describe``,
    ``check_kind``), which ``auth.pgstore.PgTokenStore`` overrides whole.
    """

    def __init__(self, path: str | os.PathLike[str], *, in_config: bool = False) -> None:
        raw = os.path.expandvars(os.path.expanduser(os.fspath(path)))
        self.given = Path(raw)
        self.path = Path(os.path.realpath(raw))
        self.in_config = in_config
        self._lock = filelock.FileLock(
            f"{self.path}.lock",
            timeout=LOCK_TIMEOUT_SECONDS,
            mode=0o600,
            preserve_lock_file=True,
        )

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r}, in_config={self.in_config})"

    @property
    def describe(self) -> str:
        """Where the tokens live, for messages."""
        return f"{self.path} (key {CONFIG_KEY!r})" if self.in_config else str(self.path)

    def check_kind(self) -> None:
        """ConfigError unless the store is a regular file or missing (see the module docstring).

        Only ``stat``: a FIFO is never opened (that would block), a device never replaced.
        """
        try:
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return
        except OSError as exc:
            msg = f"cannot use {self._named()} to keep OAuth tokens: {exc.strerror}"
            raise ConfigError(msg) from None
        if not stat.S_ISREG(mode):
            raise self._not_regular(mode)

    def _named(self) -> str:
        link = f" (the link {self.given} leads there)" if self.given != self.path else ""
        return f"{self.describe}{link}"

    def _not_regular(self, mode: int) -> ConfigError:
        kind = next((name for test, name in _KINDS if test(mode)), "not a plain file")
        fix = (
            "give --config a regular JSON file"
            if self.in_config
            else "set oauth_settings_location to a JSON file path (a missing file is created)"
        )
        link = f" ({self.given} links to it)" if self.given != self.path else ""
        return ConfigError(
            f"the OAuth token store {self.describe} is {kind}, not a regular file{link}; {fix}"
        )

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the inter-process lock (read → refresh → write happen inside it)."""
        self.check_kind()  # before the lock: the lock file goes next to the store
        try:
            if not self.in_config:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._lock.acquire()
        except filelock.Timeout:
            msg = (
                f"another tap-acumatica process has held the token store lock {self.path}.lock "
                f"for {LOCK_TIMEOUT_SECONDS:.0f} s; is a refresh stuck?"
            )
            raise AuthError(msg) from None
        except OSError as exc:
            msg = (
                f"cannot lock the OAuth token store {self._named()} ({self.path}.lock: "
                f"{exc.strerror}); its directory must be a writable directory"
            )
            raise ConfigError(msg) from None
        try:
            yield
        finally:
            self._lock.release()

    # -- reading -------------------------------------------------------------------------

    def _read_text(self) -> str:
        """The store's text; it is checked to be a regular file after opening, before reading."""
        self.check_kind()
        # O_NONBLOCK: a FIFO put there since the check must not block the open.
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "r", encoding="utf-8") as fh:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise self._not_regular(mode)
            return fh.read()

    def _read_document(self) -> dict[str, Any]:
        try:
            text = self._read_text()
        except FileNotFoundError:
            if self.in_config:
                msg = f"config file {self.path} is gone; cannot save OAuth tokens there"
                raise ConfigError(msg) from None
            return {}
        except OSError as exc:
            msg = f"cannot read the OAuth token store {self.path}: {exc.strerror}"
            raise ConfigError(msg) from None
        if not text.strip() and not self.in_config:
            return {}
        try:
            doc = json.loads(text)
        except ValueError:
            what = "config file" if self.in_config else "OAuth token store"
            msg = f"{what} {self.path} is not valid JSON; fix or delete it"
            raise ConfigError(msg) from None
        if not isinstance(doc, dict):
            msg = f"{self.path} must hold a JSON object"
            raise ConfigError(msg)
        return doc

    def read(self) -> StoredTokens | None:
        """The stored tokens, or None when the store holds none."""
        doc = self._read_document()
        return stored_of(doc.get(CONFIG_KEY) if self.in_config else doc)

    # -- writing -------------------------------------------------------------------------

    def write(self, stored: StoredTokens, *, meta: Mapping[str, str] | None = None) -> None:
        """Durably replace the stored tokens (call with ``lock()`` held)."""
        body = document_of(stored, meta)
        if self.in_config:
            doc = self._read_document()
            doc[CONFIG_KEY] = body
            mode = stat.S_IMODE(self.path.stat().st_mode)
            self._check_config_mode(mode)
        else:
            doc, mode = body, 0o600
        self._atomic_write(json.dumps(doc, indent=2) + "\n", mode)

    def _check_config_mode(self, mode: int) -> None:
        if mode & 0o077 and str(self.path) not in _warned:
            _warned.add(str(self.path))
            logger.warning(
                "Config file %s is open to other users (mode %o) and now holds OAuth tokens; "
                "run chmod 600 on it.",
                self.path,
                mode,
            )

    def _atomic_write(self, text: str, mode: int) -> None:
        self.check_kind()  # never replace a device, a FIFO or a directory
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        # The rename is durable only once the directory entry is on disk.
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        # Temp files left by a writer killed mid-write (we hold the lock: nobody else writes).
        for stale in directory.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                stale.unlink()


_KINDS: tuple[tuple[Callable[[int], bool], str], ...] = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


def _under_meltano(config_files: Sequence[str]) -> Path | None:
    """The Meltano project root when the tap runs under Meltano, else None."""
    root = os.environ.get("MELTANO_PROJECT_ROOT")
    if root:
        return Path(root)
    for path in config_files:
        parts = Path(os.path.abspath(path)).parts
        # Meltano hands the tap .meltano/run/<plugin>/tap.<uuid>.config.json.
        for i in range(len(parts) - 1):
            if parts[i] == ".meltano" and parts[i + 1] == "run":
                return Path(*parts[:i])
    return None


def resolve_location(
    *, oauth_settings_location: str | None, config_files: Sequence[str]
) -> TokenStore | None:
    """Pick the token store by the rules in the module docstring (None: nowhere durable)."""
    files = [p for p in config_files if p != "ENV"]
    if oauth_settings_location and is_database_url(oauth_settings_location):
        # auth.factory opens a database store (auth.pgstore); never a file named like a URL.
        msg = "a database URL as oauth_settings_location needs auth.pgstore.PgTokenStore"
        raise ConfigError(msg)
    if oauth_settings_location:
        store = TokenStore(oauth_settings_location)
        if any(os.path.realpath(p) == str(store.path) for p in files):
            # Pointed at the config file itself: keep its settings, tokens under one key.
            return TokenStore(oauth_settings_location, in_config=True)
        return store
    meltano_root = _under_meltano(files)
    if meltano_root is not None:
        path = meltano_root / MELTANO_DEFAULT
        if str(path) not in _warned:
            _warned.add(str(path))
            logger.warning(
                "oauth_settings_location is not set: OAuth tokens are kept in %s inside the "
                "Meltano project (Meltano deletes the config file it passes the tap). Set "
                "oauth_settings_location to a durable path if .meltano/ does not survive "
                "between runs.",
                path,
            )
        return TokenStore(path)
    if len(files) == 1 and os.path.isfile(files[0]):
        return TokenStore(files[0], in_config=True)
    return None
