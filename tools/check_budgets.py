"""Report files over their size budgets (STYLE item 5); exit 1 if any.

Budgets: every module of ``python/ssmd/`` and every Rust file under ``rust/``
(tests included) 700 lines; a Python connector module
(``python/ssmd/connectors/<venue>/*.py``) 300 lines; a Rust venue parser
(``rust/venues/<venue>.rs``) 500 lines. A module that grows past its
budget is split by job; logic two venues share belongs in a base module.
There is no list of exceptions.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: (glob, lines, file names left out)
BUDGETS = [
    ("rust/venues/*.rs", 500, {"mod.rs"}),
    ("python/ssmd/connectors/*/*.py", 300, {"__init__.py"}),
    ("python/ssmd/**/*.py", 700, set()),
    ("rust/**/*.rs", 700, set()),
]


def over_budget(root: Path = ROOT) -> dict[str, str]:
    """``{path: "n lines (budget b)"}`` of every file over one of its budgets."""
    over: dict[str, str] = {}
    for pattern, limit, skip in BUDGETS:
        for path in sorted(root.glob(pattern)):
            if path.name in skip:
                continue
            n = len(path.read_text().splitlines())
            rel = str(path.relative_to(root))
            if n > limit and rel not in over:
                over[rel] = f"{n} lines (budget {limit})"
    return over


def main() -> int:
    over = over_budget()
    problems = [f"over budget: {p}: {why}" for p, why in over.items()]
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
