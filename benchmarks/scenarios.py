"""P1 CPU, P3 requests and P4 memory (issue 6), and the helpers P2 shares (:mod:`benchmarks.p2`).

Each scenario starts its own sandbox (``python -m tests.sandbox``) and runs every contender as
a child process (:mod:`benchmarks.procs`). Contenders of one comparison run interleaved, in
rounds with a rotating order, and each figure is the median over the rounds, so the machine's
background load hits all of them alike and the *ratios* stay meaningful on a busy machine.
"""

from __future__ import annotations

import contextlib
import json
import math
import statistics
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.procs import Measured, child_env, measure, python, write_json
from tests.support import Sandbox

PAGE_SIZE = 1000
FAR_FUTURE = "2100-01-01T00:00:00Z"
Log = Callable[[str], None]


@contextlib.contextmanager
def sandbox(*args: str) -> Iterator[Sandbox]:
    """A sandbox process for one scenario (bytecode-cached like the contenders)."""
    sbx = Sandbox(*args, env=child_env())
    try:
        yield sbx
    finally:
        sbx.stop()


def big_sandbox_args(entity: str, n: int, *extra: str) -> list[str]:
    """One big entity of ``n`` records; a tie burst of 10% (at most 3,000) within it."""
    burst = max(1, min(3000, n // 10))
    return [
        "--seed", "1", "--records", "200", "--big-entity", entity, "--big-records", str(n),
        "--burst-size", str(burst), *extra,
    ]  # fmt: skip


def tap_config(sbx: Sandbox, entities: list[str], **extra: Any) -> dict[str, Any]:
    """tap-acumatica settings for ``sbx``: cookie sign-in, defaults otherwise."""
    creds = sbx.credentials()
    config: dict[str, Any] = {
        "base_url": sbx.url,
        "auth_method": "cookie",
        "username": creds["username"],
        "password": creds["password"],
        "tenant": creds["tenant"],
        "entities": entities,
        "progress_interval_seconds": 3600,
        # The reference clients (passthrough, SDK defaults) speak contract 4: the tap reads the
        # same endpoint, so every contender is measured on the same pages.
        "endpoint_version": "24.200.001",
    }
    config.update(extra)
    return config


def request_counts(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    """Requests per ``METHOD path`` between two ``/_sandbox/stats`` snapshots."""
    counts: dict[str, int] = {}
    for sign, snap in ((-1, before), (1, after)):
        for row in snap.get("requests", []):
            key = f"{row['method']} {row['path']}"
            counts[key] = counts.get(key, 0) + sign * int(row["count"])
    return {k: v for k, v in counts.items() if v}


def split_requests(counts: dict[str, int], entities: list[str]) -> tuple[dict[str, int], int]:
    """(data requests per entity list path, every other request: sign-in, discovery, …)."""
    data: dict[str, int] = {}
    other = 0
    for key, n in counts.items():
        path = key.split(" ", 1)[1]
        entity = path.rsplit("/", 1)[-1]
        if key.startswith("GET ") and "/entity/" in path and entity in entities:
            data[entity] = data.get(entity, 0) + n
        else:
            other += n
    return data, other


def run_counted(sbx: Sandbox, cmd: list[str], **kwargs: Any) -> Measured:
    """Run ``cmd`` and attach the sandbox request counts of that run."""
    before = sbx.stats()
    result = measure(cmd, **kwargs).check()
    result.extra["requests"] = request_counts(before, sbx.stats())
    return result


def last_state(path: str) -> dict[str, Any] | None:
    """The last STATE value in a Singer output file."""
    state = None
    with open(path, "rb") as fh:
        for line in fh:
            if b'"STATE"' in line:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if msg.get("type") == "STATE":
                    state = msg["value"]
    return state


def median(values: list[float]) -> float:
    """Median (0 for none)."""
    return statistics.median(values) if values else 0.0


# -- P1 ---------------------------------------------------------------------------------------


@dataclass
class Contender:
    """One client of the P1 comparison: a full run and a sign-in-only run (fixed cost)."""

    key: str
    label: str
    full: list[str]
    zero: list[str]
    fulls: list[Measured] = field(default_factory=list)
    zeros: list[Measured] = field(default_factory=list)

    def summary(self, n: int) -> dict[str, Any]:
        """Medians: wall, CPU, fixed CPU, marginal CPU per 100k, records per CPU-second."""
        cpu = median([m.cpu for m in self.fulls])
        fixed = median([m.cpu for m in self.zeros])
        wall = median([m.wall for m in self.fulls])
        marginal = max(cpu - fixed, 1e-9)
        data = [split_requests(m.extra.get("requests", {}), [])[1] for m in self.fulls]
        return {
            "key": self.key,
            "label": self.label,
            "records": n,
            "wall_s": wall,
            "records_per_s_wall": n / wall if wall else 0.0,
            "cpu_s": cpu,
            "fixed_cpu_s": fixed,
            "cpu_s_per_100k": marginal / n * 100_000,
            "records_per_cpu_s": n / marginal,
            "maxrss_mb": median([m.maxrss_mb for m in self.fulls]),
            "requests": int(median([float(d) for d in data])) if data else 0,
            "rounds": len(self.fulls),
        }


def p1(entity: str, n: int, expand: list[str], rounds: int, log: Log) -> dict[str, Any]:
    """tap-acumatica vs the raw passthrough vs a default singer-sdk tap, CPU per record."""
    with sandbox(*big_sandbox_args(entity, n)) as sbx, tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        expected = len(sbx.ground_truth(entity)["live"])
        extra = {"expand": {entity: expand}} if expand else {}
        config = tap_config(sbx, [entity], **extra)
        cfg = write_json(config, d, "tap.json")
        cfg0 = write_json({**config, "start_date": FAR_FUTURE}, d, "tap0.json")
        measure(python("-m", "tap_acumatica", "--config", cfg, "--discover"),
                stdout=str(d / "catalog.json")).check()  # fmt: skip
        catalog = json.loads((d / "catalog.json").read_text(encoding="utf-8"))
        schema = next(s["schema"] for s in catalog["streams"] if s["tap_stream_id"] == entity)
        schema_file = write_json(schema, d, "schema.json")
        # Warm-up: bytecode cache, the sandbox's render cache, and the query the tap sends.
        run_counted(sbx, python("-m", "tap_acumatica", "--config", cfg))
        query = next(
            q["params"] for q in sbx.stats()["queries"] if q["path"].endswith(f"/{entity}")
        )
        select, expand_q = query.get("$select", ""), query.get("$expand", "")
        pt = python("-m", "benchmarks.passthrough", "--config", cfg, "--entity", entity,
                    "--select", select, "--expand", expand_q, "--out", "/dev/null")  # fmt: skip
        ref = {**config, "entity": entity, "schema_file": schema_file, "select": select,
               "expand": expand_q, "page_size": PAGE_SIZE}  # fmt: skip
        ref_cfg = write_json(ref, d, "ref.json")
        ref0_cfg = write_json({**ref, "max_pages": 0}, d, "ref0.json")
        contenders = [
            Contender(
                "tap",
                "tap-acumatica",
                python("-m", "tap_acumatica", "--config", cfg),
                python("-m", "tap_acumatica", "--config", cfg0),
            ),
            Contender("passthrough", "raw passthrough", pt, [*pt, "--max-pages", "0"]),
            Contender(
                "sdk",
                "singer-sdk defaults",
                python("-m", "benchmarks.sdktap", "--config", ref_cfg),
                python("-m", "benchmarks.sdktap", "--config", ref0_cfg),
            ),
        ]
        measure(contenders[2].zero).check()  # warm the reference tap's imports too
        for r in range(rounds):
            order = contenders[r % 3 :] + contenders[: r % 3]
            for c in order:
                c.zeros.append(measure(c.zero).check())
                full = run_counted(sbx, c.full)
                got = full.record_count()
                if got != expected:
                    msg = f"P1 {entity}: {c.label} emitted {got} records, expected {expected}"
                    raise RuntimeError(msg)
                c.fulls.append(full)
                log(f"  P1 {entity} round {r + 1}/{rounds} {c.label}: {full.cpu:.2f} CPU-s, "
                    f"{full.wall:.2f} s, {full.extra['requests']}")  # fmt: skip
        rows = [c.summary(expected) for c in contenders]
    by = {row["key"]: row for row in rows}
    tap, pth, sdk = by["tap"], by["passthrough"], by["sdk"]
    return {
        "entity": entity,
        "expand": expand,
        "records": expected,
        "rows": rows,
        "ratio_passthrough": tap["records_per_cpu_s"] / pth["records_per_cpu_s"],
        "ratio_sdk": tap["records_per_cpu_s"] / sdk["records_per_cpu_s"],
        "ratio_passthrough_wall": tap["records_per_s_wall"] / pth["records_per_s_wall"],
        "ratio_sdk_wall": tap["records_per_s_wall"] / sdk["records_per_s_wall"],
        "tap_requests": [c.extra["requests"] for c in contenders[0].fulls],
    }


# -- P3 ---------------------------------------------------------------------------------------


def p3_backfill(p1_results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Requests of the P1 tap runs vs ``ceil(N / page_size)``."""
    rows = []
    for res in p1_results:
        entity = res["entity"]
        data_counts, fixed_counts = [], []
        for counts in res["tap_requests"]:
            data, other = split_requests(counts, [entity])
            data_counts.append(data.get(entity, 0))
            fixed_counts.append(other)
        minimum = math.ceil(res["records"] / PAGE_SIZE)
        data_med = int(median([float(x) for x in data_counts]))
        rows.append({
            "entity": entity + (" + " + ", ".join(res["expand"]) if res["expand"] else ""),
            "records": res["records"],
            "minimum": minimum,
            "data_requests": data_med,
            "fixed_requests": int(median([float(x) for x in fixed_counts])),
            "ratio": data_med / minimum if minimum else 0.0,
        })  # fmt: skip
    return rows


def p3_no_change(records: int, log: Log) -> dict[str, Any]:
    """A second (incremental) run with no changes: requests per stream."""
    entities = ["Customer", "SalesOrder", "StockItem", "Vendor", "Account"]
    with sandbox("--seed", "1", "--records", str(records), "--burst-size", "300") as sbx, \
            tempfile.TemporaryDirectory() as tmp:  # fmt: skip
        d = Path(tmp)
        cfg = write_json(tap_config(sbx, entities), d, "tap.json")
        first = run_counted(sbx, python("-m", "tap_acumatica", "--config", cfg),
                            stdout=str(d / "out1.jsonl"))  # fmt: skip
        state = last_state(str(d / "out1.jsonl"))
        if not state:
            msg = "P3: the first run emitted no STATE"
            raise RuntimeError(msg)
        state_path = write_json(state, d, "state.json")
        second = run_counted(
            sbx,
            python("-m", "tap_acumatica", "--config", cfg, "--state", state_path),
            stdout=str(d / "out2.jsonl"),
        )
    data1, fixed1 = split_requests(first.extra["requests"], entities)
    data2, fixed2 = split_requests(second.extra["requests"], entities)
    log(f"  P3 no-change run: {data2} data requests, {fixed2} others, "
        f"{second.record_count()} records")  # fmt: skip
    return {
        "streams": len(entities),
        "first_data": data1,
        "first_fixed": fixed1,
        "second_data": {e: data2.get(e, 0) for e in entities},
        "second_fixed": fixed2,
        "second_records": second.record_count(),
        "max_per_stream": max(data2.get(e, 0) for e in entities),
    }


# -- P4 ---------------------------------------------------------------------------------------


def p4(sizes: list[int], log: Log, entity: str = "Customer", sessions: int = 4) -> dict[str, Any]:
    """Peak RSS of a tap run over one stream of N records, windows fetched by 4 sessions."""
    rows = []
    for n in sizes:
        args = big_sandbox_args(entity, n, "--api-seats", str(sessions))
        with sandbox(*args) as sbx, tempfile.TemporaryDirectory() as tmp:
            config = tap_config(sbx, [entity], max_concurrent_requests=sessions)
            cfg = write_json(config, Path(tmp), "tap.json")
            m = run_counted(sbx, python("-m", "tap_acumatica", "--config", cfg), timeout=3600)
            got = m.record_count()
            if got < n:
                msg = f"P4: {got} records of {n}"
                raise RuntimeError(msg)
            rows.append({
                "records": got,
                "maxrss_mb": m.maxrss_mb,
                "wall_s": m.wall,
                "cpu_s": m.cpu,
                "records_per_s": got / m.wall,
            })  # fmt: skip
            log(f"  P4 {n} records: peak RSS {m.maxrss_mb:.0f} MB, {m.wall:.1f} s")
    return {"entity": entity, "sessions": sessions, "rows": rows}
