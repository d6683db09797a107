"""The layout rules of docs/architecture.md, checked on the source of tap_acumatica/ with ``ast``.

Nothing here imports the package: every rule reads the files. Each rule is a small function
that returns what breaks it (one line per offence, naming the file, function or import), so
the test on the real package says what to fix, and a unit test per rule feeds it a tiny bad
example to prove that the rule can fail.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "tap_acumatica"
API_DOC = REPO / "docs" / "acumatica-api.md"
API_DOC_CITE = "docs/acumatica-api.md"

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 60

#: Layers from the bottom: a module may import (at run time) only modules of its own layer or
#: a lower one. ``x.*`` is the package ``x`` and every module under it. The root package
#: (``__version__``) sits at the bottom; ``sdk`` imports only singer_sdk and serves ``sync``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("tap_acumatica", "tap_acumatica.errors", "tap_acumatica.stamps", "tap_acumatica.redact"),
    ("tap_acumatica.settings", "tap_acumatica.settings_schema"),
    ("tap_acumatica.http", "tap_acumatica.http.messages", "tap_acumatica.http.body"),
    ("tap_acumatica.auth.*",),
    ("tap_acumatica.http.client",),
    ("tap_acumatica.pool",),
    ("tap_acumatica.connection",),
    ("tap_acumatica.sync.*", "tap_acumatica.sdk"),
    ("tap_acumatica.contract.*",),
    ("tap_acumatica.odata.*",),
    ("tap_acumatica.tap",),
    ("tap_acumatica.inputs", "tap_acumatica.cli", "tap_acumatica.__main__"),
)

#: The one module allowed to import a private singer_sdk module or member.
SDK_HOME = "tap_acumatica.sdk"

#: Code comments cite docs/ only, never working notes kept outside the repository.
BANNED_MENTIONS = ("API-FACTS", "../shared", "SINGER-SDK-NOTES", "REAL-INSTANCE")


# -- reading the package ---------------------------------------------------------------------


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is, and whether it runs."""

    target: str  # the module imported (a package's submodule when ``from pkg import mod``)
    full: str  # the dotted name as written, with the imported name: ``a.b._c`` for the rule (e)
    line: int
    type_checking: bool  # under ``if TYPE_CHECKING:``: never runs
    lazy: bool  # inside a function: runs on first call


@dataclass
class Module:
    """One source file of the package."""

    name: str  # dotted, e.g. ``tap_acumatica.http.client``
    path: str  # for messages, e.g. ``tap_acumatica/http/client.py``
    source: str
    is_package: bool = False
    imports: list[Import] = field(default_factory=list)

    @cached_property
    def tree(self) -> ast.Module:
        return ast.parse(self.source, filename=self.path)


