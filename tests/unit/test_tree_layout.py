"""The test tree's layout rules that importlib mode relies on.

Test modules are imported with ``--import-mode=importlib``: they are not on
``sys.path`` and cannot import each other. Shared helpers therefore live in
``tests/`` itself (on ``pythonpath``), never next to the tests in a subfolder,
where an ``import`` of them would fail only when run.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_helpers_live_in_tests_root() -> None:
    stray = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "tests").rglob("*.py")
        if p.parent != ROOT / "tests"
        and not p.name.startswith("test_")
        and p.name not in ("conftest.py", "__init__.py")
    ]
    assert not stray, f"move shared test helpers to tests/ (importlib mode): {stray}"


def test_nothing_puts_the_test_tree_on_sys_path() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for tree in ("benches", "tools")
        for p in (ROOT / tree).rglob("*.py")
        if "sys.path.insert" in p.read_text() and '"tests"' in p.read_text()
    ]
    assert not offenders, offenders
