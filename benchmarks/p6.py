"""P6 (issue 15, item 6): many small streams, read one after another or overlapped.

singer-sdk syncs streams one after another. Every entity of the default sandbox
(``python -m tests.sandbox`` with its default data: 500 records per core entity, fewer per
reference entity, one entity forbidden and one not set up) is read on P2's server model
(:class:`benchmarks.p2.ServerModel`) at 4 sessions: a backfill (no state), then an
incremental run with no changes (from the backfill's final STATE), with ``overlap_streams``
off and on (``sync.prefetch``: the next streams' first windows read on the idle sessions).
The two contenders run interleaved, in rounds with a rotating order; each figure is the
median over the rounds. Both must emit the same records and fail the same streams.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.p2 import ServerModel
from benchmarks.procs import measure, python, write_json
from benchmarks.scenarios import Log, last_state, median, request_counts, sandbox, tap_config
from tests.support import Sandbox

SESSIONS = 4
CONTENDERS = {"off": False, "on": True}
KINDS = {"backfill": "backfill (no state)", "no_change": "no changes (from the backfill's STATE)"}
_FAILED = re.compile(r"^tap-acumatica: stream (\S+) ")
_DATA = re.compile(r"^GET /entity/(?!auth/)[^/]+/[^/]+/([A-Za-z]\w*)(?:/\{id\}|/\{keys\})?$")


def data_requests(counts: dict[str, int]) -> dict[str, int]:
    """Data requests per entity (its list GETs, and GETs by id or keys) from request counts."""
    per: dict[str, int] = {}
    for key, n in counts.items():
        m = _DATA.match(key)
        if m is not None:
            per[m.group(1)] = per.get(m.group(1), 0) + n
    return dict(sorted(per.items()))


def run_once(sbx: Sandbox, cfg: str, out: str, state: str | None = None) -> dict[str, Any]:
    """One tap run: wall, extraction, CPU, records, data requests per stream, failed streams.

    The default sandbox's failing entities end the run with exit code 1 and one line each.
    """
    before = sbx.stats()
    cmd = python("-m", "tap_acumatica", "--config", cfg, *(("--state", state) if state else ()))
    m = measure(cmd, stdout=out, timeout=3600)
    after = sbx.stats()
    failed = sorted(f.group(1) for f in map(_FAILED.match, m.stderr.splitlines()) if f)
    if m.returncode != (1 if failed else 0):
        tail = "\n".join(m.stderr.splitlines()[-15:])
        msg = f"P6: the tap exited {m.returncode}:\n{tail}"
        raise RuntimeError(msg)
    counts = request_counts(before, after)
    per = data_requests(counts)
    return {
        "wall_s": m.wall,
        "extract_s": m.sync_seconds() or m.wall,
        "cpu_s": m.cpu,
        "records": m.record_count(),
        "data_requests": sum(per.values()),
        "other_requests": sum(counts.values()) - sum(per.values()),
        "per_stream": per,
        "failed": failed,
        "wasted": sum("read ahead" in x and "was not used" in x for x in m.stderr.splitlines()),
        "sessions_opened": after["sessions_opened"] - before["sessions_opened"],
        "left_open": after["active_sessions"],
    }


def _medians(key: str, kind: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"key": key, "kind": kind, "rounds": len(runs)}
    for field in ("wall_s", "extract_s", "cpu_s"):
        row[field] = median([float(r[field]) for r in runs])
    for field in ("records", "data_requests", "other_requests", "sessions_opened", "wasted"):
        row[field] = int(median([float(r[field]) for r in runs]))
    row["left_open"] = max(r["left_open"] for r in runs)
    row["per_stream"] = runs[-1]["per_stream"]
    row["failed"] = runs[-1]["failed"]
    return row


def _check(kind: str, runs: dict[str, list[dict[str, Any]]]) -> None:
    """Both contenders emitted the same records and failed the same streams, every round."""
    seen = {(r["records"], tuple(r["failed"])) for rs in runs.values() for r in rs}
    if len(seen) != 1:
        msg = f"P6 {kind}: the contenders differ in records or failed streams: {sorted(seen)}"
        raise RuntimeError(msg)


def p6(model: ServerModel, records: int | None, rounds: int, log: Log) -> dict[str, Any]:
    """Backfill then no-change run over every entity, overlap off vs on, in rounds."""
    args = [*model.args(), *(("--records", str(records)) if records else ())]
    with sandbox(*args) as sbx, tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        base = tap_config(sbx, [], max_concurrent_requests=SESSIONS)
        del base["endpoint_version"]  # the instance's default endpoint, as a user would read
        cfgs = {k: write_json({**base, "overlap_streams": v}, d, f"{k}.json")
                for k, v in CONTENDERS.items()}  # fmt: skip
        keys = list(CONTENDERS)
        runs: dict[str, dict[str, list[dict[str, Any]]]] = {k: {c: [] for c in keys} for k in KINDS}
        for r in range(rounds):
            for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
                first = str(d / f"{key}.jsonl")
                backfill = run_once(sbx, cfgs[key], first)
                state = last_state(first)
                if not state:
                    msg = f"P6: the backfill with overlap {key} emitted no STATE"
                    raise RuntimeError(msg)
                again = run_once(sbx, cfgs[key], str(d / "again.jsonl"),
                                 write_json(state, d, "state.json"))  # fmt: skip
                for kind, row in (("backfill", backfill), ("no_change", again)):
                    runs[kind][key].append(row)
                    log(f"  P6 round {r + 1}/{rounds} {kind}, overlap {key}: "
                        f"{row['wall_s']:.2f} s wall, {row['extract_s']:.2f} s extraction, "
                        f"{row['data_requests']} data requests, "
                        f"{row['records']} records")  # fmt: skip
    out: dict[str, Any] = {"model": asdict(model), "sessions": SESSIONS, "rounds": rounds}
    for kind, by_key in runs.items():
        _check(kind, by_key)
        rows = {k: _medians(k, kind, v) for k, v in by_key.items()}
        off, on = rows["off"], rows["on"]
        out[kind] = {
            "rows": list(rows.values()),
            "streams": len(off["per_stream"]),
            "wall_ratio": off["wall_s"] / on["wall_s"] if on["wall_s"] else 0.0,
            "extract_ratio": off["extract_s"] / on["extract_s"] if on["extract_s"] else 0.0,
        }
    return out


def goals(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(goal, target, measured, met): a gain in wall-clock, and not one request more."""
    p = results.get("p6")
    if not p:
        return []
    out = []
    for kind, what in (("backfill", "backfill"), ("no_change", "no-change run")):
        res = p[kind]
        rows = {r["key"]: r for r in res["rows"]}
        more = rows["on"]["data_requests"] - rows["off"]["data_requests"]
        n = res["streams"]
        out += [
            (f"P6 {what}, {n} streams at {p['sessions']} sessions: wall-clock, overlap off ÷ on",
             "> 1", f"{res['wall_ratio']:.2f}", res["wall_ratio"] > 1),
            (f"P6 {what}: data requests, overlap on - off", "0", str(more), more == 0),
        ]  # fmt: skip
    return out