def module_name(relative: Path) -> str:
    """``tap_acumatica/http/client.py`` → ``tap_acumatica.http.client`` (a package: its name)."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


class _ImportCollector(ast.NodeVisitor):
    def __init__(self, module: Module, known: set[str]) -> None:
        self.module = module
        self.known = known
        self.found: list[Import] = []
        self._type_checking = False
        self._depth = 0

    def _add(self, target: str, full: str, node: ast.stmt) -> None:
        self.found.append(
            Import(target, full, node.lineno, self._type_checking, lazy=self._depth > 0)
        )

    def visit_If(self, node: ast.If) -> None:
        if not _is_type_checking(node.test):
            self.generic_visit(node)
            return
        outer, self._type_checking = self._type_checking, True
        for child in node.body:
            self.visit(child)
        self._type_checking = outer
        for child in node.orelse:
            self.visit(child)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self.visit_FunctionDef(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, alias.name, node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = self._absolute(node)
        for alias in node.names:
            full = f"{base}.{alias.name}"
            self._add(full if full in self.known else base, full, node)

    def _absolute(self, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = self.module.name.split(".")
        if not self.module.is_package:
            parts.pop()
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, *([node.module] if node.module else [])])


def parse_modules(files: Mapping[str, str]) -> dict[str, Module]:
    """Modules from ``{relative path: source}``, each with its imports resolved."""
    modules = {}
    for path, source in files.items():
        relative = Path(path)
        name = module_name(relative)
        modules[name] = Module(name, path, source, is_package=relative.name == "__init__.py")
    known = set(modules)
    for module in modules.values():
        collector = _ImportCollector(module, known)
        collector.visit(module.tree)
        module.imports = collector.found
    return modules


def read_package() -> dict[str, Module]:
    """Every ``.py`` file under tap_acumatica/."""
    files = {
        path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((REPO / PACKAGE).rglob("*.py"))
        if "__pycache__" not in path.parts
    }
    return parse_modules(files)


def package_texts() -> dict[str, str]:
    """Every file under tap_acumatica/ as text (whatever its kind; caches left out)."""
    return {
        path.relative_to(REPO).as_posix(): path.read_bytes().decode("utf-8", "replace")
        for path in sorted((REPO / PACKAGE).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def _internal(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


# -- the rules -------------------------------------------------------------------------------


def long_files(modules: Iterable[Module], limit: int = MAX_FILE_LINES) -> list[str]:
    """(a) Files over ``limit`` lines."""
    return [
        f"{m.path}: {n} lines (max {limit})"
        for m in modules
        if (n := len(m.source.splitlines())) > limit
    ]


def long_functions(modules: Iterable[Module], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """(b) Functions and methods over ``limit`` lines, from ``def`` to their last line."""
    found = []
    for module in modules:
        for node in ast.walk(module.tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                length = node.end_lineno - node.lineno + 1
                if length > limit:
                    found.append(
                        f"{module.path}:{node.lineno} {node.name}(): {length} lines (max {limit})"
                    )
    return found


def runtime_graph(modules: Mapping[str, Module]) -> dict[str, dict[str, Import]]:
    """Package module → {package module it imports at run time (lazily too): first import}."""
    graph: dict[str, dict[str, Import]] = {name: {} for name in modules}
    for module in modules.values():
        for imp in module.imports:
            if not imp.type_checking and imp.target in modules:
                graph[module.name].setdefault(imp.target, imp)
    return graph


def _strong_components(graph: Mapping[str, Mapping[str, object]]) -> list[list[str]]:
    """Tarjan's strongly connected components."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph.get(node, {}):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _shortest_cycle(graph: Mapping[str, Mapping[str, Import]], start: str) -> list[str]:
    """The shortest import chain from ``start`` back to itself (breadth first)."""
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for succ in sorted(graph[node]):
            if succ == start:
                return [*paths[node], start]
            if succ not in paths:
                paths[succ] = [*paths[node], succ]
                queue.append(succ)
    return []


def import_cycles(modules: Mapping[str, Module]) -> list[str]:
    """(c) Import cycles among package modules (lazy imports count; TYPE_CHECKING ones not).

    One line per set of modules that import each other: the set, and its shortest cycle.
    """
    graph = runtime_graph(modules)
    found = []
    for component in _strong_components(graph):
        if len(component) == 1 and component[0] not in graph[component[0]]:
            continue
        cycle = _shortest_cycle(graph, component[0])
        steps = " → ".join(
            f"{modules[a].path}:{graph[a][b].line}"
            f"{' (inside a function)' if graph[a][b].lazy else ''} imports {b}"
            for a, b in itertools.pairwise(cycle)
        )
        found.append(f"import cycle among {', '.join(component)}: {steps}")
    return found


def layer_of(name: str) -> int | None:
    """The rank of a package module in ``LAYERS`` (0 = bottom), or None when it has none."""
    for rank, patterns in enumerate(LAYERS):
        for pattern in patterns:
            if pattern.endswith(".*"):
                base = pattern[:-2]
                if name == base or name.startswith(base + "."):
                    return rank
            elif name == pattern:
                return rank
    return None


