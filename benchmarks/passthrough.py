"""Reference (a): the rawest useful client — requests + msgspec decode + unwrap + JSONL.

Reads one entity with ``$top/$skip`` pages (the same ``$select``/``$expand`` the tap sends),
unwraps Acumatica's ``{"value": x}`` fields, and writes one JSON line per record. No schema, no
Singer envelope, no state, no retries: the floor a Singer tap's CPU cost is compared with.

    python -m benchmarks.passthrough --config c.json --entity Customer [--expand Details]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import msgspec
import requests

_DROP = frozenset({"_links", "rowNumber"})


def unwrap(value: Any) -> Any:
    """``{"value": x}`` → x, ``{}`` → None; nested entities and details recursively."""
    if isinstance(value, dict):
        if not value:
            return None
        if "value" in value and len(value) <= 2:  # {"value": x} or {"type": t, "value": x}
            return value["value"]
        return {k: unwrap(v) for k, v in value.items() if k not in _DROP}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    """Read the entity and write JSONL to ``--out`` (default: stdout)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.passthrough")
    parser.add_argument("--config", required=True, help="tap config JSON (cookie auth)")
    parser.add_argument("--entity", required=True)
    parser.add_argument("--version", default="24.200.001")
    parser.add_argument("--select", default="", help="$select, as the tap sends it")
    parser.add_argument("--expand", default="", help="$expand, as the tap sends it")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--max-pages", type=int, default=-1, help="0: sign in and out only")
    parser.add_argument("--out", default="-")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    base = config["base_url"].rstrip("/")
    session = requests.Session()
    login = {"name": config["username"], "password": config["password"]}
    if config.get("tenant"):
        login["tenant"] = config["tenant"]
    session.post(f"{base}/entity/auth/login", json=login, timeout=60).raise_for_status()
    decoder = msgspec.json.Decoder()
    encoder = msgspec.json.Encoder()
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")  # noqa: SIM115
    url = f"{base}/entity/Default/{args.version}/{args.entity}"
    params = {"$top": str(args.page_size)}
    if args.select:
        params["$select"] = args.select
    if args.expand:
        params["$expand"] = args.expand
    count = requests_made = 0
    started = time.perf_counter()
    try:
        skip = 0
        while args.max_pages < 0 or requests_made < args.max_pages:
            page = dict(params)
            if skip:
                page["$skip"] = str(skip)
            resp = session.get(url, params=page, timeout=600)
            requests_made += 1
            resp.raise_for_status()
            rows = decoder.decode(resp.content)
            for row in rows:
                out.write(encoder.encode(unwrap(row)))
                out.write(b"\n")
            count += len(rows)
            if len(rows) < args.page_size:
                break
            skip += len(rows)
        seconds = time.perf_counter() - started  # extraction: first request to last answer
    finally:
        out.flush()
        session.post(f"{base}/entity/auth/logout", timeout=60)
    summary = {"records": count, "requests": requests_made, "seconds": seconds}
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
