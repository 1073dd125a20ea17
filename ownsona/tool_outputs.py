"""Output models of the memory tools: they become each tool's `outputSchema`.

They describe the success payloads the service builds (the Java keys, §2.9 and §3); keys whose
value is null are omitted, so optional keys have no `null` in practice. Clients such as the `mcp`
SDK validate `structuredContent` against these schemas, and the end-to-end tests run every tool
through such a client, so a drift between payload and schema fails a test.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorInfo(Out):
    code: str
    message: str


class MemoryListed(Out):
    id: int
    text: str
    created_at: str = Field(description="ISO 8601, UTC")
    updated_at: str = Field(description="Last change of text, tags, importance or dates; ISO 8601")
    tags: list[str]
    importance: float
    capture_mode: str | None = None
    session_id: str | None = None
    expires_at: str | None = None
    last_confirmed_at: str | None = None
    deleted_at: str | None = None
    forget_reason: str | None = None
    replaced_by_id: int | None = None


class MemoryMatch(MemoryListed):
    score: float = Field(description="Similarity to the query in [0, 1]; for rows fetched by id, 0")
    source_provider: str | None = None


class RememberOut(Out):
    ok: Literal[True]
    memory_id: int
    message: Literal["Ok", "Already remembered", "Near-duplicate skipped"]
    candidates: list[MemoryMatch] | None = None
    previously_corrected: list[MemoryMatch] | None = None
    merged_fields: list[str] | None = Field(
        default=None, description="With 'Already remembered': what the repeated fact added to the stored one"
    )


class BatchItemError(Out):
    input_index: int
    ok: Literal[False]
    id: int | None = None
    error: ErrorInfo


class RememberItemOut(Out):
    input_index: int
    ok: Literal[True]
    memory_id: int
    message: str
    candidates: list[MemoryMatch] | None = None
    previously_corrected: list[MemoryMatch] | None = None
    merged_fields: list[str] | None = None


class RememberSummary(Out):
    total: int
    inserted: int
    duplicates: int
    errors: int


class RememberBatchOut(Out):
    ok: Literal[True]
    results: list[RememberItemOut | BatchItemError]
    summary: RememberSummary


class RecallOut(Out):
    ok: Literal[True]
    query: str
    matches: list[MemoryMatch]


class PromptOut(Out):
    ok: Literal[True]
    prompt: str
    memory_ids: list[int]


class ListOut(Out):
    ok: Literal[True]
    memories: list[MemoryListed]


class UpdateOut(Out):
    ok: Literal[True]
    memory_id: int
    dry_run: bool
    changed_fields: list[str]
    message: Literal["Ok", "Would update"]
    candidates: list[MemoryMatch] | None = Field(
        default=None, description="With new text: other memories that now say nearly the same (advice only)"
    )
    previously_corrected: list[MemoryMatch] | None = None


class UpdateItemOut(Out):
    input_index: int
    ok: Literal[True]
    id: int
    changed_fields: list[str]
    message: str
    candidates: list[MemoryMatch] | None = None
    previously_corrected: list[MemoryMatch] | None = None


class UpdateSummary(Out):
    total: int
    updated: int
    errors: int


class UpdateBatchOut(Out):
    ok: Literal[True]
    dry_run: bool
    results: list[UpdateItemOut | BatchItemError]
    summary: UpdateSummary


class ConfirmOut(Out):
    ok: Literal[True]
    memory_id: int
    last_confirmed_at: str
    message: Literal["Confirmed"]


class ForgetOut(Out):
    ok: Literal[True]
    memory_id: int
    dry_run: bool
    already_deleted: bool
    message: str


class ForgetItemOut(Out):
    input_index: int
    ok: Literal[True]
    id: int
    already_deleted: bool
    message: str


class ForgetSummary(Out):
    total: int
    deleted: int
    already_deleted: int
    errors: int


class ForgetBatchOut(Out):
    ok: Literal[True]
    dry_run: bool
    results: list[ForgetItemOut | BatchItemError]
    summary: ForgetSummary


class NearGroup(Out):
    ids: list[int]
    max_similarity: float
    pair_count: int
    memories: list[MemoryMatch]


class NearSummary(Out):
    groups: int
    pairs: int


class NearDuplicatesOut(Out):
    ok: Literal[True]
    threshold: float
    groups: list[NearGroup]
    summary: NearSummary


class TextSearchOut(Out):
    ok: Literal[True]
    matches: list[MemoryListed]


class GetOut(Out):
    ok: Literal[True]
    memory: MemoryMatch


class CountOut(Out):
    ok: Literal[True]
    count: int


class TagCount(Out):
    tag: str
    count: int


class ProviderCount(Out):
    provider: str
    count: int


class StatsOut(Out):
    ok: Literal[True]
    total: int
    active: int
    soft_deleted: int
    expired: int
    avg_importance: float | None = None
    oldest_created_at: str | None = None
    newest_created_at: str | None = None
    top_tags: list[TagCount]
    by_provider: list[ProviderCount]


class TagsOut(Out):
    ok: Literal[True]
    tags: list[TagCount]


class ExportedMemory(MemoryMatch):
    record_version: int
    embedding_provider: str | None = None
    embedding_model: str | None = None


class ExportOut(Out):
    ok: Literal[True]
    count: int
    memories: list[ExportedMemory]


class RestoreOut(Out):
    ok: Literal[True]
    memory_id: int
    restored: bool
    message: Literal["Restored", "Not deleted"]


class SearchResult(Out):
    id: str
    title: str
    url: str
    text: str


class SearchOut(Out):
    results: list[SearchResult]


class FetchOut(Out):
    id: str
    title: str
    text: str
    url: str
    metadata: dict[str, object] | None = None
