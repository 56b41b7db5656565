"""Dependencies point one way: ``tools/check_imports.py`` on the tree, and on trees that break it.

The checker is run as a program (as ``make lint`` runs it); the synthetic
trees prove each rule can fail.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "check_imports.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(TOOL), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_package_keeps_its_layers() -> None:
    r = run()
    assert r.returncode == 0, r.stdout + r.stderr
    graph = run("--graph").stdout
    assert "== cli" in graph and "== base" in graph
    assert "ssmd.runtime.capture ->" in graph


def tree(tmp_path: Path, files: dict[str, str]) -> Path:
    """A minimal ``ssmd`` package with ``files`` (path under ssmd/ -> source) added."""
    base = {
        "__init__.py": "",
        "errors.py": "",
        "types.py": "from ssmd.errors import *\n",
        "core.py": "from ssmd._core import Batch\n",
        "runtime/__init__.py": "",
        "runtime/capture.py": "from ssmd.core import Batch\n",
        "connectors/__init__.py": "",
        "connectors/base.py": "from ssmd.runtime.capture import Batch\n",
        "sim/__init__.py": "",
        "cli/__init__.py": "from ssmd.connectors import base\n",
    }
    for name, text in {**base, **files}.items():
        p = tmp_path / "ssmd" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text))
    return tmp_path


def problems(tmp_path: Path, files: dict[str, str]) -> str:
    r = run("--src", str(tree(tmp_path, files)))
    assert (r.returncode == 0) == (r.stdout == ""), r.stdout + r.stderr
    return r.stdout


def test_a_clean_tree_passes(tmp_path: Path) -> None:
    assert problems(tmp_path, {}) == ""


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (  # the runtime reaches up into a connector, even only for a type
            {
                "runtime/capture.py": """
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from ssmd.connectors.base import VenueConnector
                """
            },
            "ssmd.runtime.capture (runtime) imports ssmd.connectors.base (parts), a layer above it",
        ),
        (  # an import inside a function counts too
            {"types.py": "def f():\n    from ssmd.cli import main\n"},
            "ssmd.types (base) imports ssmd.cli (cli), a layer above it",
        ),
        (
            {
                "runtime/a.py": "from ssmd.runtime import b\n",
                "runtime/b.py": "import ssmd.runtime.a\n",
            },
            "import cycle between modules: ssmd.runtime.a <-> ssmd.runtime.b",
        ),
        (  # no module cycle, but the packages know each other
            {
                "connectors/x.py": "from ssmd.secmaster.y import f\n",
                "secmaster/__init__.py": "",
                "secmaster/y.py": "def f(): pass\n",
                "secmaster/z.py": "from ssmd.connectors.base import VenueConnector\n",
            },
            "import cycle between packages ssmd.connectors <-> ssmd.secmaster",
        ),
        (
            {"sim/kalshi.py": "from ssmd.connectors import base\n"},
            "ssmd.sim.kalshi imports ssmd.connectors.base: ssmd.sim and ssmd.connectors stay apart",
        ),
        (
            {"runtime/capture.py": "from ssmd._core import Batch\n"},
            "ssmd.runtime.capture imports the Rust extension",
        ),
        (
            {
                "runtime/a.py": "_HIDDEN = 1\n",
                "runtime/capture.py": "from ssmd.runtime.a import _HIDDEN\n",
            },
            "ssmd.runtime.capture imports the private ssmd.runtime.a._HIDDEN",
        ),
        (
            {"runtime/__init__.py": "def __getattr__(name):\n    return name\n"},
            "module-level __getattr__ in ssmd.runtime",
        ),
        ({"gadgets.py": ""}, "ssmd.gadgets is in no layer"),
    ],
    ids=[
        "upward-under-TYPE_CHECKING",
        "upward-in-a-function",
        "module-cycle",
        "package-cycle",
        "sim-imports-connectors",
        "extension-outside-the-core",
        "private-name",
        "lazy-getattr",
        "unplaced-module",
    ],
)
def test_each_rule_fails_a_tree_that_breaks_it(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    assert message in problems(tmp_path, files)


def test_a_private_module_of_its_own_package_is_fine(tmp_path: Path) -> None:
    files = {"cli/_app.py": "app = 1\n", "cli/connect.py": "from ssmd.cli._app import app\n"}
    assert problems(tmp_path, files) == ""
