"""Hybrid dictionary: dense + sparse score fusion over the same entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse as sp

from .dense import DictionaryIndex
from .sparse import SparseIndex

SPARSE_DIR = "sparse"  # where a hybrid's sparse half is saved, inside the dense index's directory


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
    computed exactly for every candidate, all queries of a batch at once.
    """

    def __init__(self, dense: DictionaryIndex, sparse_index: SparseIndex | None = None,
                 sparse_weight: float = 0.5, pool: int = 64):
        self.dense = dense
        self.sparse = sparse_index if sparse_index is not None else SparseIndex.like(dense)
        if self.sparse.texts != dense.texts:
            raise ValueError("the sparse index must list the dense index's entries (use SparseIndex.like)")
        self.sparse_weight = sparse_weight
        self.pool = pool
        self.normalizer = dense.normalizer
        self.encoder = dense.encoder

    @property
    def names(self) -> list[str]:
        return self.dense.names

    @property
    def concept_ids(self) -> list[str]:
        return self.dense.concept_ids

    @property
    def meta(self) -> dict:
        return self.dense.meta

    def __len__(self) -> int:
        return len(self.dense)

    def __repr__(self) -> str:
        return f"HybridIndex({self.dense!r} + {self.sparse_weight} × TF-IDF)"

    def prepare(self, texts: Sequence[str], show_progress: bool | None = None) -> Any:
        return _Queries(self.dense.prepare(texts, show_progress=show_progress), self.sparse.prepare(texts))

    def search(self, queries: _Queries, k: int, sparse_weight: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` entries by fused score: (scores, positions), each (n, k); -1 pads."""
        weight = self.sparse_weight if sparse_weight is None else sparse_weight
        k = max(1, min(k, len(self)))
        n = len(queries)
        pool = max(self.pool, k)
        _, dense_pos = self.dense.search(queries.dense, pool)
        _, sparse_pos = self.sparse.search(queries.sparse, pool)
        candidates = np.concatenate([dense_pos, sparse_pos], axis=1)
        candidates.sort(axis=1)
        repeated = np.zeros_like(candidates, dtype=bool)
        repeated[:, 1:] = candidates[:, 1:] == candidates[:, :-1]
        valid = (candidates >= 0) & ~repeated
        rows, cols = np.nonzero(valid)
        fused = np.full(candidates.shape, -np.inf, np.float32)
        fused[rows, cols] = self.score_pairs(queries, rows, candidates[rows, cols], weight)
        order = np.argsort(-fused, axis=1, kind="stable")[:, :k]
        out_scores = np.take_along_axis(fused, order, axis=1)
        out_pos = np.where(np.isfinite(out_scores), np.take_along_axis(candidates, order, axis=1), -1)
        out_scores[~np.isfinite(out_scores)] = -np.inf
        return out_scores.astype(np.float32), out_pos.astype(np.int64).reshape(n, k)

    def score_pairs(self, queries: _Queries, rows: np.ndarray, positions: np.ndarray,
                    sparse_weight: float | None = None) -> np.ndarray:
        """Fused score (dense + ``sparse_weight`` × sparse cosine) of query ``rows[i]`` with entry ``positions[i]``."""
        weight = self.sparse_weight if sparse_weight is None else sparse_weight
        return self.dense.score_pairs(queries.dense, rows, positions) + \
            weight * self.sparse.score_pairs(queries.sparse, rows, positions)

    def add(self, ontology, show_progress: bool | None = None) -> int:
        """Add surface forms to both halves (see :meth:`DictionaryIndex.add`); returns how many entries were added."""
        before = len(self.dense)
        added = self.dense.add(ontology, show_progress=show_progress)
        self.sparse.extend(self.dense.names[before:], self.dense.texts[before:], self.dense.concept_ids[before:])
        self.sparse.concept_ids = list(self.dense.concept_ids)  # merged names may have joined ids
        return added
