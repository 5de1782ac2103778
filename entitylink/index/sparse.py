"""Sparse dictionary: TF-IDF over character n-grams of the names."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from ..ontology import Ontology
from ..text.normalize import Normalizer
from .dense import DictionaryIndex


class SparseIndex:
    """TF-IDF over character n-grams of the dictionary names, searched by cosine.

    The sparse half of BioSyn and scispacy's candidate generator: strong on spelling
    variants, blind to synonyms. Entries follow :meth:`~entitylink.ontology.Ontology.entries`,
    so a sparse and a dense index of one ontology list the same entries in the same order.

    Example:
        >>> idx = SparseIndex.build(Ontology.load("hpo"))  # doctest: +SKIP
        >>> Linker(idx).link("enlarged livr")  # doctest: +SKIP
    """

    def __init__(
        self,
        names: Sequence[str],
        texts: Sequence[str],
        concept_ids: Sequence[str],
        normalizer: Normalizer,
        ngram_range: tuple[int, int] = (2, 3),
        analyzer: str = "char_wb",
        batch_size: int = 512,
    ):
        self.names, self.texts, self.concept_ids = list(names), list(texts), list(concept_ids)
        self.normalizer = normalizer
        self.batch_size = batch_size
        self.vectorizer = TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, lowercase=False, dtype=np.float32)
        self.matrix = self.vectorizer.fit_transform(self.texts).tocsr()
        self._matrix_t = self.matrix.T.tocsr()

    @classmethod
    def build(
        cls, ontology: Ontology, normalizer: Normalizer | None = None, merge_shared_names: bool = True, **options
    ) -> SparseIndex:
        """TF-IDF index of an ontology's names (options: ``ngram_range``, ``analyzer``)."""
        normalizer = normalizer or Normalizer()
        entries = ontology.entries(normalizer, merge_shared_names=merge_shared_names)
        return cls(entries["name"], entries["text"], entries["concept_id"], normalizer, **options)

    @classmethod
    def like(cls, index: DictionaryIndex, **options) -> SparseIndex:
        """A sparse index over exactly the entries of a dense one (for fusion)."""
        return cls(index.names, index.texts, index.concept_ids, index.normalizer, **options)

    def __len__(self) -> int:
        return len(self.names)

    def prepare(self, texts: Sequence[str], show_progress: bool | None = None) -> sp.csr_matrix:
        """TF-IDF vectors of normalised query texts."""
        return self.vectorizer.transform(list(texts)).tocsr()

    def scores(self, queries: sp.csr_matrix) -> np.ndarray:
        """Cosine of each query with every entry: a dense (n_queries, n_entries) array."""
        return (queries @ self._matrix_t).toarray()

    def search(self, queries: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` entries per query by cosine: (scores, positions)."""
        k = max(1, min(k, len(self)))
        all_scores, all_positions = [], []
        for start in range(0, queries.shape[0], self.batch_size):
            block = self.scores(queries[start : start + self.batch_size])
            top = np.argpartition(-block, k - 1, axis=1)[:, :k]
            top_scores = np.take_along_axis(block, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            all_positions.append(np.take_along_axis(top, order, axis=1))
            all_scores.append(np.take_along_axis(top_scores, order, axis=1))
        if not all_scores:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        return np.vstack(all_scores).astype(np.float32), np.vstack(all_positions).astype(np.int64)
