"""The in-memory vector index and near-duplicate grouping, on hand-made vectors."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ownsona.memory.neardup import find_groups
from ownsona.memory.store import NEVER, VectorRows
from ownsona.memory.vectors import UserVectors, VectorIndex, capacity_for


def unit(*values: float) -> np.ndarray:
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def rows(ids: list[int], vectors: list[np.ndarray], deleted: list[bool] | None = None) -> VectorRows:
    return VectorRows(
        ids=np.array(ids, dtype=np.int64),
        matrix=np.array(vectors, dtype=np.float32).reshape(len(ids), 3),
        deleted=np.array(deleted or [False] * len(ids), dtype=bool),
        expires_at=np.full(len(ids), NEVER, dtype=np.int64),
    )


def test_search_ranks_by_cosine_and_respects_scope_filters_and_expiry() -> None:
    index = UserVectors(rows([1, 2, 3], [unit(1, 0, 0), unit(1, 1, 0), unit(0, 0, 1)], [False, False, True]), 3)
    query = unit(1, 0.1, 0)
    assert [i for i, _ in index.search(query, 5, now=0)] == [1, 2]
    assert [i for i, _ in index.search(query, 5, now=0, scope="deleted")] == [3]
    assert [i for i, _ in index.search(query, 5, now=0, allowed=np.array([2, 3]))] == [2]
    assert [i for i, _ in index.search(query, 5, now=0, exclude=1)] == [2]
    index.set_state(1, deleted=False, expires_at=100)
    assert [i for i, _ in index.search(query, 5, now=100)] == [2]
    score = index.search(query, 1, now=0)[0][1]
    assert score == pytest.approx(float(unit(1, 0, 0) @ query))


def test_upsert_grows_keeps_ids_sorted_and_remove_hides() -> None:
    index = UserVectors(rows([], []), 3)
    for memory_id in range(200, 0, -3):  # out of order on purpose
        index.upsert(memory_id, unit(memory_id, 1, 0), False, None)
    assert list(index.ids[: index.size]) == sorted(range(200, 0, -3))
    index.upsert(50, unit(0, 0, 1), False, None)
    assert index.search(unit(0, 0, 1), 1, now=0)[0][0] == 50
    index.remove(50)
    assert 50 not in [i for i, _ in index.search(unit(0, 0, 1), 100, now=0)]


async def test_changes_made_while_loading_are_replayed() -> None:
    gate = asyncio.Event()

    async def loader(user_id: str) -> tuple[int, VectorRows]:
        await gate.wait()
        return 0, rows([1], [unit(1, 0, 0)])

    index = VectorIndex(loader, 3)
    loading = asyncio.create_task(index.for_user("u"))
    await asyncio.sleep(0)
    index.upsert("u", 2, unit(0, 1, 0))  # committed after the snapshot was read
    index.set_state("u", 1, deleted=True, expires_at=None)
    gate.set()
    vectors = await loading
    assert [i for i, _ in vectors.search(unit(0, 1, 0), 5, now=0)] == [2]
    assert [i for i, _ in vectors.search(unit(1, 0, 0), 5, now=0, scope="deleted")] == [1]


async def test_a_newer_bulk_epoch_reloads_every_user() -> None:
    epoch = 0

    async def loader(user_id: str) -> tuple[int, VectorRows]:
        return epoch, rows([1], [unit(1, 0, 0)] if epoch == 0 else [unit(0, 1, 0)])

    index = VectorIndex(loader, 3)
    first = await index.current("u", 0)
    epoch = 1
    second = await index.current("u", 1)
    assert second is not first and second.search(unit(0, 1, 0), 1, now=0)[0][1] == pytest.approx(1.0)


def test_near_duplicate_groups_use_union_find() -> None:
    ids = np.array([1, 2, 3, 4, 5], dtype=np.int64)
    matrix = np.array([unit(1, 0, 0), unit(1, 0.05, 0), unit(1, 0.1, 0), unit(0, 1, 0), unit(0, 1, 0.02)])
    groups = find_groups(ids, matrix.astype(np.float32), 0.99)
    assert [g.ids for g in groups] == [[4, 5], [1, 2, 3]]
    assert groups[1].pair_count == 3 and all(score >= 0.99 for score in groups[1].best.values())
    assert find_groups(ids[:1], matrix[:1].astype(np.float32), 0.5) == []


def test_one_pass_search_splits_live_and_deleted_rows() -> None:
    index = UserVectors(rows([1, 2, 3], [unit(1, 0, 0), unit(1, 0.2, 0), unit(1, 0.1, 0)], [False, False, True]), 3)
    live, dead = index.search_live_and_deleted(unit(1, 0, 0), 5, now=0, exclude=1)
    assert [i for i, _ in live] == [2] and [i for i, _ in dead] == [3]
    assert live == [h for h in index.search(unit(1, 0, 0), 5, now=0) if h[0] != 1]


def test_a_matrix_loaded_with_room_to_grow_is_kept_not_copied() -> None:
    """A second copy of the matrix would double the start-up peak (300 MB at 100,000 memories)."""
    loaded = rows([1, 2], [unit(1, 0, 0), unit(0, 1, 0)])
    roomy = np.zeros((capacity_for(2), 3), dtype=np.float32)
    roomy[:2] = loaded.matrix
    kept = UserVectors(VectorRows(loaded.ids, roomy, loaded.deleted, loaded.expires_at), 3)
    assert kept.matrix is roomy
    copied = UserVectors(loaded, 3)  # exactly sized: copied into a larger matrix
    assert copied.matrix is not loaded.matrix and len(copied.matrix) == capacity_for(2)
    for index in (kept, copied):
        for memory_id in range(3, 3 + capacity_for(2)):  # past the capacity: grows
            index.upsert(memory_id, unit(0, 0, 1), False, None)
        assert list(index.ids[: index.size]) == list(range(1, 3 + capacity_for(2)))
        assert index.search(unit(1, 0, 0), 1, now=0)[0][0] == 1
        assert index.search(unit(0, 1, 0), 1, now=0)[0][0] == 2
