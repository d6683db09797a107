"""A real, throw-away PostgreSQL server for the end-to-end tests.

``initdb`` refuses to run as root, and CI runs as root: when we are root the cluster is created and
started as the ``postgres`` system user (``runuser -u postgres --``) inside a temp dir it owns.
The server listens on 127.0.0.1 only, on a free port, with ``trust`` auth for loopback, and is
stopped and deleted afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import free_port

# Env var that turns "skip because PostgreSQL is missing" into a failure (set by .ci/run).
REQUIRE_ALL = os.environ.get("TAP_ACUMATICA_REQUIRE_ALL") == "1"


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL server binaries are not installed on this machine."""


def find_pg_bin() -> Path | None:
    """Directory holding initdb/pg_ctl: Debian's /usr/lib/postgresql/<ver>/bin, else PATH."""

    def version(path: str) -> int:
        name = Path(path).parent.parent.name
        return int(name) if name.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


@dataclass
class PostgresServer:
    """Connection facts of a running throw-away server."""

    host: str
    port: int
    user: str
    database: str
    password: str

    @property
    def dsn(self) -> str:
        """libpq connection string (for psycopg)."""
        return (
            f"host={self.host} port={self.port} user={self.user} "
            f"dbname={self.database} password={self.password}"
        )


def _as_owner(cmd: list[str], owner: str | None) -> list[str]:
    return ["runuser", "-u", owner, "--", *cmd] if owner else cmd


@contextlib.contextmanager
def postgres_server(*, database: str = "warehouse") -> Iterator[PostgresServer]:
    """Start PostgreSQL in a temp dir on a free loopback port; stop and delete it afterwards."""
    bindir = find_pg_bin()
    if bindir is None:
        msg = "PostgreSQL server binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        raise PostgresUnavailableError(msg)
    owner: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            msg = "running as root but there is no 'postgres' system user to run initdb as"
            raise PostgresUnavailableError(msg) from exc
        owner = "postgres"

    # Not pytest's tmp_path: that lives under a 0700 root-owned dir the postgres user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="tap-acumatica-pg-"))
    data, sock, log = root / "data", root / "sock", root / "server.log"
    sock.mkdir()
    if owner:
        entry = pwd.getpwnam(owner)
        for path in (root, sock):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    user, password = "tap", "tap-e2e-password"
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    if owner:
        os.chown(pwfile, pwd.getpwnam(owner).pw_uid, pwd.getpwnam(owner).pw_gid)
    pwfile.chmod(0o600)
    port = free_port()
    pg_ctl = str(bindir / "pg_ctl")
    started = False
    try:
        subprocess.run(
            _as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    user,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--locale=C",
                ],
                owner,
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
        subprocess.run(
            _as_owner([pg_ctl, "-D", str(data), "-l", str(log), "-o", opts, "-w", "start"], owner),
            check=True,
            capture_output=True,
            timeout=120,
        )
        started = True
        subprocess.run(
            _as_owner(
                [str(bindir / "createdb"), "-h", str(sock), "-p", str(port), "-U", user, database],
                owner,
            ),
            check=True,
            capture_output=True,
            timeout=60,
            env={**os.environ, "PGPASSWORD": password},
        )
        yield PostgresServer("127.0.0.1", port, user, database, password)
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace")[-2000:]
        if log.exists():
            detail += "\n" + log.read_text(errors="replace")[-2000:]
        msg = f"PostgreSQL failed: {exc.cmd[:4]}…: {detail}"
        raise RuntimeError(msg) from exc
    finally:
        if started:
            subprocess.run(
                _as_owner([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], owner),
                check=False,
                capture_output=True,
                timeout=120,
            )
        # Give the postmaster a moment to release files before deleting the dir.
        for _ in range(20):
            try:
                shutil.rmtree(root)
                break
            except OSError:
                time.sleep(0.1)
