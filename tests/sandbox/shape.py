"""$select / $expand / $custom compilation and the §3 record shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .entities import Schema, schema
from .errors import ApiError, odata_error
from .records import Ctx, FieldGen, SchemaGen

NOTE_EMPTY = {"value": ""}


@dataclass
class Sel:
    """A compiled selection for one schema level."""

    gen: SchemaGen
    members: list[tuple[str, str, Any]] = field(default_factory=list)  # (name, kind, payload)
    custom: list[tuple[str, str, FieldGen]] = field(default_factory=list)  # (view, field, gen)
    view: str = ""
    files: bool = False  # "files": [] comes last, after _links (real payloads)


def split_list(value: str | None) -> list[str]:
    if not value:
        return []
    return [p.strip() for p in value.split(",") if p.strip()]


def no_property(name: str, sch: Schema) -> ApiError:
    return odata_error(f"Could not find a property named '{name}' on type 'Default.{sch.name}'.")


def _member_schema(sch: Schema, name: str) -> tuple[str, str] | None:
    if name in sch.details:
        return "d", sch.details[name]
    if name in sch.linked:
        return "l", sch.linked[name]
    return None


def compile_selection(
    top: SchemaGen,
    sub: Any,
    version: str,
    select: str | None,
    expand: str | None,
    custom: str | None,
    extra: set[str] | None = None,
) -> Sel:
    """Validate the query options against the schema and compile the output plan."""
    # expand tree: member -> subtree (api.md §4: nested via slash, files, Details/files)
    etree: dict[str, Any] = {}
    for path in split_list(expand):
        node, sch = etree, top.schema
        for seg in path.split("/"):
            if seg == "files":
                node.setdefault("files", {})
                break
            ms = _member_schema(sch, seg)
            if ms is None:
                raise no_property(seg, sch)
            node = node.setdefault(seg, {})
            sch = schema(ms[1])
    # select tree: None = everything; else {"": set(fields), member: subtree}
    stree: dict[str, Any] | None = None
    if select is not None and split_list(select):
        stree = {"": set()}
        for path in split_list(select):
            node, sch, enode = stree, top.schema, etree
            segs = path.split("/")
            for i, seg in enumerate(segs):
                last = i == len(segs) - 1
                ms = _member_schema(sch, seg)
                if ms is None:
                    if not last or seg not in sch.field_map(version):
                        raise no_property(seg, sch)
                    node[""].add(seg)
                    break
                if seg not in enode:
                    # api.md §4: nested entities in $select must also be in $expand
                    raise odata_error(
                        f"The entity '{seg}' in $select must also be specified in $expand."
                    )
                if last:
                    node[seg] = None  # the whole member
                    break
                child = node.get(seg, {"": set()})
                if child is None:
                    break
                node[seg] = child
                node, sch, enode = child, schema(ms[1]), enode[seg]
        if extra:
            stree[""].update(extra)
    # $custom items are <View>.<Field> or <Member>/<View>.<Field>
    ctree: dict[str, Any] = {}
    for item in split_list(custom):
        *path, leaf = item.split("/")
        view, dot, fname = leaf.partition(".")
        if not dot or not view or not fname:
            raise odata_error(f"The $custom item '{item}' is not in the <View>.<Field> format.")
        node, enode, sch = ctree, etree, top.schema
        for seg in path:
            ms = _member_schema(sch, seg)
            if ms is None:
                raise no_property(seg, sch)
            if seg not in enode:
                raise odata_error(
                    f"The entity '{seg}' in $custom must also be specified in $expand."
                )
            node, enode, sch = node.setdefault(seg, {}), enode[seg], schema(ms[1])
        node.setdefault("", []).append((view, fname, sch))
    return _build(top, sub, version, etree, stree, ctree)


def _build(
    gen: SchemaGen,
    sub: Any,
    version: str,
    etree: dict[str, Any],
    stree: dict[str, Any] | None,
    ctree: dict[str, Any],
) -> Sel:
    sch = gen.schema
    sel = Sel(gen, view=sch.view)
    fmap = sch.field_map(version)
    wanted = set(fmap) if stree is None else stree[""] & set(fmap)
    items: list[tuple[str, str, Any]] = [(n, "f", gen.fields[n]) for n in wanted]
    for member, child in etree.items():
        if member == "files":
            sel.files = True
            continue
        kind, type_name = _member_schema(sch, member)  # type: ignore[misc]
        child_sel = None if stree is None else stree.get(member)
        items.append(
            (
                member,
                kind,
                _build(sub(type_name), sub, version, child, child_sel, ctree.get(member, {})),
            )
        )
    items.sort(key=lambda t: t[0].lower())
    sel.members = items
    for view, fname, csch in ctree.get("", []):
        cg = gen.custom_gen(view, fname)
        if cg is None:
            raise odata_error(
                f"The custom field '{view}.{fname}' is not found in the entity '{csch.name}'."
            )
        sel.custom.append((view, fname, cg))
    return sel


def build_record(
    sel: Sel,
    c: Ctx,
    note: dict[str, Any] | None,
    row: int,
    line: int,
    links: tuple[str, str] | None,
    files_put_base: str,
) -> dict[str, Any]:
    """One record (or detail line / linked entity) in the api.md §3 shape."""
    gen = sel.gen
    d: dict[str, Any] = {"id": c.guid, "rowNumber": row, "note": note}
    for name, kind, payload in sel.members:
        if kind == "f":
            d[name] = gen.wrapped_value(payload, c, line)
        elif kind == "d":
            sub_sel: Sel = payload
            subnote = None if sub_sel.gen.schema.note_null else NOTE_EMPTY
            d[name] = [
                build_record(
                    sub_sel, gen.sub_ctx(c, name, i), subnote, i + 1, i, None, files_put_base
                )
                for i in range(gen.line_count(c, name))
            ]
        elif kind == "l":
            sub_sel = payload
            subnote = None if sub_sel.gen.schema.note_null else NOTE_EMPTY
            d[name] = build_record(sub_sel, gen.sub_ctx(c, name, 0), subnote, 1, 0, None, "")
    custom: dict[str, Any] = {}
    for view, fname, cg in sel.custom:
        custom.setdefault(view, {})[fname] = {
            "type": f"Custom{cg.type}Field",
            "value": gen.raw_value(cg, c, line),
        }
    d["custom"] = custom
    if links is not None:
        d["_links"] = {"self": links[0], "files:put": links[1]}
    elif files_put_base:
        # api.md §3: detail lines carry _links with only files:put (graph / view / id)
        d["_links"] = {"files:put": f"{files_put_base}/{sel.view}/{c.guid}/{{filename}}"}
    if sel.files:
        d["files"] = []
    return d
