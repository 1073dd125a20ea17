"""Texts for the benchmarks: memories to seed and store, queries to recall with.

The eval set in `bench/data/` supplies 1,023 facts and 360 questions worded as a user would; past
those, facts are made from templates, deterministically, so every run stores the same 10,000
memories and every text is unique (an exact duplicate would short-circuit `remember`).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "data"

_NAMES = """Maria Tom Anna Lukas Sofia Jonas Emma Noah Mia Elias Lena Felix Clara Paul Hannah Leon Priya Kenji
Omar Ines""".split()
_PLACES = "Lisbon Oslo Kyoto Porto Vienna Seattle Nairobi Lyon Krakow Dublin Austin Hanoi Bergen Quito Tartu".split()
_THINGS = [
    "prefers green tea over coffee", "is allergic to peanuts", "plays the cello on Sundays",
    "runs a half marathon every spring", "collects old maps", "is learning Portuguese",
    "keeps bees in the garden", "works night shifts on Fridays", "drives an electric van",
    "restores vintage bicycles", "volunteers at the food bank", "writes poems about the sea",
]
_TOPICS = "budget deadline review offsite launch audit migration workshop retrospective roadmap".split()


@cache
def eval_facts() -> tuple[str, ...]:
    return tuple(json.loads(line)["text"] for line in (DATA / "facts.jsonl").read_text("utf-8").splitlines() if line)


@cache
def queries() -> tuple[str, ...]:
    return tuple(
        json.loads(line)["question"] for line in (DATA / "questions.jsonl").read_text("utf-8").splitlines() if line
    )


def template_fact(n: int, tag: str = "") -> str:
    """Fact number `n`: unique for each (n, tag), plausible enough to tokenize like real text."""
    name = _NAMES[n % len(_NAMES)]
    place = _PLACES[(n // len(_NAMES)) % len(_PLACES)]
    thing = _THINGS[(n // 7) % len(_THINGS)]
    topic = _TOPICS[(n // 11) % len(_TOPICS)]
    marker = f" ({tag})" if tag else ""
    return f"{name} from {place} {thing}; the {topic} note {n}{marker} mentions it."


def seed_facts(count: int) -> list[str]:
    """`count` distinct memory texts: the eval facts first, then template facts."""
    facts = list(eval_facts()[:count])
    facts.extend(template_fact(n) for n in range(count - len(facts)))
    return facts
