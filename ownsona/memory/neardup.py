"""Grouping near-duplicate memories: nearest neighbours, pairs over a threshold, union-find.

Pure numpy, no database: the service hands it a snapshot of the active vectors and runs it in a
worker thread. Similarities are computed in blocks so memory stays bounded (block × n floats).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NEIGHBOURS = 10
BLOCK_ROWS = 512


@dataclass(frozen=True, slots=True)
class Group:
    ids: list[int]  # ascending
    max_similarity: float
    pair_count: int
    best: dict[int, float]  # id -> its highest similarity to another member


def _pairs(ids: np.ndarray, matrix: np.ndarray, threshold: float, neighbours: int) -> dict[tuple[int, int], float]:
    pairs: dict[tuple[int, int], float] = {}
    n = len(ids)
    k = min(neighbours, n - 1)
    if k <= 0:
        return pairs
    for start in range(0, n, BLOCK_ROWS):
        block = matrix[start : start + BLOCK_ROWS] @ matrix.T
        rows = np.arange(block.shape[0])
        block[rows, rows + start] = -np.inf  # a row is not its own neighbour
        top = np.argpartition(-block, k - 1, axis=1)[:, :k]
        for row, columns in enumerate(top):
            for column in columns:
                similarity = float(block[row, column])
                if similarity >= threshold:
                    a, b = int(ids[start + row]), int(ids[column])
                    key = (min(a, b), max(a, b))
                    pairs[key] = max(similarity, pairs.get(key, -1.0))
    return pairs


def find_groups(
    ids: np.ndarray, matrix: np.ndarray, threshold: float, *, neighbours: int = NEIGHBOURS
) -> list[Group]:
    """Clusters of ids linked by pairs at or above `threshold`, most similar first, then lowest id."""
    pairs = _pairs(ids, matrix, threshold, neighbours)
    parent: dict[int, int] = {}

    def root(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for x in parent:
        members.setdefault(root(x), []).append(x)
    group_pairs: dict[int, list[float]] = {}
    best: dict[int, float] = {}
    for (a, b), similarity in pairs.items():
        group_pairs.setdefault(root(a), []).append(similarity)
        best[a] = max(best.get(a, -1.0), similarity)
        best[b] = max(best.get(b, -1.0), similarity)
    groups = [
        Group(sorted(group_ids), max(group_pairs[key]), len(group_pairs[key]), {i: best[i] for i in group_ids})
        for key, group_ids in members.items()
    ]
    groups.sort(key=lambda g: (-g.max_similarity, g.ids[0]))
    return groups
