"""P2 on a realistic server model (issue 15): sessions, capacity, the peer baseline, losses.

The sandbox serialises the requests of one session (its default, api.md §6 "One session runs
one request at a time"), sleeps ``--latency-ms`` per data request plus ``--per-record-us`` per
record while holding a licence core, and runs at most ``--max-concurrent`` requests at once
(the licence's processing cores, api.md §6 "Licence"). On that model every contender reads
the same big SalesOrder entity with Details: the tap at each ``max_concurrent_requests`` and
the peer pager (:mod:`benchmarks.peer_pager`), interleaved in rounds with a rotating order;
each figure is the median over the rounds. One session's own rate is measured by the raw
passthrough (sequential pages, one session); the model's capacity is ``cores`` times it.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec

from benchmarks.procs import Measured, measure, python, write_json
from benchmarks.scenarios import (
    Log,
    big_sandbox_args,
    median,
    request_counts,
    sandbox,
    split_requests,
    tap_config,
)
from tests.support import Sandbox

ENTITY = "SalesOrder"
EXPAND = {ENTITY: ["Details"]}
PEER_BOOKMARK = "2000-01-01T00:00:00.000Z"


@dataclass(frozen=True)
class ServerModel:
    """What the sandbox simulates per request and per record, and the licence's cores."""

    latency_ms: int = 250
    per_record_us: int = 2000
    cores: int = 4

    def args(self) -> list[str]:
        """Sandbox options; seats for every session a contender may open."""
        return [
            "--latency-ms", str(self.latency_ms), "--per-record-us", str(self.per_record_us),
            "--max-concurrent", str(self.cores), "--api-seats", str(2 * self.cores),
        ]  # fmt: skip

    def page_seconds(self, page_size: int) -> float:
        """Server time of one full page."""
        return self.latency_ms / 1000 + page_size * self.per_record_us / 1e6


def summary(m: Measured) -> dict[str, Any]:
    """The JSON summary line a passthrough or peer child writes last on stderr."""
    for line in reversed(m.stderr.splitlines()):
        if line.startswith('{"records"'):
            return dict(msgspec.json.decode(line))
    return {}


def sandbox_now(sbx: Sandbox) -> dt.datetime:
    """The sandbox's clock (the one its change stamps come from)."""
    return parse_utc(sbx.admin("GET", "clock")["now"])


def parse_utc(text: str) -> dt.datetime:
    """An ISO date-time ending in ``Z``."""
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def captured_query(sbx: Sandbox, config: dict[str, Any], d: Path) -> dict[str, str]:
    """``$select``, ``$expand`` and the change field of the tap's data requests.

    A tap run over the last two hours only (no records of the big entity) sends the query.
    """
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)
    cfg = write_json({**config, "start_date": since.strftime("%Y-%m-%dT%H:%M:%SZ")}, d, "q.json")
    measure(python("-m", "tap_acumatica", "--config", cfg)).check()
    queries = [q["params"] for q in sbx.stats()["queries"] if q["path"].endswith(f"/{ENTITY}")]
    params = next(q for q in reversed(queries) if "$filter" in q)
    return {
        "select": params.get("$select", ""),
        "expand": params.get("$expand", ""),
        "change_field": params["$filter"].split(" ", 1)[0],
    }


def peer_cmd(cfg: str, query: dict[str, str], page_size: int) -> list[str]:
    """The peer pager over the big entity."""
    return python(
        "-m", "benchmarks.peer_pager", "--config", cfg, "--entity", ENTITY,
        "--change-field", query["change_field"], "--bookmark", PEER_BOOKMARK,
        "--select", query["select"], "--expand", query["expand"],
        "--page-size", str(page_size),
    )  # fmt: skip


