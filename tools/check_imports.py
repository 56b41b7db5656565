"""Check the import structure of ``python/ssmd`` against the layers of docs/architecture.md.

    python tools/check_imports.py            # report violations; exit 1 if any
    python tools/check_imports.py --graph    # print every module's ssmd imports by layer

Every ``import`` and ``from … import`` counts, wherever it stands: at the top,
inside a function, or under ``if TYPE_CHECKING:`` (two modules that name each
other's types know each other). Rules:

1. Layers, top to bottom; a module imports only from its own layer or below:
   the CLI; services; the parts (connectors, bus, secmaster, sim, samples);
   the runtime; the archive and the core (the only importers of the Rust
   extension ``ssmd._core``); types, errors and settings. A module outside
   every layer is an error too: place it first.
2. No cycles between modules, and none between the top-level packages
   (``ssmd.connectors`` ↔ ``ssmd.runtime``, say), whichever modules make them.
3. The simulators and the connectors never import each other.
4. No private name (``_x``) is imported from outside the module or package
   that defines it.
5. No module-level ``__getattr__`` (lazy re-export shims hide imports).

Imports made by ``importlib.import_module`` are not seen; the registries that
use them (``connectors/registry.py``, ``sim/venues.py``) load modules of their
own package.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: top to bottom; each entry names the modules (and the packages under them) of a layer;
#: ``=name`` is that module alone (``=ssmd``: the package's face, ``ssmd/__init__.py``)
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("cli", ("ssmd.cli", "ssmd.__main__")),
    (
        "services",
        (
            "ssmd.cdc",
            "ssmd.cache",
            "ssmd.lifecycle",
            "ssmd.follow",
            "ssmd.signals",
            "ssmd.notify",
            "ssmd.replay",
            "ssmd.dq",
        ),
    ),
    ("parts", ("ssmd.connectors", "ssmd.bus", "ssmd.secmaster", "ssmd.sim", "ssmd.samples")),
    ("runtime", ("ssmd.runtime",)),
    ("core", ("=ssmd", "ssmd.archive", "ssmd.core", "ssmd._core")),
    ("base", ("ssmd.types", "ssmd.errors", "ssmd.settings")),
]
#: the only importers of the Rust extension
CORE_IMPORTERS = ("ssmd.core", "ssmd.archive")
#: pairs of top-level packages that must not import each other (either way)
APART = [("ssmd.sim", "ssmd.connectors")]
EXTENSION = "ssmd._core"
#: problems known and owned by work in progress: each must still occur (else remove it here)
KNOWN: dict[str, str] = {}


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (resolved to a module of the tree, or the extension)
    names: tuple[str, ...]  # names taken with ``from target import …``
    path: Path
    line: int


def modules(src: Path) -> dict[str, Path]:
    """Module name -> file for every ``.py`` of ``src/ssmd/``."""
    out = {}
    for p in sorted((src / "ssmd").rglob("*.py")):
        parts = list(p.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    if name == EXTENSION or name.startswith(EXTENSION + "."):
        return EXTENSION
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(known: dict[str, Path]) -> list[Import]:
    """Every import of an ``ssmd`` module, with the module it resolves to."""
    out: list[Import] = []
    for mod, path in known.items():
        tree = ast.parse(path.read_text(), str(path))
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] == "ssmd":
                        target = _resolve(alias.name, known)
                        if target and target != mod:
                            out.append(Import(mod, target, (), path, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                if base.split(".")[0] != "ssmd":
                    continue
                names = tuple(a.name for a in node.names)
                for name in names:  # ``from ssmd.x import y`` may name module y
                    sub = f"{base}.{name}"
                    if sub in known or sub == EXTENSION:
                        if sub != mod:
                            out.append(Import(mod, sub, (), path, node.lineno))
                        names = tuple(n for n in names if n != name)
                target = _resolve(base, known)
                if target and target != mod and names:
                    out.append(Import(mod, target, names, path, node.lineno))
    return out


def layer_of(mod: str) -> int | None:
    """Index of ``mod``'s layer (0 = top); the longest matching prefix decides."""
    best: tuple[int, int] | None = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for pre in prefixes:
            exact = pre.startswith("=")
            pre = pre.lstrip("=")
            inside = mod == pre or (not exact and mod.startswith(pre + "."))
            if inside and (best is None or len(pre) > best[1]):
                best = (i, len(pre))
    return None if best is None else best[0]


