"""Page rendering vs client work: ``uv run python -m tests.sandbox.bench_render [N] [PAGES]``.

Not a test (the suite makes no wall-clock assertions); prints timings for issue 2 §9. Times are
CPU time of this thread (``time.thread_time``), so a busy machine disturbs them less than wall
time; each figure is the median over PAGES pages (default 9) at different ``$skip`` offsets.

"Client" is what the tap does with a page: msgspec decode (decimals as ``Decimal``), unwrap every
``{"value": x}``, drop ``rowNumber``/``_links`` and write one Singer RECORD line per record.
"""

from __future__ import annotations

import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from tests.sandbox.data import Dataset

V = "24.200.001"
_DECODER = msgspec.json.Decoder(float_hook=Decimal)
_ENCODER = msgspec.json.Encoder()
_DROP = {"rowNumber", "_links"}


def unwrap(value: Any) -> Any:
    """Acumatica's wrapped JSON → plain values (the tap's records.transform without a schema)."""
    if type(value) is dict:
        if "value" in value and len(value) <= 2:  # {"value": x} or a custom {"type", "value"}
            return value["value"]
        if not value:
            return None
        return {k: unwrap(v) for k, v in value.items() if k not in _DROP}
    if type(value) is list:
        return [unwrap(v) for v in value]
    return value


def client(body: bytes) -> int:
    """Decode a page and write it out as Singer RECORD lines; returns the bytes written."""
    out = 0
    for rec in _DECODER.decode(body):
        msg = {"type": "RECORD", "stream": "SalesOrder", "record": unwrap(rec)}
        out += len(_ENCODER.encode(msg)) + 1
    return out


def cpu_ms(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.thread_time()
    got = fn()
    return (time.thread_time() - t0) * 1e3, got


def main() -> None:
    big = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    pages = int(sys.argv[2]) if len(sys.argv) > 2 else 9
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
    ds.list_records(V, "SalesOrder", {"$top": "1000", "$expand": "Details"})  # warm-up
    for label, extra in (("with $expand=Details", {"$expand": "Details"}), ("header only", {})):
        cold, warm, dec, proc = [], [], [], []
        size = 0
        for k in range(1, pages + 1):
            params = {"$top": "1000", "$skip": str(k * 7919 % max(1, big - 1000)), **extra}
            ms, (body, _n) = cpu_ms(lambda p=params: ds.list_records(V, "SalesOrder", p))
            cold.append(ms)
            warm.append(cpu_ms(lambda p=params: ds.list_records(V, "SalesOrder", p))[0])
            dec.append(cpu_ms(lambda b=body: _DECODER.decode(b))[0])
            proc.append(cpu_ms(lambda b=body: client(b))[0])
            size = len(body)
        c, w, d, p = (statistics.median(x) for x in (cold, warm, dec, proc))
        print(
            f"1,000 SalesOrders {label} ({size / 1e6:.1f} MB), median CPU ms: "
            f"render cold {c:.1f}, warm {w:.1f} | client decode {d:.1f}, "
            f"decode+process {p:.1f} → client/cold {p / c:.1f}x, client/warm {p / w:.0f}x"
        )
    flt = (
        "LastModified gt datetimeoffset'2023-01-01T00:00:00Z' and "
        "LastModified le datetimeoffset'2024-06-30T00:00:00-04:00'"
    )
    params = {"$filter": flt, "$top": "1000", "$skip": str(min(100_000, big // 3))}
    ms, (_body, n) = cpu_ms(lambda: ds.list_records(V, "SalesOrder", params))
    print(f"change-field filter over {big:,} records, page of {n}: {ms:.1f} ms CPU")
    print(f"render cache: {ds.render_cache.nbytes / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
