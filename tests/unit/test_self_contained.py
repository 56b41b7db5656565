"""The repository stands alone: nothing in it points into the design notes beside it.

Code, docs, help texts, tests, benches and tools say what they need in their
own words (``docs/``) and read fixtures from inside the repository. The one
exception is migration 0001, whose text is checksummed by every database it
ran on; its comments stay as they were written.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: spelled in two pieces so this file does not match itself
POINTERS = ("../" + "shared", "DESIGN" + " §")
TREES = ("python", "docs", "tests", "benches", "tools")
SKIP_DIRS = {"__pycache__", ".venv", "target", ".mypy_cache", ".ruff_cache", ".pytest_cache"}


def kept(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    return rel.parts[:4] == ("python", "ssmd", "secmaster", "migrations") and (
        path.name.startswith("0001_") and path.suffix == ".sql"
    )


def pointers(root: Path = ROOT) -> list[str]:
    """``path:line: text`` of every line that points into the notes beside the repository."""
    files = [root / "README.md"] + [
        p
        for tree in TREES
        for p in sorted((root / tree).rglob("*"))
        if p.is_file() and not SKIP_DIRS.intersection(p.relative_to(root).parts)
    ]
    found = []
    for path in files:
        if not path.is_file() or kept(path, root):
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:  # binary data (compressed fixtures, images)
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if any(p in line for p in POINTERS):
                found.append(f"{path.relative_to(root)}:{n}: {line.strip()[:120]}")
    return found


def test_nothing_points_outside_the_repository() -> None:
    found = pointers()
    assert not found, "\n".join(found)


def test_the_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("ssmd\n")
    assert pointers(tmp_path) == []
    mig = tmp_path / "python" / "ssmd" / "secmaster" / "migrations"
    mig.mkdir(parents=True)
    (mig / "0001_secmaster.sql").write_text("-- tables (" + "DESIGN" + " §6)\n")
    assert pointers(tmp_path) == []  # the checksummed migration keeps its comments
    (mig / "0004_more.sql").write_text("-- more (" + "DESIGN" + " §6)\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "x.md").write_text("see ../" + "shared/DESIGN.md\n")
    (tmp_path / "benches").mkdir()
    (tmp_path / "benches" / "b.py").write_bytes(b"\x1f\x8b\x08\xff\xfe")  # binary: skipped
    assert [p.split(":")[0] for p in pointers(tmp_path)] == [
        "python/ssmd/secmaster/migrations/0004_more.sql",
        "docs/x.md",
    ]