def top(mod: str) -> str:
    """The top-level unit of ``mod``: ``ssmd.runtime`` for ``ssmd.runtime.capture``."""
    return ".".join(mod.split(".")[:2])


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(out)


def _private_owner(dotted: str) -> str | None:
    """For ``a.b._c.d``: ``a.b`` (who may use ``_c``); None without a private part."""
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:i])
    return None


def _inside(mod: str, owner: str) -> bool:
    return mod == owner or mod.startswith(owner + ".")


def check(src: Path) -> list[str]:
    """Every violation of the rules above, one line each (``path:line: what``)."""
    known = modules(src)
    found = imports(known)
    problems: list[str] = []

    def where(imp: Import) -> str:
        return f"{imp.path}:{imp.line}"

    for mod, path in known.items():
        if layer_of(mod) is None:
            problems.append(
                f"{path}: {mod} is in no layer (add it to LAYERS in tools/check_imports.py)"
            )
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if (
                isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                and node.name == "__getattr__"
            ):
                problems.append(
                    f"{path}:{node.lineno}: module-level __getattr__ in {mod} (a lazy re-export shim)"
                )

    for imp in found:
        src_layer, dst_layer = layer_of(imp.source), layer_of(imp.target)
        if src_layer is not None and dst_layer is not None and dst_layer < src_layer:
            problems.append(
                f"{where(imp)}: {imp.source} ({LAYERS[src_layer][0]}) imports {imp.target}"
                f" ({LAYERS[dst_layer][0]}), a layer above it"
            )
        if imp.target == EXTENSION and not any(_inside(imp.source, m) for m in CORE_IMPORTERS):
            problems.append(
                f"{where(imp)}: {imp.source} imports the Rust extension; only"
                f" {' and '.join(CORE_IMPORTERS)} may (use ssmd.core or ssmd.archive)"
            )
        for a, b in APART:
            if {top(imp.source), top(imp.target)} == {a, b}:
                problems.append(
                    f"{where(imp)}: {imp.source} imports {imp.target}: {a} and {b} stay apart"
                )
        for name in (imp.target, *(f"{imp.target}.{n}" for n in imp.names)):
            owner = _private_owner(name)
            if owner is not None and not _inside(imp.source, owner):
                problems.append(f"{where(imp)}: {imp.source} imports the private {name}")

    edges: dict[str, set[str]] = defaultdict(set)
    units: dict[str, set[str]] = defaultdict(set)
    for imp in found:
        edges[imp.source].add(imp.target)
        if top(imp.source) != top(imp.target):
            units[top(imp.source)].add(top(imp.target))
    for comp in cycles(edges):
        problems.append(f"import cycle between modules: {' <-> '.join(comp)}")
    for comp in cycles(units):
        links = sorted(
            {
                f"{i.source} -> {i.target}"
                for i in found
                if top(i.source) in comp
                and top(i.target) in comp
                and top(i.source) != top(i.target)
            }
        )
        problems.append(f"import cycle between packages {' <-> '.join(comp)}: {'; '.join(links)}")
    return problems


def graph(src: Path) -> str:
    """Each module's ssmd imports, grouped by layer, top to bottom."""
    known = modules(src)
    edges: dict[str, set[str]] = defaultdict(set)
    for imp in imports(known):
        edges[imp.source].add(imp.target)
    out = []
    for i, (name, _) in enumerate(LAYERS):
        mods = sorted(m for m in known if layer_of(m) == i)
        if not mods:
            continue
        out.append(f"== {name}")
        out += [f"  {m} -> {', '.join(sorted(edges[m])) or '(nothing)'}" for m in mods]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT / "python", help="the folder holding ssmd/")
    ap.add_argument("--graph", action="store_true", help="print the import graph by layer")
    args = ap.parse_args(argv)
    if args.graph:
        print(graph(args.src))
        return 0
    problems = check(args.src)
    known = KNOWN if args.src.resolve() == (ROOT / "python").resolve() else {}
    stale = [k for k in known if k not in problems]
    problems = [p for p in problems if p not in known] + [
        f"stale entry in KNOWN of tools/check_imports.py (fixed? remove it): {k}" for k in stale
    ]
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
