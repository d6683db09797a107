"""The peer baseline: an entity read the way the open-source peers page it (issue 15).

Our own code, written after the team's survey of the peers (PEERS.md, sections 2.2 to 2.4 and 4):
one session (one cookie sign-in), a ``$filter``
``<change field> gt datetimeoffset'<bookmark>'`` (the start date on a backfill), no
``$orderby`` (the contract API has none, api.md §4), and sequential ``$top``/``$skip`` pages
until a short page. The bookmark it would save is the largest change stamp seen. Records go
out as one JSON line each (unwrapped, like the passthrough); the last stderr line is a JSON
summary: records, requests, extraction seconds (first data request to last answer) and the
bookmark.

    python -m benchmarks.peer_pager --config c.json --entity SalesOrder --change-field LastModified
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import msgspec
import requests

from benchmarks.passthrough import unwrap


def literal(stamp: str) -> str:
    """``datetimeoffset'…'`` for an ISO date-time (api.md §4: OData v3 literals)."""
    return f"datetimeoffset'{stamp.replace('Z', '+00:00')}'"


def main(argv: list[str] | None = None) -> int:
    """Read the entity page after page and write JSONL to ``--out``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peer_pager")
    parser.add_argument("--config", required=True, help="tap config JSON (cookie auth)")
    parser.add_argument("--entity", required=True)
    parser.add_argument("--change-field", required=True, help="e.g. LastModifiedDateTime")
    parser.add_argument("--bookmark", default="2000-01-01T00:00:00.000Z", help="start date")
    parser.add_argument("--version", default="24.200.001")
    parser.add_argument("--select", default="")
    parser.add_argument("--expand", default="")
    parser.add_argument("--page-size", type=int, default=1000)
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
    params: dict[str, Any] = {
        "$filter": f"{args.change_field} gt {literal(args.bookmark)}",
        "$top": str(args.page_size),
    }
    if args.select:
        params["$select"] = args.select
    if args.expand:
        params["$expand"] = args.expand
    count = made = skip = 0
    newest = args.bookmark
    started = time.perf_counter()
    try:
        while True:
            page = {**params, "$skip": str(skip)} if skip else params
            resp = session.get(url, params=page, timeout=1800)
            made += 1
            resp.raise_for_status()
            rows = decoder.decode(resp.content)
            for row in rows:
                record = unwrap(row)
                stamp = record.get(args.change_field)
                if isinstance(stamp, str) and stamp > newest:  # same offset on one server
                    newest = stamp
                out.write(encoder.encode(record))
                out.write(b"\n")
            count += len(rows)
            if len(rows) < args.page_size:
                break
            skip += len(rows)
        seconds = time.perf_counter() - started
    finally:
        out.flush()
        session.post(f"{base}/entity/auth/logout", timeout=60)
    summary = {"records": count, "requests": made, "seconds": seconds, "bookmark": newest}
    sys.stderr.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
