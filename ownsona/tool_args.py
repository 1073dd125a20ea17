"""Argument models of the memory tools: the JSON Schemas clients see, and strict validation.

Names, defaults and meanings are the Java OwnSona's. What changes (§8.1 #7, #8, #28): types are
checked before the service runs, so `dry_run: "true"` or `id: "abc"` is INVALID_INPUT naming the
field, never a silent false or an internal error; enums, bounds and defaults are in the schema;
booleans are strict; a `null` element of a batch fails only that item. Unknown arguments are
ignored, as the Java server did, so older clients keep working.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool


def _blank_is_none(value: Any) -> Any:
    """An empty timestamp string means "not given", as in the Java server."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("Input should be a valid integer")
    return value


# SQLite integers are signed 64-bit; a larger id or count is refused here, by name, instead of
# overflowing in the driver.
SQL_INT_MAX = 2**63 - 1

Timestamp = Annotated[
    AwareDatetime | None,
    BeforeValidator(_blank_is_none),
    Field(description="ISO 8601 instant with a zone, e.g. 2027-01-01T00:00:00Z."),
]
MemoryId = Annotated[int, Field(ge=1, le=SQL_INT_MAX, description="The memory's id."), BeforeValidator(_no_bool)]
Flag = StrictBool
Tags = Annotated[
    list[str | None] | None,
    Field(description="Short topic labels; lower-cased and normalised (\"tech\" becomes \"software\"). "
                      "At most 16 distinct tags of up to 64 characters."),
]
Importance = Annotated[
    float | None,
    Field(ge=0.0, le=1.0, allow_inf_nan=False, description="How much the fact matters, 0 to 1 (default 0.5)."),
]
Count = Annotated[int, Field(ge=0, le=SQL_INT_MAX), BeforeValidator(_no_bool)]
Limit = Annotated[int, Field(ge=1, le=SQL_INT_MAX), BeforeValidator(_no_bool)] | None