def run_one(sbx: Sandbox, key: str, cmd: list[str], stdout: str | None = None) -> dict[str, Any]:
    """One contender run: wall, extraction seconds, CPU, records, requests, sessions."""
    before = sbx.stats()
    m = measure(cmd, stdout=stdout or "/dev/null", timeout=3600).check()
    after = sbx.stats()
    data, other = split_requests(request_counts(before, after), [ENTITY])
    if key.startswith("tap"):
        records, extract = m.record_count(), m.sync_seconds() or m.wall
    else:
        info = summary(m)
        records, extract = int(info.get("records", 0)), float(info.get("seconds", m.wall))
    return {
        "key": key,
        "wall_s": m.wall,
        "extract_s": extract,
        "cpu_s": m.cpu,
        "records": records,
        "data_requests": data.get(ENTITY, 0),
        "other_requests": other,
        "sessions_opened": after["sessions_opened"] - before["sessions_opened"],
        "left_open": after["active_sessions"],
    }


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every figure over the rounds of one contender."""
    row: dict[str, Any] = {"key": runs[0]["key"], "rounds": len(runs)}
    for field in ("wall_s", "extract_s", "cpu_s", "records"):
        row[field] = median([float(r[field]) for r in runs])
    for field in ("data_requests", "other_requests", "sessions_opened"):
        row[field] = int(median([float(r[field]) for r in runs]))
    row["left_open"] = max(r["left_open"] for r in runs)
    row["records_per_s"] = row["records"] / row["extract_s"] if row["extract_s"] else 0.0
    row["cpu_share"] = row["cpu_s"] / row["wall_s"] if row["wall_s"] else 0.0
    return row


def p2(
    model: ServerModel,
    n: int,
    levels: list[int],
    rounds: int,
    page_size: int,
    probe_pages: int,
    log: Log,
) -> dict[str, Any]:
    """The tap at each level and the peer, interleaved; one session's rate; capacity."""
    with sandbox(*big_sandbox_args(ENTITY, n, *model.args())) as sbx, \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        d = Path(tmp)
        expected = len(sbx.ground_truth(ENTITY)["live"])
        base = tap_config(sbx, [ENTITY], expand=EXPAND, page_size=page_size)
        query = captured_query(sbx, base, d)
        cfg = write_json(base, d, "base.json")
        contenders = {
            f"tap@{c}": python("-m", "tap_acumatica", "--config",
                               write_json({**base, "max_concurrent_requests": c}, d, f"t{c}.json"))
            for c in levels
        }  # fmt: skip
        contenders["peer"] = peer_cmd(cfg, query, page_size)
        keys = list(contenders)
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        probe: dict[str, Any] = {}
        for r in range(rounds):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                row = run_one(sbx, key, contenders[key])
                if row["records"] != expected:
                    msg = f"P2: {key} emitted {row['records']} records, expected {expected}"
                    raise RuntimeError(msg)
                runs[key].append(row)
                log(f"  P2 round {r + 1}/{rounds} {key}: {row['extract_s']:.2f} s extraction, "
                    f"{row['data_requests']} data requests, "
                    f"{row['sessions_opened']} sessions")  # fmt: skip
            if not probe:
                probe = run_one(sbx, "one session", python(
                    "-m", "benchmarks.passthrough", "--config", cfg, "--entity", ENTITY,
                    "--select", query["select"], "--expand", query["expand"],
                    "--page-size", str(page_size), "--max-pages", str(probe_pages),
                    "--out", "/dev/null"))  # fmt: skip
                log(f"  P2 one session: {probe['records']} records in {probe['extract_s']:.2f} s")
    rows = {k: medians(v) for k, v in runs.items()}
    session_rate = probe["records"] / probe["extract_s"]
    capacity = model.cores * session_rate
    one, top = rows[f"tap@{min(levels)}"], rows[f"tap@{max(levels)}"]
    peer = rows["peer"]
    return {
        "model": asdict(model),
        "entity": ENTITY,
        "expand": EXPAND[ENTITY],
        "records": expected,
        "page_size": page_size,
        "minimum": math.ceil(expected / page_size),
        "levels": levels,
        "rounds": rounds,
        "rows": list(rows.values()),
        "probe": probe,
        "session_rate": session_rate,
        "model_session_rate": page_size / model.page_seconds(page_size),
        "capacity": capacity,
        "speedup": top["records_per_s"] / one["records_per_s"],
        "of_capacity": top["records_per_s"] / capacity,
        "vs_peer_one": one["records_per_s"] / peer["records_per_s"],
        "vs_peer_top": top["records_per_s"] / peer["records_per_s"],
        "requests_vs_peer": top["data_requests"] / max(1, peer["data_requests"]),
    }


