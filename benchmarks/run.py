"""``python -m benchmarks [--quick]``: run P1 to P4 and write the report.

The full run writes docs/performance.md (and the raw figures to
benchmarks/results/performance.json); ``--quick`` uses small sizes, writes only under
benchmarks/results/ unless ``--out`` says otherwise, and finishes in under a minute. The last
line printed is always the P1 ratio (tap ÷ passthrough, records per CPU-second; the lower of
the two entities).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import report, scenarios
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
    p2_levels: tuple[int, ...] = (1, 2, 4)
    #: P2 again at this page size (latency-bound: ten times the requests), 0 to skip.
    p2_small_page: int = 100
    p2_small_rounds: int = 1


FULL = Sizes(flat=100_000, nested=20_000, rounds=3, p2_records=20_000, p2_rounds=2,
             p3_records=2000, p4=(10_000, 100_000, 1_000_000))  # fmt: skip
QUICK = Sizes(flat=6000, nested=1500, rounds=1, p2_records=1500, p2_rounds=1,
              p3_records=200, p4=(5000, 15_000), p2_levels=(1, 4),
              p2_small_page=0)  # fmt: skip
TINY = Sizes(flat=1200, nested=300, rounds=1, p2_records=300, p2_rounds=1,
             p3_records=100, p4=(1500,), nested_p1=False, p2_levels=(1, 2),
             p2_small_page=0)  # fmt: skip


def log(message: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def run(sizes: Sizes, parts: set[str], latency_ms: int) -> dict[str, Any]:
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
        log(f"P2: {sizes.p2_records:,} SalesOrders, latency {latency_ms} ms")
        results["p2"] = scenarios.p2(
            sizes.p2_records, latency_ms, list(sizes.p2_levels), sizes.p2_rounds, log
        )
        if sizes.p2_small_page:
            results["p2_small"] = scenarios.p2(
                sizes.p2_records,
                latency_ms,
                list(sizes.p2_levels),
                sizes.p2_small_rounds,
                log,
                page_size=sizes.p2_small_page,
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
    results["elapsed_s"] = time.monotonic() - started
    results["load_after"] = report.load_average()
    for res in results.get("p1", []):
        res.pop("tap_requests", None)
    return results


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The console summary; the last line is the P1 ratio."""
    lines = []
    for goal, target, measured, ok in report.goals(results):
        lines.append(f"{'ok  ' if ok else 'MISS'} {goal}: {measured} (goal {target})")
    p1 = results.get("p1", [])
    if p1:
        per = ", ".join(f"{r['entity']} {r['ratio_passthrough']:.2f}" for r in p1)
        lines.append(f"P1 tap ÷ passthrough, records per CPU-second: {per}")
        lines.append(f"P1 ratio: {min(r['ratio_passthrough'] for r in p1):.2f}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke test
    parser.add_argument("--only", default="p1,p2,p3,p4", help="comma list of p1..p4")
    parser.add_argument("--latency-ms", type=int, default=250, help="P2 sandbox latency")
    parser.add_argument("--out", help="markdown report path (full run: docs/performance.md)")
    parser.add_argument("--notes", help="markdown file appended to the report (analysis)")
    parser.add_argument(
        "--include", help="results JSON of an earlier run: parts not run now are taken from it"
    )
    args = parser.parse_args(argv)
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    parts = {p.strip().lower() for p in args.only.split(",") if p.strip()}
    results = run(sizes, parts, args.latency_ms)
    if args.include:
        earlier = json.loads(Path(args.include).read_text(encoding="utf-8"))
        for part in ("p1", "p2", "p2_small", "p3", "p4"):
            if part not in results and part in earlier:
                results[part] = earlier[part]
                results.setdefault("included", []).append(
                    f"{part} from {earlier['machine']['date']}"
                )
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = "tiny" if args.tiny else "quick" if args.quick else "full"
    if parts != {"p1", "p2", "p3", "p4"}:
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
