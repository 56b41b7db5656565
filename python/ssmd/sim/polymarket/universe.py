"""The simulated Polymarket universe: conditions (two tokens each) grouped into events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Condition", "build_universe"]


_TOPICS = (
    ("Crypto", "crypto", "Will {x} close above ${n} on {d}?", ("BTC", "ETH", "SOL", "XRP")),
    (
        "Politics",
        "politics",
        "Will {x} win the {d} election?",
        ("Alvarez", "Brooks", "Chen", "Diaz"),
    ),
    ("Sports", "sports", "Will the {x} win on {d}?", ("Hawks", "Lions", "Tigers", "Bears")),
    ("Finance", "finance", "Will {x} close above ${n} on {d}?", ("NVDA", "AAPL", "TSLA", "MSFT")),
    (
        "Pop Culture",
        "pop-culture",
        "Will {x} top the charts on {d}?",
        ("Aria", "Bex", "Cole", "Dune"),
    ),
)


_DATES = ("January 30", "February 27", "March 31", "April 30", "May 29", "June 30")


@dataclass
class Condition:
    """One binary market (two tokens) and its Gamma/CLOB metadata."""

    condition_id: str
    gamma_id: str
    question_id: str
    question: str
    slug: str
    yes: str
    no: str
    event: dict[str, Any]
    category: str
    tick: int  # price tick in thousandths (10 = 0.01)
    mid: int  # starting YES mid, thousandths
    closed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> tuple[str, str]:
        return self.yes, self.no


def build_universe(rng: Any, instruments: Sequence[str] | int | None) -> list[Condition]:
    ids: list[str | None]
    if instruments is None:
        ids = [None] * 100
    elif isinstance(instruments, int):
        ids = [None] * instruments
    else:
        ids = list(dict.fromkeys(instruments))
    out: list[Condition] = []
    event: dict[str, Any] = {}
    left = 0
    for i, cid in enumerate(ids):
        cat, tag, template, names = _TOPICS[i % len(_TOPICS)]
        if left == 0:
            left = 1 + int(rng.random() * 3)
            eid = str(100_000 + i)
            d = _DATES[(i // 7) % len(_DATES)]
            event = {
                "id": eid,
                "ticker": f"{tag}-{eid}",
                "slug": f"{tag}-{eid}",
                "title": template.format(x="___", n="___", d=d),
                "description": f"Simulated {cat.lower()} event {eid}.",
                "active": True,
                "closed": False,
                "archived": False,
                "negRisk": left > 1,
                "tags": [{"id": str(1000 + i % len(_TOPICS)), "label": cat, "slug": tag}],
                "startDate": "2026-01-01T00:00:00Z",
                "endDate": "2026-12-31T00:00:00Z",
            }
        left -= 1
        d = _DATES[(i // 7) % len(_DATES)]
        name = names[i % len(names)]
        question = template.format(x=name, n=100 + 5 * i, d=d)
        extreme = rng.random() < 0.1
        mid = (950 if rng.random() < 0.5 else 50) if extreme else 200 + int(rng.random() * 600)
        out.append(
            Condition(
                condition_id=cid or f"0x{rng.getrandbits(256):064x}",
                gamma_id=str(1_000_000 + i),
                question_id=f"0x{rng.getrandbits(256):064x}",
                question=question,
                slug=f"{tag}-{name.lower()}-{i}",
                yes=str(rng.getrandbits(255) | (1 << 254)),
                no=str(rng.getrandbits(255) | (1 << 254)),
                event=event,
                category=cat,
                tick=1 if extreme else 10,
                mid=mid,
                closed=instruments is None and i % 20 == 19,
            )
        )
    return out
