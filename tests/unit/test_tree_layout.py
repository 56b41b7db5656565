"""The test tree's layout rules that importlib mode relies on.

Test modules are imported with ``--import-mode=importlib``: they are not on
``sys.path`` and cannot import each other. Shared helpers therefore live in
``tests/`` itself (on ``pythonpath``), never next to the tests in a subfolder,
where an ``import`` of them would fail only when run.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Any

import pytest

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


# -- nothing reaches into tests/ through sys.path ----------------------------------

_PATH_CALLS = {"insert", "append", "extend"}


class _Paths:
    """Folds the path expressions a module builds from ``__file__`` into real paths.

    Knows ``Path(__file__)``, ``.resolve()``, ``.parent``, ``.parents[n]``, ``/``,
    ``str()``, ``os.path.join/dirname/abspath/realpath``, string constants and the
    module's own top-level names; anything else is ``None`` (unknown).
    """

    def __init__(self, path: Path, tree: ast.Module) -> None:
        self.file = path
        self.names: dict[str, Any] = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name):
                    self.names[target.id] = self.eval(node.value)

    def eval(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value
        if isinstance(node, ast.Name):
            return self.file if node.id == "__file__" else self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self.eval(node.value)
            if isinstance(base, Path) and node.attr == "parent":
                return base.parent
            if isinstance(base, Path) and node.attr == "parents":
                return ("parents", base)
            return None
        if isinstance(node, ast.Subscript):
            base = self.eval(node.value)
            if isinstance(base, tuple) and isinstance(node.slice, ast.Constant):
                return base[1].parents[node.slice.value]
            return None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = self.eval(node.left), self.eval(node.right)
            if isinstance(left, Path) and isinstance(right, str | Path):
                return left / right
            return None
        if isinstance(node, ast.Call):
            func = ast.unparse(node.func)
            args = [self.eval(a) for a in node.args]
            if func in ("Path", "pathlib.Path", "str", "os.fspath") and len(args) == 1:
                return Path(args[0]) if isinstance(args[0], str | Path) else None
            if func in ("os.path.dirname",) and isinstance(args[0], str | Path):
                return Path(args[0]).parent
            if func in ("os.path.abspath", "os.path.realpath") and isinstance(args[0], str | Path):
                return Path(args[0])
            if func == "os.path.join" and args and all(isinstance(a, str | Path) for a in args):
                return Path(*args)
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute"):
                return self.eval(node.func.value)
            return None
        return None


def _into_tests(value: Any, root: Path) -> bool | None:
    """True if ``value`` is a path into ``root/tests``; None when it is not known."""
    if not isinstance(value, str | Path):
        return None
    p = Path(os.path.normpath(value if Path(value).is_absolute() else root / value))
    return p == root / "tests" or (root / "tests") in p.parents


def sys_path_problems(path: Path, root: Path = ROOT) -> list[str]:
    """Every ``sys.path``/``PYTHONPATH`` change in ``path`` that goes into ``tests/``
    (or whose target cannot be worked out), as ``file:line: what``."""
    tree = ast.parse(path.read_text())
    paths = _Paths(path, tree)
    found: list[tuple[int, ast.expr]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = ast.unparse(node.func.value)
            if owner == "sys.path" and node.func.attr in _PATH_CALLS and node.args:
                found.append((node.lineno, node.args[-1]))
            if ast.unparse(node.func) == "site.addsitedir" and node.args:
                found.append((node.lineno, node.args[0]))
        elif isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                text = ast.unparse(t)
                if text == "sys.path" or text.startswith("sys.path[") or "PYTHONPATH" in text:
                    found.append((node.lineno, node.value))
        elif isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if isinstance(k, ast.Constant) and k.value == "PYTHONPATH":
                    found.append((node.lineno, v))
    problems = []
    for line, expr in found:
        values = expr.elts if isinstance(expr, ast.List | ast.Tuple) else [expr]
        for v in values:
            verdict = _into_tests(paths.eval(v), root)
            if verdict is not False:
                what = "into tests/" if verdict else "to a place this check cannot work out"
                problems.append(f"{path}:{line}: sys.path/PYTHONPATH {what}: {ast.unparse(v)}")
    return problems


def test_nothing_puts_the_test_tree_on_sys_path() -> None:
    offenders = [
        problem
        for tree in ("benches", "tools", "python")
        for p in sorted((ROOT / tree).rglob("*.py"))
        for problem in sys_path_problems(p)
    ]
    assert not offenders, offenders


@pytest.mark.parametrize(
    "source",
    [
        "import sys\nfrom pathlib import Path\nROOT = Path(__file__).resolve().parents[1]\n"
        'sys.path.insert(0, str(ROOT / "tests"))\n',
        "import os, sys\n"
        'sys.path.append(os.path.join(os.path.dirname(__file__), "..", "tests", "unit"))\n',
        'import sys\nfrom pathlib import Path\nTESTS = Path(__file__).parent.parent / "tests"\n'
        "sys.path[:0] = [str(TESTS)]\n",
        'import sys\nsys.path += ["tests"]\n',
        'import os\nos.environ["PYTHONPATH"] = "tests"\n',
        'import subprocess\nsubprocess.run(["x"], env={"PYTHONPATH": "tests"})\n',
        "import sys\nsys.path.insert(0, sys.argv[1])\n",  # cannot be worked out: flagged
    ],
)
def test_the_sys_path_check_can_fail(tmp_path: Path, source: str) -> None:
    tool = tmp_path / "tools" / "t.py"
    tool.parent.mkdir()
    tool.write_text(source)
    assert sys_path_problems(tool, tmp_path)
    (tmp_path / "tools" / "ok.py").write_text(
        'import sys\nfrom pathlib import Path\nsys.path.insert(0, str(Path(__file__).parent.parent / "benches" / "python"))\n'
    )
    assert sys_path_problems(tmp_path / "tools" / "ok.py", tmp_path) == []