def layer_violations(modules: Mapping[str, Module]) -> list[str]:
    """(d) Modules without a layer, and run-time imports of a module of a higher layer."""
    found = [
        f"{m.path}: {m.name} has no layer; add it to LAYERS (and docs/architecture.md)"
        for m in modules.values()
        if layer_of(m.name) is None
    ]
    for module in modules.values():
        rank = layer_of(module.name)
        for imp in module.imports:
            if imp.type_checking or not _internal(imp.target):
                continue
            target_rank = layer_of(imp.target)
            if rank is not None and target_rank is not None and target_rank > rank:
                found.append(
                    f"{module.path}:{imp.line} {module.name} (layer {rank}) imports "
                    f"{imp.target} (layer {target_rank}), which sits above it"
                )
    return found


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def private_sdk_imports(modules: Mapping[str, Module], home: str = SDK_HOME) -> list[str]:
    """(e) Imports of a private singer_sdk module or member outside ``home``."""
    return [
        f"{m.path}:{imp.line} imports {imp.full}, a private part of singer_sdk: reach it "
        f"through {home}"
        for m in modules.values()
        if m.name != home
        for imp in m.imports
        if imp.full.split(".")[0] == "singer_sdk" and any(map(_private, imp.full.split(".")))
    ]


def banned_mentions(texts: Mapping[str, str], banned: Iterable[str] = BANNED_MENTIONS) -> list[str]:
    """(f) Files that mention notes kept outside docs/."""
    return [
        f"{path}:{number} mentions {word!r} (cite docs/ instead)"
        for path, text in texts.items()
        for number, line in enumerate(text.splitlines(), start=1)
        for word in banned
        if word in line
    ]


_HEADING = re.compile(r"^#{2,}\s+(\d+(?:\.\d+)*)\.?\s", re.MULTILINE)
_SECTION = r"§(\d+(?:\.\d+)*)"
# The citation, its first section (possibly on the next comment line) and any more after it:
# "docs/acumatica-api.md §4", "… §6/§7", "… §3, §13", "… md\n    # §1.1".
_CITATION = re.compile(
    re.escape(API_DOC_CITE)
    + r"[ \t]*(?:\n[ \t]*#?[ \t]*)?"
    + _SECTION
    + r"((?:[ \t]*(?:,|/|and)[ \t]*"
    + _SECTION
    + r")*)"
)


def doc_sections(markdown: str) -> set[str]:
    """Numbers of the numbered headings: "## 3. JSON…" → "3", "### 1.1 Default…" → "1.1"."""
    return set(_HEADING.findall(markdown))


def bad_citations(texts: Mapping[str, str], sections: set[str]) -> list[str]:
    """(g) Citations ``docs/acumatica-api.md §N`` whose section N has no heading."""
    found = []
    for path, text in texts.items():
        for match in _CITATION.finditer(text):
            cited = [match.group(1), *re.findall(_SECTION, match.group(2))]
            line = text.count("\n", 0, match.start()) + 1
            found += [
                f"{path}:{line} cites {API_DOC_CITE} §{number}, which has no such section"
                for number in cited
                if number not in sections
            ]
    return found


# -- the package follows the rules -----------------------------------------------------------


@pytest.fixture(scope="module")
def package() -> dict[str, Module]:
    return read_package()


def test_package_is_read(package: dict[str, Module]) -> None:
    for name in ("tap_acumatica", "tap_acumatica.settings", "tap_acumatica.http.client"):
        assert name in package
    assert package["tap_acumatica.connection"].imports


def test_no_file_over_the_limit(package: dict[str, Module]) -> None:
    found = long_files(package.values())
    assert not found, "\n".join(found)


def test_no_function_over_the_limit(package: dict[str, Module]) -> None:
    found = long_functions(package.values())
    assert not found, "split these into well-named helpers:\n" + "\n".join(found)


def test_no_import_cycle(package: dict[str, Module]) -> None:
    found = import_cycles(package)
    assert not found, "\n".join(found)