class _Record(msgspec.Struct):
    id: str | None = None


class _Message(msgspec.Struct):
    type: str = ""
    record: _Record | None = None


def emitted_ids(path: str, singer: bool) -> set[str]:
    """Record ids in a Singer output (RECORD messages) or a JSONL file of records."""
    ids: set[str] = set()
    msg_decoder = msgspec.json.Decoder(_Message)
    rec_decoder = msgspec.json.Decoder(_Record)
    with open(path, "rb") as fh:
        for line in fh:
            if singer:
                if b'"RECORD"' not in line[:40]:
                    continue
                rec = msg_decoder.decode(line).record
            else:
                rec = rec_decoder.decode(line)
            if rec is not None and rec.id:
                ids.add(rec.id)
    return ids


def promised_until(path: str, start: dt.datetime) -> dt.datetime:
    """What a tap run promises: every record stamped before its final bookmark (and ``start``).

    The tap's sync end comes from the server's ``Date`` header (whole seconds), so it may lie
    up to a second before the sandbox clock read at the start: records stamped in between are
    left to the next run, not lost.
    """
    last = None
    with open(path, "rb") as fh:
        for line in fh:
            if b'"STATE"' in line[:40]:
                last = line
    if last is None:
        return start
    marks = json.loads(last).get("value", {}).get("bookmarks", {}).get(ENTITY, {})
    value = marks.get("replication_key_value")
    return min(start, parse_utc(value)) if isinstance(value, str) else start


def losses(
    model: ServerModel,
    n: int,
    writers: float,
    level: int,
    rounds: int,
    page_size: int,
    log: Log,
) -> dict[str, Any]:
    """Records lost by the tap and the peer while ``--writers`` change the data.

    After each run, every live record whose change stamp is before the run's start (for the
    tap: before its final bookmark, if earlier; see :func:`promised_until`) (the
    sandbox clock) must have been emitted; the tap runs with ``safety_lag_seconds`` 0 so that
    bound is the same for both (its default lag defers the newest changes to the next run).
    """
    args = big_sandbox_args(ENTITY, n, *model.args(), "--writers", str(writers))
    with sandbox(*args) as sbx, tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        base = tap_config(sbx, [ENTITY], expand=EXPAND, page_size=page_size)
        query = captured_query(sbx, base, d)
        tap = {**base, "max_concurrent_requests": level, "safety_lag_seconds": 0}
        contenders = {
            f"tap@{level}": python("-m", "tap_acumatica", "--config", write_json(tap, d, "t.json")),
            "peer": peer_cmd(write_json(base, d, "base.json"), query, page_size),
        }
        keys = list(contenders)
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in keys}
        for r in range(rounds):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                out = str(d / "out.jsonl")
                start = sandbox_now(sbx)
                started = time.monotonic()
                row = run_one(sbx, key, contenders[key], stdout=out)
                got = emitted_ids(out, singer=key.startswith("tap"))
                truth = sbx.ground_truth(ENTITY)["live"]
                until = promised_until(out, start) if key.startswith("tap") else start
                due = {t["id"] for t in truth if parse_utc(t["changed"]) < until}
                row.update(due=len(due), lost=len(due - got), emitted=len(got),
                           run_s=time.monotonic() - started)  # fmt: skip
                runs[key].append(row)
                log(f"  P2 writers {writers:g}/s round {r + 1}/{rounds} {key}: "
                    f"{row['lost']} of {row['due']} lost")  # fmt: skip
    return {
        "writers": writers,
        "records": n,
        "level": level,
        "rounds": rounds,
        "rows": [
            {
                "key": key,
                "lost": [r["lost"] for r in rs],
                "due": [r["due"] for r in rs],
                "extract_s": median([r["extract_s"] for r in rs]),
                "data_requests": int(median([float(r["data_requests"]) for r in rs])),
            }
            for key, rs in runs.items()
        ],
    }
