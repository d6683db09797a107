"""PostgreSQL end to end: the throw-away server takes SQL; a batch-mode run loads into it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from tests._batch import batch_config
from tests.e2e.meltano_support import (
    INCREMENTAL,
    STREAMS,
    Meltano,
    bookmark,
    pg_env,
    truth_of,
)
from tests.e2e.pg import REQUIRE_ALL, PostgresServer, PostgresUnavailableError, postgres_server
from tests.support import Sandbox

psycopg = pytest.importorskip("psycopg")
sql = pytest.importorskip("psycopg.sql")

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]


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


def test_meltano_run_in_batch_mode_loads_every_record_into_postgres(
    meltano: Meltano,
    sandbox_env: tuple[Sandbox, dict[str, str]],
    pg: PostgresServer,
    tmp_path: Path,
) -> None:
    """``batch_config`` (jsonl + gzip files): target-postgres loads the BATCH files' records.

    The saved state then holds every incremental stream's bookmark: Meltano saves a STATE
    once the target has loaded the data before it.
    """
    sbx, env = sandbox_env
    files = tmp_path / "files"
    config = json.dumps(batch_config(files, 25))
    run_env = {**env, **pg_env(pg), "TAP_ACUMATICA_BATCH_CONFIG": config}
    meltano("run", "tap-acumatica", "target-postgres", extra_env=run_env)
    assert len(list(files.glob("batch-*.json.gz"))) >= len(STREAMS), "the tap wrote files"
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        tables = {
            name.lower(): name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'acumatica'"
            ).fetchall()
        }
        for stream in STREAMS:
            query = sql.SQL("SELECT id FROM acumatica.{}").format(
                sql.Identifier(tables[stream.lower()])
            )
            ids = [rid for (rid,) in conn.execute(query).fetchall()]
            truth = truth_of(sbx, stream)
            assert len(ids) == len(set(ids)) == len(truth), stream
            if stream in INCREMENTAL:  # Subaccount's ids hold within one session only
                assert set(ids) == set(truth), stream
    state = meltano.state("demo:tap-acumatica-to-target-postgres", env)
    for stream in INCREMENTAL:
        newest = max(v for v in truth_of(sbx, stream).values() if v is not None)
        assert bookmark(state, stream) > newest, stream