def test_no_module_imports_a_higher_layer(package: dict[str, Module]) -> None:
    found = layer_violations(package)
    assert not found, "\n".join(found)


def test_private_singer_sdk_only_in_sdk_module(package: dict[str, Module]) -> None:
    found = private_sdk_imports(package)
    assert not found, "\n".join(found)
    # sdk.py is where the private parts live, so the rule has something to guard.
    assert any(any(map(_private, imp.full.split("."))) for imp in package[SDK_HOME].imports), (
        "tap_acumatica/sdk.py no longer imports any private singer_sdk part; update the rule"
    )


def test_comments_cite_docs_only() -> None:
    found = banned_mentions(package_texts())
    assert not found, "\n".join(found)


def test_api_doc_citations_name_real_sections() -> None:
    sections = doc_sections(API_DOC.read_text(encoding="utf-8"))
    assert {"1", "1.1", "3", "13"} <= sections
    texts = package_texts()
    assert any(_CITATION.search(text) for text in texts.values())
    found = bad_citations(texts, sections)
    assert not found, "\n".join(found)


# -- each rule can fail ----------------------------------------------------------------------


def _path(name: str) -> str:
    return name.replace(".", "/") + ".py"


def _package(files: Mapping[str, str]) -> dict[str, Module]:
    """Modules from ``{dotted name: source}``; a name ending in ``.__init__`` is a package."""
    return parse_modules({_path(name): source for name, source in files.items()})


def test_long_files_flags_a_file_over_the_limit() -> None:
    modules = _package({"tap_acumatica.big": "x = 1\n" * 401, "tap_acumatica.ok": "x = 1\n" * 400})
    assert long_files(modules.values()) == ["tap_acumatica/big.py: 401 lines (max 400)"]


def test_long_functions_flags_functions_and_methods() -> None:
    body = "    x = 1\n" * 60
    source = f"def long():\n{body}\n\ndef short():\n{body[10:]}\n\nclass C:\n    def m(self):\n"
    source += "    " + body.replace("\n", "\n    ").rstrip() + "\n"
    found = long_functions(_package({"tap_acumatica.mod": source}).values())
    assert found == [  # short() is 60 lines: at the limit, not over it
        "tap_acumatica/mod.py:1 long(): 61 lines (max 60)",
        "tap_acumatica/mod.py:127 m(): 61 lines (max 60)",
    ]


def test_import_cycles_count_lazy_imports_but_not_type_checking_ones() -> None:
    lazy = {
        "tap_acumatica.a": "from tap_acumatica import b\n",
        "tap_acumatica.b": "def f():\n    from tap_acumatica.a import x  # noqa\n",
    }
    (found,) = import_cycles(_package(lazy))
    assert "tap_acumatica.a, tap_acumatica.b" in found
    assert found.endswith(
        ": tap_acumatica/a.py:1 imports tap_acumatica.b → "
        "tap_acumatica/b.py:2 (inside a function) imports tap_acumatica.a"
    )
    guarded = {
        "tap_acumatica.a": "import tap_acumatica.b\n",
        "tap_acumatica.b": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from tap_acumatica.a import x\n",
    }
    assert import_cycles(_package(guarded)) == []
    relative = {
        "tap_acumatica.sync.__init__": "from . import stream\n",
        "tap_acumatica.sync.stream": "from .. import sync\n",
    }
    assert len(import_cycles(_package(relative))) == 1
    assert len(import_cycles(_package({"tap_acumatica.a": "import tap_acumatica.a\n"}))) == 1


def test_layers_flag_an_import_from_above_and_a_module_without_layer() -> None:
    modules = _package(
        {
            "tap_acumatica.settings": "def f():\n    from tap_acumatica.connection import C\n",
            "tap_acumatica.connection": "from tap_acumatica import settings\n",
            "tap_acumatica.http.client": "if TYPE_CHECKING:\n    from tap_acumatica.tap import T\n",
            "tap_acumatica.sync.stream": "from tap_acumatica import sdk\n",
            "tap_acumatica.sdk": "",
            "tap_acumatica.mystery": "",
        }
    )
    assert layer_violations(modules) == [
        "tap_acumatica/mystery.py: tap_acumatica.mystery has no layer; add it to LAYERS "
        "(and docs/architecture.md)",
        "tap_acumatica/settings.py:2 tap_acumatica.settings (layer 1) imports "
        "tap_acumatica.connection (layer 6), which sits above it",
    ]


