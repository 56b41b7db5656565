"""The Rust modules depend on each other one way: ``tools/check_rust_modules.py``.

Run as a program (as ``make lint`` runs it) on the crate, and on small crates
that break the rule, so the check can fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "check_rust_modules.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=60, check=False
    )


def crate(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def test_the_crate_has_no_module_cycles() -> None:
    r = run()
    assert r.returncode == 0, r.stdout + r.stderr
    graph = run("--graph").stdout
    assert "crate::archive\n" in graph and "  repair -> " in graph


def test_a_cycle_between_siblings_fails(tmp_path: Path) -> None:
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\n",
            "a/mod.rs": "mod x;\nmod y;\nmod z;\npub struct Shared;\n",
            # x -> y through a grouped use, y -> z through a path in code, z -> x
            "a/x.rs": "use super::{y::{One, Two}, Shared};\n",
            "a/y.rs": "fn f() -> u8 { super::z::g() }\n",
            "a/z.rs": "use crate::a::x::Thing;\n",
        },
    )
    r = run("--src", str(src))
    assert r.returncode == 1
    assert "module cycle in crate::a: x <-> y <-> z" in r.stdout


def test_parent_items_tests_and_comments_do_not_count(tmp_path: Path) -> None:
    src = crate(
        tmp_path,
        {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            # b uses its parent's items and a in tests and comments only
            "b.rs": textwrap.dedent(
                """\
                // use crate::a::A;
                /* crate::a::A */
                pub struct B;
                #[cfg(test)]
                mod tests {
                    use crate::a::A;
                }
                """
            ),
        },
    )
    r = run("--src", str(src))
    assert r.returncode == 0, r.stdout
    src2 = crate(
        tmp_path / "two",
        {
            "lib.rs": "pub mod a;\npub mod b;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": "use crate::a::A;\n",
        },
    )
    r = run("--src", str(src2))
    assert "module cycle in crate: a <-> b" in r.stdout
