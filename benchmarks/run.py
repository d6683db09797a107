"""``python -m benchmarks [--quick]``: run P1 to P4 and P6 and write the report.

The full run writes docs/performance.md (and the raw figures to
benchmarks/results/performance-full.json); ``--quick`` uses small sizes, writes only under
benchmarks/results/ unless ``--out`` says otherwise, and takes about 90 s. The last line
printed is the P2 session speed-up on the server model (extraction records/s at the highest
max_concurrent_requests ÷ at 1), or the P1 ratio when P2 was not run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import p2, p6, report, scenarios
from benchmarks.procs import REPO, RESULTS


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is."""

    flat: int
    nested: int
    rounds: int
    p2_records: int
    p2_rounds: int
    p3_records: int
    p4: tuple[int, ...]
    nested_p1: bool = True  # also run P1 on SalesOrder with Details
    p2_levels: tuple[int, ...] = (1, 4)
    p2_page: int = 1000
    p2_probe_pages: int = 5  # one session's rate: this many sequential full pages
    p2_writers_rounds: int = 1
    p6_records: int | None = None  # records per core entity; None: the sandbox's default
    p6_rounds: int = 1


FULL = Sizes(flat=100_000, nested=20_000, rounds=3, p2_records=20_000, p2_rounds=2,
             p3_records=2000, p4=(10_000, 100_000, 1_000_000), p2_writers_rounds=2,
             p6_rounds=3)  # fmt: skip
QUICK = Sizes(flat=6000, nested=1500, rounds=1, p2_records=3000, p2_rounds=1,
              p3_records=200, p4=(5000, 15_000), p2_page=250, p2_probe_pages=4)  # fmt: skip
TINY = Sizes(flat=1200, nested=300, rounds=1, p2_records=300, p2_rounds=1,
             p3_records=100, p4=(1500,), nested_p1=False, p2_page=100,
             p2_probe_pages=2, p6_records=40)  # fmt: skip


#: Every part, in order (``--only``'s default).
PARTS = ("p1", "p2", "p3", "p4", "p6")


def log(message: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run(sizes: Sizes, parts: set[str], model: p2.ServerModel, writers: float) -> dict[str, Any]:
    """Every selected scenario; the results as one JSON-able dict."""
    started = time.monotonic()
    results: dict[str, Any] = {"machine": report.machine(), "sizes": sizes.__dict__}
    if "p1" in parts or "p3" in parts:
        log(f"P1: Customer ({sizes.flat:,}) and SalesOrder with Details ({sizes.nested:,})")
        results["p1"] = [scenarios.p1("Customer", sizes.flat, [], sizes.rounds, log)]
        if sizes.nested_p1:
            results["p1"].append(
                scenarios.p1("SalesOrder", sizes.nested, ["Details"], sizes.rounds, log)
            )
    if "p2" in parts:
        log(f"P2: {sizes.p2_records:,} SalesOrders on the server model {model}")
        results["p2"] = p2.p2(
            model,
            sizes.p2_records,
            list(sizes.p2_levels),
            sizes.p2_rounds,
            sizes.p2_page,
            sizes.p2_probe_pages,
            log,
        )
        if writers > 0:
            results["p2_writers"] = p2.losses(
                model,
                sizes.p2_records,
                writers,
                max(sizes.p2_levels),
                sizes.p2_writers_rounds,
                sizes.p2_page,
                log,
            )
    if "p3" in parts:
        log("P3: requests")
        results["p3"] = {
            "backfill": scenarios.p3_backfill(results["p1"]),
            "no_change": scenarios.p3_no_change(sizes.p3_records, log),
        }
    if "p4" in parts:
        log(f"P4: peak RSS at {', '.join(f'{n:,}' for n in sizes.p4)} records")
        results["p4"] = scenarios.p4(list(sizes.p4), log)
    if "p6" in parts:
        log(f"P6: every entity of the default sandbox, overlap_streams off vs on, model {model}")
        results["p6"] = p6.p6(model, sizes.p6_records, sizes.p6_rounds, log)
    results["elapsed_s"] = time.monotonic() - started
    results["load_after"] = report.load_average()
    for res in results.get("p1", []):
        res.pop("tap_requests", None)
    return results


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The console summary; the last line is the P2 speed-up (or the P1 ratio without P2)."""
    lines = []
    for goal, target, measured, ok in report.goals(results):
        lines.append(f"{'ok  ' if ok else 'MISS'} {goal}: {measured} (goal {target})")
    p1 = results.get("p1", [])
    if p1:
        per = ", ".join(f"{r['entity']} {r['ratio_passthrough']:.2f}" for r in p1)
        lines.append(f"P1 tap ÷ passthrough, records per CPU-second: {per}")
        lines.append(f"P1 ratio: {min(r['ratio_passthrough'] for r in p1):.2f}")
    sp = results.get("p2")
    if sp and "speedup" in sp:
        lines.append(
            f"P2 session speed-up ({max(sp['levels'])} sessions ÷ 1, extraction records/s): "
            f"{sp['speedup']:.2f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, about 90 s")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test
    parser.add_argument("--only", default=",".join(PARTS), help="comma list of p1..p4, p6")
    model = p2.ServerModel()
    parser.add_argument(
        "--latency-ms", type=int, default=model.latency_ms, help="P2 model: ms per data request"
    )
    parser.add_argument(
        "--per-record-us", type=int, default=model.per_record_us, help="P2 model: µs per record"
    )
    parser.add_argument("--writers", type=float, default=20.0, help="P2 losses: writes/s, 0 off")
    parser.add_argument("--out", help="markdown report path (full run: docs/performance.md)")
    parser.add_argument("--notes", help="markdown file appended to the report (analysis)")
    parser.add_argument(
        "--include", help="results JSON of an earlier run: parts not run now are taken from it"
    )
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    parts = {p.strip().lower() for p in args.only.split(",") if p.strip()}
    model = p2.ServerModel(latency_ms=args.latency_ms, per_record_us=args.per_record_us)
    results = run(sizes, parts, model, args.writers)
    if args.include:
        earlier = json.loads(Path(args.include).read_text(encoding="utf-8"))
        for part in ("p1", "p2", "p2_writers", "p3", "p4", "p6"):
            if part not in results and part in earlier:
                results[part] = earlier[part]
                results.setdefault("included", []).append(
                    f"{part} from {earlier['machine']['date']}"
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "tiny" if args.tiny else "quick" if args.quick else "full"
    if parts != set(PARTS):
        name += "-" + "-".join(sorted(parts))
    (RESULTS / f"performance-{name}.json").write_text(json.dumps(results, indent=2))
    if args.out:
        out = Path(args.out)
    elif args.quick or args.tiny:
        out = RESULTS / f"performance-{name}.md"
    else:
        out = REPO / "docs" / "performance.md"
    notes = Path(args.notes).read_text(encoding="utf-8") if args.notes else ""
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.render(results, command=command, notes=notes), encoding="utf-8")
    log(f"report: {out}")
    for line in summary_lines(results):
        print(line)
    return 0
