"""Markdown and goals of P2: the server model, sessions, capacity, the peer, losses."""

from __future__ import annotations

from typing import Any

GOALS = {
    "speedup": 3.5,  # extraction records/s at 4 sessions ÷ at 1
    "of_capacity": 0.9,  # the tap at 4 sessions ÷ (cores times one session's rate)
    "requests_vs_peer": 1.05,  # the tap's data requests ÷ the peer's
    "vs_peer_one": 1.0,  # the tap at 1 session ÷ the peer (records/s), more than
    "vs_peer_top": 3.5,  # the tap at 4 sessions ÷ the peer
    "p3_ratio": 1.05,
}

LABELS = {"peer": "peer pager (`$skip`, one session)", "one session": "one session (probe)"}


def label(key: str) -> str:
    """``tap@4`` → ``tap-acumatica, max_concurrent_requests 4``."""
    if key.startswith("tap@"):
        return f"tap-acumatica, max_concurrent_requests {key[4:]}"
    return LABELS.get(key, key)


def goals(results: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(goal, target, measured, met) for P2 and the peer comparison."""
    p = results.get("p2")
    if not p or "speedup" not in p:
        return []
    top = max(p["levels"])
    rows = {r["key"]: r for r in p["rows"]}
    tap_top = rows[f"tap@{top}"]
    g = GOALS
    out = [
        (f"P2: extraction records/s, {top} sessions ÷ 1", f"≥ {g['speedup']}",
         f"{p['speedup']:.2f}", p["speedup"] >= g["speedup"]),
        (f"P2: the tap at {top} sessions ÷ the model's capacity ({p['capacity']:,.0f} records/s)",
         f"≥ {g['of_capacity']}", f"{p['of_capacity']:.2f}",
         p["of_capacity"] >= g["of_capacity"]),
        ("P2: sessions left open after a run", "0", str(max(r["left_open"] for r in p["rows"])),
         all(r["left_open"] == 0 for r in p["rows"])),
        (f"P3 SalesOrder + Details on the server model, {top} sessions: data requests ÷ "
         "ceil(N / page_size)", f"≤ {g['p3_ratio']}",
         f"{tap_top['data_requests'] / p['minimum']:.2f}",
         tap_top["data_requests"] / p["minimum"] <= g["p3_ratio"]),
        (f"Peer: the tap's data requests ({top} sessions) ÷ the peer's",
         f"≤ {g['requests_vs_peer']}", f"{p['requests_vs_peer']:.2f}",
         p["requests_vs_peer"] <= g["requests_vs_peer"]),
        ("Peer: the tap at 1 session ÷ the peer, records/s", f"> {g['vs_peer_one']}",
         f"{p['vs_peer_one']:.2f}", p["vs_peer_one"] > g["vs_peer_one"]),
        (f"Peer: the tap at {top} sessions ÷ the peer, records/s", f"≥ {g['vs_peer_top']}",
         f"{p['vs_peer_top']:.2f}", p["vs_peer_top"] >= g["vs_peer_top"]),
    ]  # fmt: skip
    w = results.get("p2_writers")
    if w:
        for row in w["rows"]:
            lost = sum(row["lost"])
            if row["key"].startswith("tap"):
                out.append((f"Writers {w['writers']:g}/s: records lost by the tap",
                            "0", str(lost), lost == 0))  # fmt: skip
            else:
                out.append((f"Writers {w['writers']:g}/s: records lost by the peer (no goal)",
                            "—", str(lost), True))  # fmt: skip
    return out


def render(results: dict[str, Any]) -> list[str]:
    """The P2 section."""
    p = results.get("p2")
    if not p or "speedup" not in p:
        return []
    m = p["model"]
    probe = p["probe"]
    lines = [
        "## P2 — sessions on a realistic server model",
        "",
        f"**The model.** The sandbox serialises the requests of one session (as Acumatica "
        f"does, api.md §6), adds {m['latency_ms']} ms to every data request and "
        f"{m['per_record_us'] / 1000:g} ms per record returned (`--latency-ms "
        f"{m['latency_ms']} --per-record-us {m['per_record_us']}`), and processes at most "
        f"{m['cores']} requests at once (licence processing cores, `--max-concurrent "
        f"{m['cores']}`), with enough API seats for every session. A full page of "
        f"{p['page_size']:,} {p['entity']}s with {', '.join(p['expand'])} then takes "
        f"{p['page_size'] / p['model_session_rate']:.2f} s: one session delivers "
        f"≈ {p['model_session_rate']:,.0f} records/s on paper; measured (the raw passthrough, "
        f"{probe['data_requests']} sequential pages in one session): "
        f"**{p['session_rate']:,.0f} records/s**, so the model's capacity is {m['cores']} "
        f"times that = **{p['capacity']:,.0f} records/s**.",
        "",
        f"{p['records']:,} {p['entity']}s with {', '.join(p['expand'])}, page_size "
        f"{p['page_size']:,} (minimum ⌈N / page_size⌉ = {p['minimum']} data requests). "
        "Contenders run interleaved in rounds with a rotating order; medians over the "
        f"rounds ({p['rounds']}). *Extraction s* is the extraction phase (the tap's "
        "`sync_duration`; the peer's first data request to its last answer) and *records/s* "
        "is computed on it; *CPU share* is the process's CPU seconds ÷ its wall clock; "
        "*sessions* are those the sandbox saw opened, *left open* those still signed in "
        "after the run.",
        "",
        "| Contender | Extraction s | Records/s | Wall s | CPU s | CPU share | Data requests "
        "| ÷ minimum | Other requests | Sessions | Left open |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {label(r['key'])} | {r['extract_s']:.2f} | {r['records_per_s']:,.0f} | "
        f"{r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['cpu_share']:.0%} | "
        f"{r['data_requests']} | {r['data_requests'] / p['minimum']:.2f} | "
        f"{r['other_requests']} | {r['sessions_opened']} | {r['left_open']} |"
        for r in p["rows"]
    )
    top = max(p["levels"])
    lines += [
        "",
        f"Ratios: {top} sessions ÷ 1 **{p['speedup']:.2f}**; the tap at {top} ÷ capacity "
        f"**{p['of_capacity']:.2f}**; the tap ÷ the peer, records/s: **{p['vs_peer_one']:.2f}** "
        f"at 1 session, **{p['vs_peer_top']:.2f}** at {top}; data requests, the tap at {top} ÷ "
        f"the peer: **{p['requests_vs_peer']:.2f}**.",
        "",
        "The peer (`benchmarks/peer_pager.py`, our own code) reads the way the open-source "
        "peers do (see the peer survey): one session, `$filter` `<change field> gt "
        "datetimeoffset'<bookmark>'`, no `$orderby`, sequential `$top`/`$skip` pages until a "
        "short page.",
        "",
    ]
    w = results.get("p2_writers")
    if w:
        lines += [
            f"### Records lost under `--writers {w['writers']:g}`",
            "",
            f"The same model and {w['records']:,} {p['entity']}s while the sandbox inserts, "
            f"updates and deletes ≈ {w['writers']:g} records a second across its entities. "
            "After each run, every live record whose change stamp is before the run's start "
            "(the sandbox clock) must have been emitted (ground truth: "
            "`GET /_sandbox/records/SalesOrder`); for the tap, before the earlier of that and "
            "its final bookmark (its sync end comes from the server's whole-second `Date` "
            "header, so the newest second may be left to its next run). The tap runs at "
            f"max_concurrent_requests {w['level']} with `safety_lag_seconds` 0.",
            "",
            "| Contender | Lost (per round) | Due (per round) | Extraction s | Data requests |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        for r in w["rows"]:
            lines.append(
                f"| {label(r['key'])} | {', '.join(map(str, r['lost']))} | "
                f"{', '.join(f'{x:,}' for x in r['due'])} | {r['extract_s']:.2f} | "
                f"{r['data_requests']} |"
            )
        lines.append("")
    return lines
