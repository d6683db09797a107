"""The throw-away PostgreSQL server used by the end-to-end tests really starts and takes SQL."""

from __future__ import annotations

import socket

import pytest

from tests.e2e.pg import REQUIRE_ALL, PostgresUnavailableError, postgres_server

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.e2e


def test_postgres_fixture_starts_accepts_sql_and_stops() -> None:
    try:
        ctx = postgres_server(database="probe")
        server = ctx.__enter__()
    except PostgresUnavailableError as exc:
        if REQUIRE_ALL:
            raise
        pytest.skip(str(exc))
    try:
        assert server.host == "127.0.0.1"
        with psycopg.connect(server.dsn, connect_timeout=10) as conn:
            conn.execute("CREATE TABLE t (id int primary key, doc jsonb)")
            conn.execute("INSERT INTO t VALUES (1, %s::jsonb)", ['{"a": [1, 2]}'])
            row = conn.execute("SELECT doc->'a'->>1, current_database() FROM t").fetchone()
        assert row == ("2", "probe")
        # Password auth is really enforced (the tap-postgres target is configured with one).
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(
                server.dsn.replace(server.password, "wrong"), connect_timeout=10
            ).close()
    finally:
        ctx.__exit__(None, None, None)
    # Stopped: nothing listens on the port any more.
    with socket.socket() as s:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", server.port)) != 0