def render(results: dict[str, Any]) -> list[str]:
    """The P6 section."""
    p = results.get("p6")
    if not p:
        return []
    m = p["model"]
    lines = [
        "## P6 — many small streams",
        "",
        "singer-sdk syncs the streams of a run one after another, so a run of many small "
        "streams (one request each) keeps one session busy and leaves the others idle. With "
        "`overlap_streams` (default on) the first window of the next streams (up to "
        "max_concurrent_requests - 1 of them) is read while a stream is read; records and "
        "STATE still leave stream after stream. Every entity of the default sandbox on the "
        f"P2 server model ({m['latency_ms']} ms per data request, "
        f"{m['per_record_us'] / 1000:g} ms per record, {m['cores']} cores) at "
        f"{p['sessions']} sessions: a backfill, then an incremental run with no changes from "
        "its final STATE. The forbidden and the not-set-up entity fail in both (exit 1); "
        f"rounds: {p['rounds']}.",
        "",
        "| Run | Overlap | Wall s | Extraction s | CPU s | Data requests | Other requests "
        "| Records | Sessions | Not read |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {what} | {r['key']} | {r['wall_s']:.2f} | {r['extract_s']:.2f} | "
        f"{r['cpu_s']:.2f} | {r['data_requests']} | {r['other_requests']} | "
        f"{r['records']:,} | {r['sessions_opened']} | {', '.join(r['failed']) or '—'} |"
        for kind, what in KINDS.items()
        for r in p[kind]["rows"]
    ]
    lines.append("")
    for kind, what in KINDS.items():
        res = p[kind]
        rows = {r["key"]: r for r in res["rows"]}
        per = ", ".join(f"{e} {n}" for e, n in rows["on"]["per_stream"].items())
        same = rows["on"]["per_stream"] == rows["off"]["per_stream"]
        lines += [
            f"**{what[0].upper()}{what[1:]}**: overlap off ÷ on, wall-clock "
            f"**{res['wall_ratio']:.2f}**, extraction (the streams' `sync_duration`) "
            f"**{res['extract_ratio']:.2f}**. Data "
            f"requests per stream ({res['streams']} streams), overlap on: {per}"
            + ("; the same with it off." if same else "; off: different (see the JSON)."),
            "",
        ]
    return lines
