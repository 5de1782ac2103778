"""Hybrid dictionary: dense + sparse score fusion over the same entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse as sp

from .dense import DictionaryIndex
from .sparse import SparseIndex


class _Queries:
    """Dense vectors and sparse rows of the same queries, indexed together."""

    def __init__(self, dense: np.ndarray, sparse_rows: sp.csr_matrix):
        self.dense, self.sparse = dense, sparse_rows

    def __getitem__(self, rows) -> _Queries:
        return _Queries(self.dense[rows], self.sparse[rows])

    def __len__(self) -> int:
        return len(self.dense)


class HybridIndex:
    """Dense + sparse fusion (BioSyn-style): score = dense cosine + ``sparse_weight`` × sparse cosine.

    Candidates are the union of each index's top ``pool`` entries; both scores are then
    computed exactly for every candidate.
    """

    def __init__(self, dense: DictionaryIndex, sparse_index: SparseIndex | None = None,
                 sparse_weight: float = 0.5, pool: int = 64):
        self.dense = dense
        self.sparse = sparse_index if sparse_index is not None else SparseIndex.like(dense)
        if self.sparse.texts != dense.texts:
            raise ValueError("the sparse index must list the dense index's entries (use SparseIndex.like)")
        self.sparse_weight = sparse_weight
        self.pool = pool
        self.names, self.concept_ids, self.normalizer = dense.names, dense.concept_ids, dense.normalizer
        self.encoder = dense.encoder

    def __len__(self) -> int:
        return len(self.dense)

    def prepare(self, texts: Sequence[str], show_progress: bool | None = None) -> Any:
        return _Queries(self.dense.prepare(texts, show_progress=show_progress), self.sparse.prepare(texts))

    def search(self, queries: _Queries, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, len(self)))
        pool = max(self.pool, k)
        _, dense_pos = self.dense.search(queries.dense, pool)
        _, sparse_pos = self.sparse.search(queries.sparse, pool)
        out_scores = np.full((len(queries), k), -np.inf, np.float32)
        out_pos = np.full((len(queries), k), -1, np.int64)
        for row in range(len(queries)):
            candidates = np.unique(np.concatenate([dense_pos[row], sparse_pos[row]]))
            candidates = candidates[candidates >= 0]
            dense_scores = self.dense.vectors(candidates) @ queries.dense[row]
            sparse_scores = (self.sparse.matrix[candidates] @ queries.sparse[row].T).toarray().ravel()
            fused = dense_scores + self.sparse_weight * sparse_scores
            order = np.argsort(-fused, kind="stable")[:k]
            out_scores[row, : len(order)] = fused[order]
            out_pos[row, : len(order)] = candidates[order]
        return out_scores, out_pos
