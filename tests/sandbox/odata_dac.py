"""The DAC OData service (api.md §8, §10): routing, options, deleted-record tracking.

``{root}`` (service document), ``{root}/$metadata`` (dac_metadata.py), ``{root}/{DAC}`` (rows,
dac_serve.py over dac_rows.py) and ``{root}/{DAC}/px.GetDeletedRecords()``; ``{root}`` is
``…/t/{tenant}/api/odata/dac`` or, with ``--legacy-odata``, ``…/odatav4/{tenant}``. DAC names:
full, short or display (dac_defs.find).

Options: ``--untracked-deletions DAC,…`` (DACs not on SM207010: no bound function in
``$metadata``, and the function answers ``--untracked-status``, default 404, with ODataLib's
"segment … refers to a collection" text — UNVERIFIED), ``--big-metadata`` (~20 MB ``$metadata``).
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import TYPE_CHECKING

from tests.sandbox import Reply
from tests.sandbox.dac_defs import find
from tests.sandbox.dac_metadata import metadata_xml, pad_type, service_names
from tests.sandbox.dac_serve import deleted_body, rows_body, untracked_message
from tests.sandbox.odata_query import service_document
from tests.sandbox.odata_reply import ODATA_HEADERS, guard, odata_error, reply, xml_reply

if TYPE_CHECKING:
    from tests.sandbox.server import Handler

UNTRACKED_STATUSES = (400, 404, 500)


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("DAC OData (issue 13, api.md §8, §10)")
    g.add_argument(
        "--untracked-deletions",
        type=_dac_list,
        default=(),
        metavar="DAC,…",
        help="DACs missing from SM207010 (Tables to Track Deleted Records): no bound "
        "GetDeletedRecords in $metadata, and px.GetDeletedRecords() answers an error (default '')",
    )
    g.add_argument(
        "--untracked-status",
        type=int,
        choices=UNTRACKED_STATUSES,
        default=404,
        help="HTTP status of px.GetDeletedRecords() on an untracked DAC (default 404; UNVERIFIED)",
    )
    g.add_argument(
        "--big-metadata",
        action="store_true",
        help="pad the DAC $metadata to ~20 MB with extra entity types (the real size)",
    )


def _dac_list(text: str) -> tuple[str, ...]:
    out = []
    for name in (n.strip() for n in text.split(",") if n.strip()):
        dac = find(name)
        if dac is None:
            msg = f"unknown DAC {name!r}"
            raise argparse.ArgumentTypeError(msg)
        out.append(dac.short)
    return tuple(out)


def route_dac(handler: Handler, rest: list[str], root: str) -> Reply:
    """Service document, ``$metadata``, rows and ``px.GetDeletedRecords()`` (api.md §8, §10)."""
    app = handler.server.app
    opt = app.opt
    if not rest:
        return reply(200, service_document(root, service_names(opt.big_metadata)))
    if rest == ["$metadata"]:
        return xml_reply(metadata_xml(frozenset(opt.untracked_deletions), opt.big_metadata))
    dac = find(rest[0])
    pad = pad_type(rest[0]) if opt.big_metadata else None
    if (dac is None and pad is None) or len(rest) > 2:
        return odata_error(404, f"Resource not found for the segment '{rest[0]}'.")
    if pad is not None and dac is None:  # a --big-metadata padding table: always empty
        body = {"@odata.context": f"{root}/$metadata#{rest[0]}", "value": []}
        return reply(200, body) if len(rest) == 1 else odata_error(404, untracked_message(pad))
    assert dac is not None
    entity = dac.sources[0].entity
    # api.md §9: rights are granted per screen. UNVERIFIED for DAC OData; the sandbox's reading:
    # a DAC's rows (and deletions) need the rights of its source entity's screen (--forbidden).
    gate = app.failing.entity_gate(entity)
    if gate is not None:
        return gate
    if len(rest) == 1:
        app.stats.query(handler.stat_path, handler.params)

        def rows() -> Reply:
            body = rows_body(app.dac, dac, handler.params, root)
            return reply(200, body, len(body["value"]))

        return handler.limited(lambda: guard(rows), entity=entity)
    if rest[1].lower() != "px.getdeletedrecords()":
        return odata_error(404, f"Resource not found for the segment '{rest[1]}'.")
    if dac.short in opt.untracked_deletions:
        return odata_error(opt.untracked_status, untracked_message(dac), ODATA_HEADERS)
    app.stats.query(handler.stat_path, handler.params)
    cutoff = app.clock.now() - dt.timedelta(days=opt.deleted_keep_days)

    def deleted() -> Reply:
        body = deleted_body(app.dac, dac, cutoff, handler.params, root)
        return reply(200, body, len(body["value"]))

    return handler.limited(lambda: guard(deleted), entity=entity)
