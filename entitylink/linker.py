"""Linker: mentions → top-k distinct concepts with scores."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, overload

import numpy as np
import pandas as pd

from .index import DictionaryIndex
from .normalize import Normalizer


class SearchIndex(Protocol):
    """What a linker needs of an index: entries, a normaliser, query preparation and top-k search."""

    names: list[str]
    concept_ids: list[str]
    normalizer: Normalizer

    def __len__(self) -> int: ...
    def prepare(self, texts: Sequence[str], show_progress: bool | None = None) -> Any: ...
    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]: ...


class Candidate(NamedTuple):
    """One linked concept: its id, the dictionary name that matched best, and the cosine score."""

    concept_id: str
    name: str
    score: float


class Linker:
    """Links mentions to the concepts of an index (dense :class:`DictionaryIndex`, sparse or hybrid).

    Each mention gets up to ``k`` distinct concepts (the best-scoring name of each),
    best first.

    Example:
        >>> linker = Linker.load("hpo-index")  # doctest: +SKIP
        >>> linker.link("heart attack", k=3)  # doctest: +SKIP
        [Candidate(concept_id='HP:0001658', name='Myocardial infarction', score=0.83), ...]
    """

    def __init__(self, index: SearchIndex, k: int = 5):
        if getattr(index, "encoder", True) is None:
            raise ValueError("the index has no encoder: build it with one or open it with DictionaryIndex.load")
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        self.index = index
        self.k = k

    @classmethod
    def load(cls, path: str | Path, k: int = 5, **encoder_options) -> Linker:
        """Open a saved index (and the model it was built with) as a linker."""
        return cls(DictionaryIndex.load(path, **encoder_options), k=k)

    @overload
    def link(self, mentions: str, k: int | None = ..., show_progress: bool | None = ...) -> list[Candidate]: ...
    @overload
    def link(
        self, mentions: Sequence[str], k: int | None = ..., show_progress: bool | None = ...
    ) -> list[list[Candidate]]: ...

    def link(self, mentions, k=None, show_progress=None):
        """Top-``k`` candidates for each mention (one list for a lone string).

        A mention that normalises to nothing (empty, only punctuation) gets no candidates.
        """
        single = isinstance(mentions, str)
        items = [mentions] if single else list(mentions)
        k = self.k if k is None else k
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        texts = [self.index.normalizer(m) for m in items]
        results: list[list[Candidate]] = [[] for _ in items]
        todo = [i for i, t in enumerate(texts) if t]
        if todo:
            queries = self.index.prepare([texts[i] for i in todo], show_progress=show_progress)
            for row, candidates in zip(todo, self._top_concepts(queries, len(todo), k)):
                results[row] = candidates
        return results[0] if single else results

    def _top_concepts(self, queries, n_queries: int, k: int) -> list[list[Candidate]]:
        n_entries = len(self.index)
        fetch = min(n_entries, max(4 * k, k + 16))
        out: list[list[Candidate] | None] = [None] * n_queries
        pending = np.arange(n_queries)
        while len(pending):
            scores, positions = self.index.search(queries[pending], fetch)
            retry = []
            for row, s_row, p_row in zip(pending, scores, positions):
                best: dict[str, Candidate] = {}
                for score, pos in zip(s_row, p_row):
                    if pos < 0:
                        break
                    cid = self.index.concept_ids[pos]
                    if cid not in best:
                        best[cid] = Candidate(cid, self.index.names[pos], float(score))
                        if len(best) == k:
                            break
                if len(best) < k and fetch < n_entries:
                    retry.append(row)
                else:
                    out[row] = list(best.values())
            pending = np.asarray(retry, dtype=np.int64)
            fetch = min(n_entries, fetch * 4)
        return out  # type: ignore[return-value]

    def link_frame(self, mentions: Sequence[str], k: int | None = None) -> pd.DataFrame:
        """Candidates as a long table: ``mention``, ``rank``, ``concept_id``, ``name``, ``score``."""
        rows = [
            {"mention": m, "rank": r + 1, **c._asdict()}
            for m, cands in zip(mentions, self.link(list(mentions), k=k))
            for r, c in enumerate(cands)
        ]
        return pd.DataFrame(rows, columns=["mention", "rank", "concept_id", "name", "score"])
