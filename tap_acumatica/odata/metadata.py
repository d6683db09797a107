"""``$metadata`` (CSDL XML, OData v4 and the legacy v3) → the entity types of the wanted sets.

A DAC service's ``$metadata`` is about 20 MB (docs/acumatica-api.md §8), so it is parsed as it
arrives: :class:`MetadataParser` feeds each piece to an ``XMLPullParser`` and drops every element
once it has ended. What it keeps per entity type is a compressed line of names and types (a
derived DAC declares only what it adds to its ``BaseType``, and the base may come before or after
it), the entity sets as names, and the GI parameter functions; only the types of the wanted
sets are built in full, when the document has ended.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from xml.etree import ElementTree as ET

from tap_acumatica.errors import AnswerShapeError
from tap_acumatica.odata.model import EntityType, Property

#: Children an ancestor still needs when it ends; every other element is dropped at its end.
_KEEP = {
    "EntityType": {"Key", "Property", "NavigationProperty"},
    "Key": {"PropertyRef"},
    "Function": {"Parameter", "ReturnType"},
    "Action": {"Parameter", "ReturnType"},
    "FunctionImport": {"Parameter"},
}
_DELETED = "GetDeletedRecords"  # docs/acumatica-api.md §10: bound to Collection(<DAC type>)
_WITH_PARAMETERS = "_WithParameters"  # docs/acumatica-api.md §8: a GI with parameters
_GENERATED = re.compile(r"^PX_(?:[A-Za-z0-9]+_)+([A-Za-z0-9]+)$")
_MAX_BASES = 32
_ZDICT_LINES = 10  # a type this wide makes the compression dictionary
_SEPARATORS = str.maketrans("\t\n\r", "   ")
_STEP = 8192  # bytes parsed between two reads of the events (each holds its elements)

_NUMBER = {"Edm.Decimal", "Edm.Double", "Edm.Single"}
_INTEGER = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Byte", "Edm.SByte"}
_DATE_TIME = {"Edm.DateTimeOffset", "Edm.DateTime"}  # Edm.DateTime: v3, no offset (§8)
_TEXT = {"Edm.String", "Edm.Guid", "Edm.TimeOfDay", "Edm.Time", "Edm.Duration"}


def short_name(entity_set: str) -> str:
    """The DAC's class name of a generated set name (``PX_Objects_SO_SOLine`` → ``SOLine``).

    docs/acumatica-api.md §8: DAC sets are named by the full class name with ``_`` for ``.``.
    Any other name is returned as is.
    """
    found = _GENERATED.match(entity_set)
    return found.group(1) if found else entity_set


def json_schema(etype: EntityType, *, keys_required: bool = True) -> dict[str, Any]:
    """The JSON Schema of a row of ``etype``: every column nullable but the keys.

    ``keys_required`` False (a GI whose CSDL keys may be null in a joined row): keys too.
    """
    keys = set(etype.keys) if keys_required else set()
    properties = {
        p.name: _value_schema(p.edm, nullable=p.name not in keys) for p in etype.properties
    }
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if keys_required and etype.keys:
        schema["required"] = list(etype.keys)
    return schema


def _value_schema(edm: str, *, nullable: bool) -> dict[str, Any]:
    if edm.startswith("Collection(") and edm.endswith(")"):
        items = _value_schema(edm[11:-1], nullable=True)
        return {"type": ["array", "null"] if nullable else "array", "items": items}
    extra: dict[str, Any] = {}
    if edm in _NUMBER:
        kind = "number"
    elif edm in _INTEGER:
        kind = "integer"
    elif edm == "Edm.Boolean":
        kind = "boolean"
    else:
        kind = "string"
        if edm in _DATE_TIME:
            extra["format"] = "date-time"
        elif edm == "Edm.Date":
            extra["format"] = "date"
        elif edm not in _TEXT:
            extra["description"] = f"{edm}: a type the tap does not know, read as text"
    return {"type": [kind, "null"] if nullable else kind, **extra}


def parse_metadata(
    chunks: Iterable[bytes], wanted: Callable[[str], bool], *, source: str = "$metadata"
) -> dict[str, EntityType]:
    """The wanted entity sets of a whole CSDL document given piece by piece."""
    parser = MetadataParser(wanted, source=source)
    for chunk in chunks:
        parser.feed(chunk)
    return parser.close()


class MetadataParser:
    """A CSDL document fed piece by piece; :meth:`close` gives ``{entity set: EntityType}``.

    ``wanted`` is asked with each entity-set name; a set is in the result when it says yes.
    Unknown elements are ignored; a body that is not XML or not CSDL raises
    :class:`AnswerShapeError` (one line naming ``source``).
    """

    def __init__(self, wanted: Callable[[str], bool], *, source: str = "$metadata") -> None:
        """Nothing is read here; :meth:`feed` takes the document."""
        self._wanted = wanted
        self._source = source
        self._pull: ET.XMLPullParser[Any] = ET.XMLPullParser(events=("start", "end"))
        self._stack: list[ET.Element] = []
        self._namespace = ""
        self._schemas = 0
        self._aliases: dict[str, str] = {}  # Schema Alias → Namespace
        self._types: dict[str, bytes] = {}  # qualified name → compressed declaration
        self._sets: list[tuple[str, str]] = []  # (wanted set, its EntityType as written)
        self._others = bytearray()  # "type as written\tset name\n" of the unwanted sets
        self._bound: set[str] = set()  # types (as written) with a bound GetDeletedRecords
        self._functions: dict[str, tuple[tuple[Property, ...], str]] = {}
        self._imports: list[tuple[str, str, str, tuple[Property, ...], str]] = []
        self._empty = True
        self._zdict = b""  # the compression dictionary: the first wide type's declaration

    def feed(self, chunk: bytes) -> None:
        """Parse the next piece, dropping every element that has ended."""
        self._empty = self._empty and not bytes(chunk).strip()
        view = memoryview(chunk)
        try:
            for at in range(0, len(view), _STEP):  # the events of a step are queued until read
                self._pull.feed(view[at : at + _STEP])
                self._drain()
        except ET.ParseError as exc:
            raise self._error(f"it is not well-formed XML ({exc})") from None

    def close(self) -> dict[str, EntityType]:
        """End the document and build the wanted entity types."""
        if self._empty:
            raise self._error("the body is empty")
        try:
            self._pull.close()
            self._drain()
        except ET.ParseError as exc:
            raise self._error(f"it is not well-formed XML ({exc})") from None
        if not self._schemas:
            raise self._error("it declares no <Schema>")
        return self._build()

    # -- events ------------------------------------------------------------------------------

    def _drain(self) -> None:
        for item in self._pull.read_events():
            event, elem = item[0], item[-1]
            if not isinstance(elem, ET.Element):
                continue  # only "start" and "end" are asked for
            local = _local(elem.tag)
            if event == "start":
                self._start(elem, local)
                continue
            self._stack.pop()
            parent = self._stack[-1] if self._stack else None
            self._end(elem, local)
            if parent is not None and local not in _KEEP.get(_local(parent.tag), ()):
                elem.clear()
                parent.remove(elem)

    def _start(self, elem: ET.Element, local: str) -> None:
        if not self._stack and local not in ("Edmx", "Schema"):
            raise self._error(f"its root element is <{local}>, not <edmx:Edmx>")
        self._stack.append(elem)
        if local == "Schema":
            self._schemas += 1
            self._namespace = elem.get("Namespace", "")
            if elem.get("Alias"):
                self._aliases[elem.get("Alias", "")] = self._namespace

    def _end(self, elem: ET.Element, local: str) -> None:
        if local == "EntityType":
            self._entity_type(elem)
        elif local == "EntitySet":
            name, etype = elem.get("Name", ""), elem.get("EntityType", "")
            if name and etype:
                if self._wanted(name):
                    self._sets.append((name, etype))
                else:
                    self._others += f"{etype}\t{name}\n".encode()
        elif local in ("Function", "Action"):
            self._function(elem)
        elif local == "FunctionImport":
            self._function_import(elem)

    def _entity_type(self, elem: ET.Element) -> None:
        lines = [f"B\t{elem.get('BaseType', '')}"]
        for child in elem:
            kind = _local(child.tag)
            if kind == "Key":
                lines += [f"K\t{_name(ref, 'Name')}" for ref in child]
            elif kind == "Property":
                nullable = "0" if child.get("Nullable", "true").lower() == "false" else "1"
                lines.append(f"P\t{_name(child, 'Name')}\t{_name(child, 'Type')}\t{nullable}")
            elif kind == "NavigationProperty":
                lines.append(f"N\t{_name(child, 'Name')}")
        name = f"{self._namespace}.{elem.get('Name', '')}"
        self._types[name] = self._pack("\n".join(lines).encode())

    def _pack(self, text: bytes) -> bytes:
        """``text`` compressed against the first wide type's (DACs share many column names)."""
        if not self._zdict and text.count(b"\n") >= _ZDICT_LINES:
            self._zdict = text[-32768:]
        if not self._zdict:
            return b"p" + zlib.compress(text, 1)
        packer = zlib.compressobj(1, zdict=self._zdict)
        return b"d" + packer.compress(text) + packer.flush()

    def _unpack(self, packed: bytes) -> str:
        if packed[:1] == b"p":
            return zlib.decompress(packed[1:]).decode()
        unpacker = zlib.decompressobj(zdict=self._zdict)
        return (unpacker.decompress(packed[1:]) + unpacker.flush()).decode()

    def _function(self, elem: ET.Element) -> None:
        params = _parameters(elem)
        returns = next((c.get("Type", "") for c in elem if _local(c.tag) == "ReturnType"), "")
        if elem.get("IsBound", "").lower() == "true":
            if elem.get("Name") == _DELETED and params:
                self._bound.add(_element_type(params[0].edm))
            return
        self._functions[f"{self._namespace}.{elem.get('Name', '')}"] = (params, returns)

    def _function_import(self, elem: ET.Element) -> None:
        params = _parameters(elem)
        name = elem.get("Name", "")
        if _attr(elem, "IsBindable").lower() == "true":  # OData v3: bound = bindable import
            if name == _DELETED and params:
                self._bound.add(_element_type(params[0].edm))
            return
        returns = elem.get("ReturnType", "")
        self._imports.append(
            (name, elem.get("Function", ""), elem.get("EntitySet", ""), params, returns)
        )

    # -- the result ------------------------------------------------------------------------

    def _qualify(self, written: str) -> str:
        namespace, _, name = written.rpartition(".")
        return f"{self._aliases.get(namespace, namespace)}.{name}"

    def _build(self) -> dict[str, EntityType]:
        by_type: dict[str, list[str]] = {}
        wanted_types = {self._qualify(written) for _, written in self._sets}
        for line in self._others.decode().splitlines():
            written, _, name = line.partition("\t")
            if self._qualify(written) in wanted_types:
                by_type.setdefault(self._qualify(written), []).append(name)
        for name, written in self._sets:
            by_type.setdefault(self._qualify(written), []).append(name)
        bound = {self._qualify(t) for t in self._bound}
        parameters = self._parameters_by_set()
        out: dict[str, EntityType] = {}
        for name, written in self._sets:
            qualified = self._qualify(written)
            declared = self._declaration(qualified)
            if declared is None:
                continue  # a set of a type the document does not declare: not readable
            keys, props, navs = declared
            others = [n for n in by_type.get(qualified, []) if n != name]
            short = short_name(name)
            if short == name and qualified.rpartition(".")[2] in others:
                short = qualified.rpartition(".")[2]  # the class name's own set (api.md §8)
            aliases = ([short] if short != name else []) + [n for n in others if n != short]
            out[name] = EntityType(
                name=name,
                keys=keys,
                properties=props,
                aliases=tuple(aliases),
                navigations=navs,
                deleted_records=qualified in bound,
                parameters=parameters.get(name, ()),
            )
        return out

    def _declaration(
        self, qualified: str
    ) -> tuple[tuple[str, ...], tuple[Property, ...], tuple[str, ...]] | None:
        """Keys, properties and navigations of a type, its base types' first."""
        chain: list[list[str]] = []
        while qualified in self._types and len(chain) < _MAX_BASES:
            lines = self._unpack(self._types[qualified]).split("\n")
            chain.append(lines)
            base = lines[0].partition("\t")[2]
            if not base:
                break
            qualified = self._qualify(base)
        if not chain:
            return None
        keys: tuple[str, ...] = ()
        props: dict[str, Property] = {}
        navs: dict[str, None] = {}
        for lines in reversed(chain):
            own_keys = []
            for line in lines[1:]:
                kind, _, rest = line.partition("\t")
                if kind == "K":
                    own_keys.append(rest)
                elif kind == "P":
                    name, edm, nullable = rest.split("\t")
                    props[name] = Property(name, edm, nullable == "1")
                elif kind == "N":
                    navs[rest] = None
            keys = tuple(own_keys) or keys
        return keys, tuple(props.values()), tuple(navs)

    def _parameters_by_set(self) -> dict[str, tuple[Property, ...]]:
        """GI parameters: each ``<Set>_WithParameters`` import's, by the set it reads."""
        out: dict[str, tuple[Property, ...]] = {}
        for name, function, entity_set, own, returns in self._imports:
            params, declared_returns = self._functions.get(self._qualify(function), ((), ""))
            params = own or params
            target = entity_set.rpartition("/")[2] or (
                name[: -len(_WITH_PARAMETERS)] if name.endswith(_WITH_PARAMETERS) else ""
            )
            if not target:
                of_type = self._qualify(_element_type(returns or declared_returns))
                target = next((s for s, t in self._sets if self._qualify(t) == of_type), "")
            if target and params:
                out[target] = params
        return out

    def _error(self, what: str) -> AnswerShapeError:
        return AnswerShapeError(f"{self._source}: the answer is not an OData CSDL document: {what}")


def _local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _name(elem: ET.Element, attribute: str) -> str:
    """A name for the packed lines: CSDL names hold no tab or line break, an odd one loses them."""
    return elem.get(attribute, "").translate(_SEPARATORS)


def _attr(elem: ET.Element, local: str) -> str:
    """An attribute by its local name, in any namespace (v3 writes ``m:IsBindable``)."""
    return next((v for k, v in elem.attrib.items() if _local(k) == local), "")


def _element_type(written: str) -> str:
    """``Collection(NS.T)`` → ``NS.T``."""
    return (
        written[11:-1] if written.startswith("Collection(") and written.endswith(")") else written
    )


def _parameters(elem: ET.Element) -> tuple[Property, ...]:
    return tuple(
        Property(
            p.get("Name", ""),
            p.get("Type", ""),
            p.get("Nullable", "true").lower() != "false",
        )
        for p in elem
        if _local(p.tag) == "Parameter"
    )
