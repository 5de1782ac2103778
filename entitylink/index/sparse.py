"""Sparse dictionary: TF-IDF over character n-grams of the names, searched by a top-k sparse product."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from .._io import atomic_directory
from ..errors import DataFormatError
from ..ontology import Ontology
from ..text.normalize import Normalizer
from .dense import DictionaryIndex

SPARSE_FORMAT = "entitylink-sparse/1"


class SparseIndex:
    """TF-IDF over character n-grams of the dictionary names, searched by cosine.

    The sparse half of BioSyn and scispacy's candidate generator: strong on spelling
    variants, blind to synonyms. Entries follow :meth:`~entitylink.ontology.Ontology.entries`,
    so a sparse and a dense index of one ontology list the same entries in the same order.
    Search multiplies the queries with the name matrix keeping only each query's top k
    (``sparse_dot_topn``), so memory stays (queries × k), not (queries × names).

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
        batch_size: int = 4096,
        *,
        _fitted: tuple[TfidfVectorizer, sp.csr_matrix] | None = None,
    ):
        self.names, self.texts, self.concept_ids = list(names), list(texts), list(concept_ids)
        self.normalizer = normalizer
        self.batch_size = batch_size
        self.ngram_range, self.analyzer = tuple(ngram_range), analyzer
        if _fitted is None:
            self.vectorizer = _vectorizer(self.ngram_range, analyzer)
            self.matrix = self.vectorizer.fit_transform(self.texts).tocsr()
        else:
            self.vectorizer, self.matrix = _fitted
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
        """Cosine of each query with every entry: a dense (n_queries, n_entries) array (small inputs only)."""
        return (queries @ self._matrix_t).toarray()

    def score_pairs(self, queries: sp.csr_matrix, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Cosine of query ``rows[i]`` with entry ``positions[i]``, for each i."""
        if len(rows) == 0:
            return np.empty(0, np.float32)
        products = queries[rows].multiply(self.matrix[positions])
        return np.asarray(products.sum(axis=1), dtype=np.float32).ravel()

    def search(self, queries: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` entries per query by cosine: (scores, positions), each (n, k); -1 pads."""
        from sparse_dot_topn import sp_matmul_topn

        k = max(1, min(k, len(self)))
        n = queries.shape[0]
        scores = np.zeros((n, k), np.float32)
        positions = np.full((n, k), -1, np.int64)
        for start in range(0, n, self.batch_size):
            block = queries[start : start + self.batch_size]
            top = sp_matmul_topn(block, self._matrix_t, top_n=k, sort=True).tocsr()
            for row in range(top.shape[0]):
                lo, hi = top.indptr[row], top.indptr[row + 1]
                positions[start + row, : hi - lo] = top.indices[lo:hi]
                scores[start + row, : hi - lo] = top.data[lo:hi]
        return scores, positions

    def extend(self, names: Sequence[str], texts: Sequence[str], concept_ids: Sequence[str]) -> None:
        """Append entries (e.g. those a dense index just added), weighted by the fitted vocabulary."""
        if not len(texts):
            return
        self.names += list(names)
        self.texts += list(texts)
        self.concept_ids += list(concept_ids)
        self.matrix = sp.vstack([self.matrix, self.vectorizer.transform(list(texts))]).tocsr()
        self._matrix_t = self.matrix.T.tocsr()

    # ---------------------------------------------------------------- saving
    def save(self, path: str | Path) -> Path:
        """Write the vocabulary (JSON), IDF weights (``.npy``) and name matrix (``.npz``), atomically.

        The entries themselves are not repeated: they are the dense index's, beside it.
        """
        path = Path(path)
        with atomic_directory(path) as tmp:
            vocabulary = {term: int(column) for term, column in self.vectorizer.vocabulary_.items()}
            (tmp / "vocabulary.json").write_text(json.dumps(vocabulary, ensure_ascii=False))
            np.save(tmp / "idf.npy", self.vectorizer.idf_.astype(np.float64), allow_pickle=False)
            sp.save_npz(tmp / "matrix.npz", self.matrix, compressed=False)
            meta = {"format": SPARSE_FORMAT, "ngram_range": list(self.ngram_range), "analyzer": self.analyzer,
                    "count": len(self), "vocabulary": len(vocabulary)}
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path, dense: DictionaryIndex) -> SparseIndex:
        """Open a sparse index saved beside ``dense`` (whose entries it scores)."""
        path = Path(path)
        try:
            meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
            vocabulary = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
            idf = np.load(path / "idf.npy", allow_pickle=False)
            matrix = sp.load_npz(path / "matrix.npz").tocsr()
        except (OSError, ValueError) as err:
            raise DataFormatError(path, None, f"unreadable sparse index ({err})") from err
        if meta.get("format") != SPARSE_FORMAT:
            raise DataFormatError(path / "meta.json", None, f"unknown sparse format {meta.get('format')!r}")
        if matrix.shape != (len(dense), len(vocabulary)) or len(idf) != len(vocabulary):
            raise DataFormatError(path, None, f"the sparse index holds {matrix.shape[0]} entries and "
                                              f"{len(vocabulary)} n-grams; the dense index beside it {len(dense)}")
        vectorizer = _vectorizer(tuple(meta["ngram_range"]), meta["analyzer"])
        vectorizer.vocabulary_ = vocabulary
        vectorizer.idf_ = idf
        return cls(dense.names, dense.texts, dense.concept_ids, dense.normalizer, tuple(meta["ngram_range"]),
                   meta["analyzer"], _fitted=(vectorizer, matrix))


def _vectorizer(ngram_range: tuple[int, int], analyzer: str) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer=analyzer, ngram_range=ngram_range, lowercase=False, dtype=np.float32)