class Args(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RememberItemArgs(Args):
    text: str = Field(
        description="The fact to keep, as one self-contained sentence in the user's words. Leave out "
                    "'Remember that' and similar lead-ins."
    )
    tags: Tags = None
    source_provider: str | None = Field(
        default=None, description="Which assistant or client supplied the fact, e.g. 'chatgpt', 'claude'."
    )
    importance: Importance = None
    capture_mode: Literal["explicit", "inferred"] | None = Field(
        default=None,
        description="'explicit' when the user asked to remember it, 'inferred' when you concluded it yourself.",
    )
    session_id: str | None = Field(default=None, description="The conversation this came from (≤256 chars).")
    dedup_policy: Literal["insert", "skip_if_near", "ask"] | None = Field(
        default=None,
        description="What to do with a near-duplicate: 'ask' (default) stores it and returns the similar "
                    "memories as candidates; 'skip_if_near' does not store it; 'insert' stores it without checking.",
    )
    expires_at: Timestamp = None
    last_confirmed_at: Timestamp = None


class RememberArgs(RememberItemArgs):
    pass


class RememberBatchArgs(Args):
    items: list[RememberItemArgs | None] = Field(description="The facts, each shaped like `remember`'s arguments.")
    source_provider: str | None = Field(default=None, description="Default source_provider for every item.")
    dedup_policy: Literal["insert", "skip_if_near", "ask"] | None = Field(
        default=None, description="Default dedup_policy for every item ('ask' when unset)."
    )


class RecallArgs(Args):
    query: str = Field(description="What to look for, in natural language or keywords.")
    limit: Limit = Field(default=None, description="How many matches (default 8, at most 50).")
    min_score: float | None = Field(
        default=None, ge=0.0, le=1.0, allow_inf_nan=False, description="Drop matches scoring below this (0 to 1)."
    )
    tags: Tags = Field(default=None, description="Only memories carrying at least one of these tags.")


class BuildContextPromptArgs(Args):
    user_prompt: str = Field(description="The user's message to wrap with the relevant known facts.")
    limit: Limit = Field(default=None, description="How many facts at most (default 8, at most 50).")
    max_chars: Limit = Field(default=None, description="Budget for the facts' text, in characters.")
    min_score: float | None = Field(default=None, ge=0.0, le=1.0, allow_inf_nan=False)
    tags: Tags = None


class CleanupFilterArgs(Args):
    untagged_only: Flag = Field(default=False, description="Only memories without tags.")
    min_chars: Count | None = Field(default=None, description="Only memories at least this long.")
    max_chars: Count | None = Field(default=None, description="Only memories at most this long.")
    not_confirmed_since: Timestamp = Field(
        default=None, description="Only memories never confirmed, or last confirmed before this instant."
    )


class ListMemoriesArgs(CleanupFilterArgs):
    limit: Limit = Field(default=None, description="Page size (default 20, at most 50).")
    offset: Count = Field(default=0, description="Rows to skip.")
    include_deleted: Flag = Field(default=False, description="Also list forgotten and expired memories.")


class UpdateFields(Args):
    text: str | None = Field(default=None, description="New text (re-embedded).")
    tags: Tags = Field(default=None, description="Replaces the whole tag list; [] removes all tags.")
    importance: Importance = None
    expires_at: Timestamp = Field(default=None, description="New expiry; an explicit null removes it.")
    last_confirmed_at: Timestamp = Field(default=None, description="When the fact was last confirmed; null clears it.")


class UpdateMemoryArgs(UpdateFields):
    id: MemoryId
    dry_run: Flag = Field(default=False, description="Validate and report without changing anything.")


class UpdateItemArgs(UpdateFields):
    id: MemoryId


class UpdateMemoryBatchArgs(Args):
    items: list[UpdateItemArgs | None] = Field(description="The updates, each with an id and the fields to change.")
    dry_run: Flag = Field(default=False, description="Validate and report without changing anything.")


class IdArgs(Args):
    id: MemoryId


class ForgetArgs(Args):
    id: MemoryId
    hard_delete: Flag = Field(
        default=False, description="Erase the row for good instead of keeping a tombstone (rarely wanted)."
    )
    reason: str | None = Field(default=None, description="Why it is forgotten, e.g. 'outdated' (≤1024 chars).")
    replaced_by_id: MemoryId | None = Field(default=None, description="The memory that supersedes this one.")
    dry_run: Flag = Field(default=False, description="Report what would happen without changing anything.")


class ForgetBatchArgs(Args):
    ids: list[MemoryId | None] = Field(
        description="Ids of the memories to forget."
    )
    reason: str | None = Field(default=None, description="One reason recorded on every tombstone.")
    dry_run: Flag = Field(default=False, description="Report what would happen without changing anything.")


class FindNearDuplicatesArgs(Args):
    threshold: float = Field(
        default=0.92, ge=0.5, le=1.0, allow_inf_nan=False, description="Cosine similarity for a pair to count."
    )
    max_groups: Annotated[int, BeforeValidator(_no_bool)] = Field(
        default=50, ge=1, le=500, description="How many groups to return."
    )


class TextSearchArgs(Args):
    text: str = Field(description="Substring to find, case-insensitive.")
    limit: Limit = Field(default=None, description="How many matches (default 20, at most 50).")


class CountMemoriesArgs(CleanupFilterArgs):
    include_deleted: Flag = Field(default=False, description="Count forgotten and expired memories too.")
    tags: Tags = Field(default=None, description="Only memories carrying at least one of these tags.")
    source_provider: str | None = Field(default=None, description="Only memories from this source.")


class NoArgs(Args):
    pass


class ListTagsArgs(Args):
    include_deleted: Flag = Field(default=False, description="Count tags of forgotten and expired memories too.")
    limit: Limit = Field(default=None, description="How many tags (default and maximum 500).")


class ExportArgs(Args):
    include_deleted: Flag = Field(default=True, description="Include forgotten and expired memories (default true).")


class SearchArgs(Args):
    query: str = Field(description="What to search the memory for.")


class FetchArgs(Args):
    id: str = Field(description="An id returned by `search`.")
