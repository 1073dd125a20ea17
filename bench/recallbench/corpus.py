"""Memory texts for `bench/recall`: the eval facts, then endless realistic variations of them.

`bench.harness.corpus` pads past the 1,009 eval facts with one template ("<name> from <place>
<hobby>; the <topic> note <n> mentions it."), which gives 100,000 rows a dozen distinct sentences:
every FTS term then matches thousands of rows and every vector sits in a tight cluster, which is
not what a person's memory looks like. Here fact `n` past the eval set is eval fact `n mod 1,009`
with its names, cities, projects, months and numbers redrawn from the eval world's own lists
(`bench/data/generate.py`), and one memory in three carries a second fact, as notes often do. So
the vocabulary, the sentence shapes and the word frequencies stay those of the eval set while the
subjects spread out. Deterministic: every run stores the same texts, each one unique (an exact
duplicate would short-circuit `remember` and make it look cheap).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from functools import cache

from bench.data import generate as world
from bench.harness.corpus import eval_facts, queries

__all__ = ["memory_texts", "queries"]

_NUMBER = re.compile(r"\d+")


@cache
def _swaps() -> tuple[re.Pattern[str], dict[str, list[str]]]:
    """One pattern matching any name, city, project or month, and each word's pool of substitutes."""
    pools = {
        "name": sorted(set(world.FIRST_NAMES)),
        "city": sorted(set(world.CITIES)),
        "project": sorted(set(world.PROJECT_NAMES)),
        "month": list(world.MONTHS),
    }
    pool_of = {word: pool for pool, words in pools.items() for word in words}
    words = sorted(pool_of, key=len, reverse=True)  # longest first: "Bergen" before "Berg"
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b")
    return pattern, {word: pools[pool] for word, pool in pool_of.items()}


def vary(text: str, rng: random.Random) -> str:
    """`text` with its subjects and numbers redrawn; the sentence itself is unchanged."""
    pattern, pool_of = _swaps()
    text = pattern.sub(lambda m: rng.choice(pool_of[m.group(0)]), text)
    return _NUMBER.sub(lambda m: _near(m.group(0), rng), text)


def _near(number: str, rng: random.Random) -> str:
    """A number close to `number` (a year stays a plausible year, a day a plausible day), same width."""
    value = int(number)
    spread = max(1, min(value // 4, 9))
    return str(max(0, value + rng.randint(-spread, spread))).zfill(len(number))


def memory_texts() -> Iterator[str]:
    """An endless stream of distinct memory texts: the eval facts as they are, then variations."""
    facts = eval_facts()
    seen: set[str] = set()
    for text in facts:
        seen.add(text)
        yield text
    n = 0
    while True:
        rng = random.Random(n)
        text = vary(facts[n % len(facts)], rng)
        if n % 3 == 2:
            text = f"{text} {vary(facts[rng.randrange(len(facts))], rng)}"
        while text in seen:  # a sentence without subjects or numbers: give it a second fact
            text = f"{text} {vary(facts[rng.randrange(len(facts))], rng)}"
        seen.add(text)
        n += 1
        yield text
