"""build_context_prompt's text: recalled facts, a separator, then the user's prompt.

The layout is the Java server's, byte for byte, so prompts built by either look the same. One fix
(§8.1 #12): when the character budget leaves out facts, the text says so instead of claiming that
nothing relevant was found.
"""

from __future__ import annotations

from collections.abc import Sequence

HEADER = "The following are previously known facts:\n\n"
NO_FACTS = "No relevant previously known facts were found.\n\n"
SEPARATOR = "-----------------\n\n"
PROMPT_HEADER = "The following is the user's prompt:\n\n"


def within_budget(facts: Sequence[str], max_chars: int | None) -> list[str]:
    """The leading facts whose total length stays within the budget; stops at the first misfit."""
    if max_chars is None:
        return list(facts)
    chosen: list[str] = []
    used = 0
    for fact in facts:
        if used + len(fact) > max_chars:
            break
        chosen.append(fact)
        used += len(fact)
    return chosen


def omitted_note(count: int) -> str:
    noun = "fact was" if count == 1 else "facts were"
    return f"{count} relevant {noun} left out to stay within max_chars.\n\n"


def build_prompt(user_prompt: str, facts: Sequence[str], omitted: int = 0) -> str:
    parts = [HEADER]
    if facts:
        parts.extend(f"{fact}\n\n" for fact in facts)
    elif not omitted:
        parts.append(NO_FACTS)
    if omitted:
        parts.append(omitted_note(omitted))
    parts += [SEPARATOR, PROMPT_HEADER, user_prompt]
    return "".join(parts)
