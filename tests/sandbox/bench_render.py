"""Page rendering vs client decoding: ``uv run python -m tests.sandbox.bench_render [N]``.

Not a test (no wall-clock assertions in the suite); prints timings for issue 2 §9.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time

import msgspec

from tests.sandbox.data import Dataset


def main() -> None:
    big = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    t0 = time.perf_counter()
    ds = Dataset(
        seed=1,
        records=500,
        tz="America/New_York",
        now=lambda: dt.datetime.now(dt.timezone.utc),
        big_entity="SalesOrder",
        big_records=big,
    )
    print(f"dataset with {big:,} SalesOrders built in {time.perf_counter() - t0:.3f} s")
    ds.list_records("24.200.001", "SalesOrder", {"$top": "1000", "$expand": "Details"})  # warm-up
    for k in range(1, 6):
        params = {"$top": "1000", "$skip": str(k * 7919), "$expand": "Details"}
        t0 = time.perf_counter()
        body, n = ds.list_records("24.200.001", "SalesOrder", params)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        ds.list_records("24.200.001", "SalesOrder", params)
        warm = time.perf_counter() - t0
        t0 = time.perf_counter()
        json.loads(body)
        loads = time.perf_counter() - t0
        t0 = time.perf_counter()
        msgspec.json.decode(body)
        mdec = time.perf_counter() - t0
        print(
            f"page {k}: {n} records, {len(body) / 1e6:.2f} MB: render cold {cold * 1e3:.1f} ms, "
            f"warm {warm * 1e3:.1f} ms | client json.loads {loads * 1e3:.1f} ms, "
            f"msgspec {mdec * 1e3:.1f} ms"
        )
    flt = (
        "LastModified gt datetimeoffset'2023-01-01T00:00:00Z' and "
        "LastModified le datetimeoffset'2024-06-30T00:00:00-04:00'"
    )
    t0 = time.perf_counter()
    _, n = ds.list_records(
        "24.200.001", "SalesOrder", {"$filter": flt, "$top": "1000", "$skip": "100000"}
    )
    print(
        f"change-field filter over {big:,} records, page of {n}: "
        f"{(time.perf_counter() - t0) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
