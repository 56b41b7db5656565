"""Check that the modules of the Rust core (``rust/``) depend on each other one way.

    python tools/check_rust_modules.py            # report cycles; exit 1 if any
    python tools/check_rust_modules.py --graph    # print each module's sibling dependencies

Two modules with the same parent (``archive::repair`` and ``archive::scan``,
or ``json::tape`` and ``json::validate``) must not need each other, directly
or around a longer loop: a module that both sides need is a module of its
own. A use of the parent's own items (``super::Codec``) or of a module under
another parent counts for the sibling that contains it. Every ``use``
statement and every ``super::``/``crate::`` path in code counts; test-only
code (``#[cfg(test)]`` modules and files, ``rust/tests/``) does not.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import defaultdict
from pathlib import Path

from check_imports import cycles as strongly_connected  # the same Tarjan, beside this file

ROOT = Path(__file__).resolve().parent.parent

Module = tuple[str, ...]  # path from the crate root: ("archive", "scan")

_LINE_COMMENT = re.compile(r"//[^\n]*")
_BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_USE = re.compile(r"\buse\s+([^;]+);")
_PATH = re.compile(r"\b(?:super|crate|self)(?:\s*::\s*\w+)+")
_TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*(;|\{)")


def modules(src: Path) -> dict[Module, Path]:
    """Every module of the crate rooted at ``src/lib.rs``, test-only ones left out."""
    found: dict[Module, Path] = {}

    def walk(mod: Module, path: Path) -> None:
        found[mod] = path
        text = path.read_text()
        tests = {m.group(1) for m in _TEST_MOD.finditer(text)}
        here = path.parent if path.name in ("lib.rs", "mod.rs") else path.with_suffix("")
        for m in re.finditer(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
            name = m.group(1)
            if name in tests:
                continue
            for child in (here / f"{name}.rs", here / name / "mod.rs"):
                if child.is_file():
                    walk((*mod, name), child)
                    break

    walk((), src / "lib.rs")
    return found


def _code(text: str) -> str:
    """``text`` without comments and without ``#[cfg(test)] mod x { … }`` blocks."""
    text = _BLOCK_COMMENT.sub("", _LINE_COMMENT.sub("", text))
    out, pos = [], 0
    for m in _TEST_MOD.finditer(text):
        if m.group(2) != "{" or m.start() < pos:
            continue
        out.append(text[pos : m.start()])
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        pos = i
    out.append(text[pos:])
    return "".join(out)


def _expand(tree: str) -> list[str]:
    """``a::{b, c::{d, e}}`` -> ``["a::b", "a::c::d", "a::c::e"]``."""
    tree = re.sub(r"\s+", "", tree)
    if "{" not in tree:
        return [tree]
    head, _, rest = tree.partition("{")
    body = rest[: rest.rfind("}")]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += {"{": 1, "}": -1}.get(ch, 0)
        cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in _expand(head + part)]


def _resolve(path: str, at: Module, mods: dict[Module, Path]) -> Module | None:
    """The deepest module of the crate that ``path`` (seen from ``at``) goes through."""
    segs = [s for s in re.sub(r"\s+", "", path).split("::") if s]
    if not segs or segs[0] not in ("super", "crate", "self"):
        return None
    cur: Module = at
    i = 0
    if segs[0] == "crate":
        cur, i = (), 1
    while i < len(segs) and segs[i] in ("super", "self"):
        if segs[i] == "super":
            if not cur:
                return None
            cur = cur[:-1]
        i += 1
    while i < len(segs) and (*cur, segs[i]) in mods:
        cur = (*cur, segs[i])
        i += 1
    return cur


def edges(src: Path) -> dict[Module, dict[str, set[str]]]:
    """``{parent: {child: {siblings it needs}}}`` over the whole crate."""
    mods = modules(src)
    graph: dict[Module, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for mod, path in mods.items():
        code = _code(path.read_text())
        paths = [p for m in _USE.finditer(code) for p in _expand(m.group(1))]
        paths += [m.group(0) for m in _PATH.finditer(code)]
        for p in paths:
            target = _resolve(p, mod, mods)
            if target is None:
                continue
            n = 0
            while n < min(len(mod), len(target)) and mod[n] == target[n]:
                n += 1
            if n < len(mod) and n < len(target):  # siblings under mod[:n]
                graph[mod[:n]][mod[n]].add(target[n])
    return graph


def cycles(graph: dict[Module, dict[str, set[str]]]) -> list[str]:
    """One line per group of siblings that need each other."""
    return [
        f"module cycle in {'::'.join(('crate', *parent))}: {' <-> '.join(group)}"
        for parent, deps in sorted(graph.items())
        for group in strongly_connected(deps)
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=ROOT / "rust")
    ap.add_argument("--graph", action="store_true")
    args = ap.parse_args(argv)
    graph = edges(args.src)
    if args.graph:
        for parent, deps in sorted(graph.items()):
            print("::".join(("crate", *parent)))
            for child, needs in sorted(deps.items()):
                print(f"  {child} -> {', '.join(sorted(needs))}")
    problems = cycles(graph)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