def test_layer_ranks_follow_the_documented_order() -> None:
    order = [
        "errors",
        "settings",
        "http.messages",
        "auth.oauth",
        "http.client",
        "pool",
        "connection",
        "sync.stream",
        "contract.stream",
        "odata.stream",
        "tap",
        "cli",
    ]
    ranks = [layer_of(f"tap_acumatica.{name}") for name in order]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    assert layer_of("tap_acumatica.sdk") == layer_of("tap_acumatica.sync.windows")
    assert layer_of("tap_acumatica.__main__") == layer_of("tap_acumatica.cli")
    assert layer_of("tap_acumatica") == layer_of("tap_acumatica.redact") == 0


def test_private_singer_sdk_imports_are_flagged_outside_sdk_module() -> None:
    private = (
        "from singer_sdk.helpers._compat import x\n"
        "from singer_sdk.helpers import _state\n"
        "import singer_sdk._internal\n"
        "from singer_sdk import Stream, __version__\n"
        "from other._private import y\n"
    )
    modules = _package({"tap_acumatica.tap": private, "tap_acumatica.sdk": private})
    assert private_sdk_imports(modules) == [
        "tap_acumatica/tap.py:1 imports singer_sdk.helpers._compat.x, a private part of "
        "singer_sdk: reach it through tap_acumatica.sdk",
        "tap_acumatica/tap.py:2 imports singer_sdk.helpers._state, a private part of "
        "singer_sdk: reach it through tap_acumatica.sdk",
        "tap_acumatica/tap.py:3 imports singer_sdk._internal, a private part of "
        "singer_sdk: reach it through tap_acumatica.sdk",
    ]


def test_banned_mentions_are_flagged() -> None:
    texts = {
        "tap_acumatica/x.py": "a = 1\n# see ../shared/API-FACTS.md\n",
        "tap_acumatica/y.py": "ok",
    }
    assert banned_mentions(texts) == [
        "tap_acumatica/x.py:2 mentions 'API-FACTS' (cite docs/ instead)",
        "tap_acumatica/x.py:2 mentions '../shared' (cite docs/ instead)",
    ]
    assert banned_mentions({"a.md": "SINGER-SDK-NOTES and REAL-INSTANCE"}) == [
        "a.md:1 mentions 'SINGER-SDK-NOTES' (cite docs/ instead)",
        "a.md:1 mentions 'REAL-INSTANCE' (cite docs/ instead)",
    ]


def test_citations_of_missing_sections_are_flagged() -> None:
    sections = doc_sections("# Title\n## 1. One\n### 1.1 Sub\n## 3. Three\n## Sources\n")
    assert sections == {"1", "1.1", "3"}
    texts = {
        "tap_acumatica/x.py": (
            "# docs/acumatica-api.md §1.1). fine\n"
            "# (docs/acumatica-api.md §3, §13) and docs/acumatica-api.md §1/§2\n"
            "# wrapped (docs/acumatica-api.md\n"
            "# §9).\n"
            '"""docs/acumatica-api.md\n    §4);"""\n'
        )
    }
    assert bad_citations(texts, sections) == [
        "tap_acumatica/x.py:2 cites docs/acumatica-api.md §13, which has no such section",
        "tap_acumatica/x.py:2 cites docs/acumatica-api.md §2, which has no such section",
        "tap_acumatica/x.py:3 cites docs/acumatica-api.md §9, which has no such section",
        "tap_acumatica/x.py:5 cites docs/acumatica-api.md §4, which has no such section",
    ]
