"""The request timeline of one backfill on the server model: the profile behind P2 and P3.

``uv run python -m benchmarks.timeline [N] [PAGE] [SESSIONS] [ENTITY]`` starts the sandbox
with the realistic server model (:class:`benchmarks.p2.ServerModel`; ``--no-model`` for the
plain sandbox), runs the tap in this process with ``SESSIONS`` workers and prints one line per
data request: when it started and ended (seconds from the sync's start), the worker, ``$skip``,
the records it returned and the window's end. Idle workers, serial rounds, speculative pages
past a window's end and a split's continuation pages are visible at a glance; the last lines
count requests against ``ceil(N / page)``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import re
import resource
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from benchmarks.p2 import EXPAND, ServerModel
from benchmarks.scenarios import big_sandbox_args, sandbox, tap_config
from tap_acumatica.contract import stream as contract_stream
from tap_acumatica.tap import TapAcumatica

Row = tuple[float, float, str, Any, int, str]


@contextlib.contextmanager
def recorded(log: list[Row], started: list[float]) -> Iterator[None]:
    """Record every list GET of the contract dialect while the block runs."""
    original = contract_stream.ContractStream._records

    def records(self: Any, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        begin = time.monotonic()
        rows = original(self, params)
        where = str(params.get("$filter", ""))
        ends = re.findall(r"lt (?:datetimeoffset')?([0-9T:.\-+Z]+)", where)
        log.append((
            begin - started[0], time.monotonic() - started[0],
            threading.current_thread().name.rsplit("-", 1)[-1], params.get("$skip"),
            len(rows), ends[-1][:19] if ends else "(probe sample)",
        ))  # fmt: skip
        return rows

    contract_stream.ContractStream._records = records  # type: ignore[method-assign]
    try:
        yield
    finally:
        contract_stream.ContractStream._records = original  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> int:
    """Run one backfill and print its request timeline."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timeline", description=__doc__)
    parser.add_argument("records", type=int, nargs="?", default=20_000)
    parser.add_argument("page", type=int, nargs="?", default=1000)
    parser.add_argument("sessions", type=int, nargs="?", default=4)
    parser.add_argument("entity", nargs="?", default="SalesOrder")
    parser.add_argument("--no-model", action="store_true", help="the plain sandbox, no latency")
    args = parser.parse_args(argv)
    model = ServerModel()
    extra = ["--api-seats", "8"] if args.no_model else model.args()
    log: list[Row] = []
    started = [0.0]
    with sandbox(*big_sandbox_args(args.entity, args.records), *extra) as sbx:
        expand = {"expand": EXPAND} if args.entity == "SalesOrder" else {}
        config = tap_config(
            sbx, [args.entity], max_concurrent_requests=args.sessions, page_size=args.page,
            **expand,
        )  # fmt: skip
        discovery = TapAcumatica(config=config)
        catalog = discovery.catalog_dict
        discovery.connection.close()
        tap = TapAcumatica(config=config, catalog=catalog)

        class Sink(io.StringIO):
            buffer = io.BytesIO()  # the SDK writes bytes to stdout.buffer: thrown away

        with recorded(log, started), contextlib.redirect_stdout(Sink()):
            started[0] = time.monotonic()
            tap.sync_all()
        total = time.monotonic() - started[0]
        tap.connection.close()  # sign out while the sandbox still runs
    print(f"{'start':>6} {'end':>6} worker {'$skip':>6} {'rows':>5}  window ends")
    for begin, end, worker, skip, rows, until in sorted(log):
        print(f"{begin:6.2f} {end:6.2f} {worker:>6} {skip or 0:>6} {rows:>5}  {until}")
    data = [row for row in log if row[5] != "(probe sample)"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{len(log)} requests ({len(log) - len(data)} probe sample), {total:.1f} s; "
          f"ceil(N / page) = {math.ceil(args.records / args.page)}; "
          f"peak RSS of this process {peak} MB")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
