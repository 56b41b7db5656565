"""Fail when two test modules share a basename.

The test tree has no ``__init__.py`` files (pytest's default import mode), so
``tests/a/test_x.py`` and ``tests/b/test_x.py`` collide at collection time.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    seen: dict[str, list[Path]] = defaultdict(list)
    for tree in ("tests", "benches/python"):
        for p in (ROOT / tree).rglob("*.py"):
            if p.name.startswith(("test_", "bench_")):
                seen[p.name].append(p.relative_to(ROOT))
    clashes = {k: v for k, v in seen.items() if len(v) > 1}
    for name, paths in sorted(clashes.items()):
        print(f"test module name used twice: {name}: {', '.join(map(str, paths))}")
    return 1 if clashes else 0


if __name__ == "__main__":
    sys.exit(main())
