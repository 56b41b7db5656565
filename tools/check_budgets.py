"""Report files over the size budgets of STYLE.md item 5; exit 1 if any.

Budgets: a Rust venue parser (``rust/venues/<venue>.rs``) 500 lines, a Python
connector module (``python/ssmd/connectors/<venue>/*.py``) 300 lines. Shared
logic belongs in a base module, not in one venue.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = [
    ("rust/venues/*.rs", 500, {"mod.rs"}),
    ("python/ssmd/connectors/*/*.py", 300, {"__init__.py"}),
]


def main() -> int:
    over = []
    for pattern, limit, skip in BUDGETS:
        for path in sorted(ROOT.glob(pattern)):
            if path.name in skip:
                continue
            n = len(path.read_text().splitlines())
            if n > limit:
                over.append(f"{path.relative_to(ROOT)}: {n} lines (budget {limit})")
    for line in over:
        print(f"over budget: {line}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
