"""Tag normalisation: trim, case-fold, map synonyms to one canonical tag, de-duplicate in order.

The synonym map is the Java server's, so tags written by either implementation agree.
"""

from __future__ import annotations

from collections.abc import Iterable

from ownsona.memory.errors import invalid

MAX_TAG_CHARS = 64
MAX_TAGS = 16

_CANONICAL: dict[str, tuple[str, ...]] = {
    "software": ("tech", "technology", "programming", "coding", "code", "dev", "development", "engineering"),
    "publishing": ("book", "books", "writing", "author", "authorship"),
    "personal": ("bio", "biography", "personal-info"),
    "family": ("relatives", "kin"),
    "work": ("job", "career", "employment"),
    "preferences": ("preference", "pref", "prefs", "likes", "dislikes"),
    "health": ("medical", "medicine", "medications"),
    "philosophy": ("religion", "beliefs", "values"),
}
SYNONYMS: dict[str, str] = {alias: canonical for canonical, aliases in _CANONICAL.items() for alias in aliases}


def normalize_tag(tag: str) -> str:
    """One tag in canonical form ("  Programming " → "software")."""
    key = tag.strip().casefold()
    return SYNONYMS.get(key, key)


def normalize_tags(tags: Iterable[str | None] | None, *, field: str = "tags") -> list[str]:
    """Validate and normalise a tag list: blanks skipped, ≤64 chars each, ≤16 distinct."""
    result: list[str] = []
    for index, raw in enumerate(tags or ()):
        if raw is None or not raw.strip():
            continue
        trimmed = raw.strip()
        if len(trimmed) > MAX_TAG_CHARS:
            raise invalid(f"{field}[{index}] is too long: {len(trimmed)} > {MAX_TAG_CHARS}")
        tag = normalize_tag(trimmed)
        if tag not in result:
            result.append(tag)
    if len(result) > MAX_TAGS:
        raise invalid(f"Too many tags in {field} (max {MAX_TAGS}).")
    return result
