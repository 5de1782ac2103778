"""Simulated dictionaries of name embeddings, for search benchmarks at sizes we can't encode here.

Real name embeddings are not random points on a sphere: their variance falls off like a power law over
the principal axes, they share a common mean direction, names of one concept sit together, and concepts
come in families of look-alikes (type 1 / type 2 diabetes). The generator has each of these:

    name = mean + family + concept offset + name offset        (then scaled to unit length)

with Gaussian parts whose per-axis variance follows the spectrum measured on MiniLM embeddings of the
111,356 distinct MEDIC + HPO names (slope -0.58 over the first 13% of axes, -1.15 to 52%, -2.5 after),
family : concept : name variance 0.5 : 0.25 : 0.4 (each name's offset scaled by U(0.15, 1)), and
names per concept drawn to match MEDIC + HPO (37% single names, median 2, mean 3.8, 99th centile
about 38). ``benchmarks/README.md`` compares its nearest-neighbour statistics and recall with the real
embeddings: it is calibrated to be no easier.

Vectors come in seeded chunks of 100,000, so a 4M x 768 set is never held in memory at once, and any
chunk can be made again bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

CHUNK = 100_000
FAMILY, CONCEPT, NAME = 0.5, 0.25, 0.4
FAMILY_SIZE = 8
MEAN_NORM = 0.39
TOTAL_VARIANCE = 0.85


def spectrum(dim: int) -> np.ndarray:
    """Per-axis variance (sums to TOTAL_VARIANCE), the measured 384-axis shape stretched to ``dim``."""
    i = np.arange(1, dim + 1) * (384 / dim)
    knee1, knee2 = 50, 200
    lam = np.where(i <= knee1, i**-0.58, knee1**-0.58 * (i / knee1) ** -1.15)
    lam = np.where(i <= knee2, lam, knee1**-0.58 * (knee2 / knee1) ** -1.15 * (i / knee2) ** -2.5)
    return lam * TOTAL_VARIANCE / lam.sum()


class SimulatedDictionary:
    """``n`` unit vectors of dimension ``dim``, generated chunk by chunk from ``seed``."""

    def __init__(self, n: int, dim: int, seed: int = 0):
        self.n, self.dim, self.seed = n, dim, seed
        self.scale = np.sqrt(spectrum(dim)).astype(np.float32)
        mean = np.random.default_rng([seed, dim]).normal(size=dim)
        self.mean = (mean * MEAN_NORM / np.linalg.norm(mean)).astype(np.float32)

    @property
    def n_chunks(self) -> int:
        return (self.n + CHUNK - 1) // CHUNK

    def _rows(self, c: int) -> int:
        return min(CHUNK, self.n - c * CHUNK)

    def _concepts(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Concept centres of chunk ``c`` and, for each of its rows, the concept it names."""
        rows = self._rows(c)
        rng = np.random.default_rng([self.seed, self.dim, c, 0])
        sizes = 1 + np.minimum(rng.zipf(2.0, size=rows), 300)
        sizes[rng.random(rows) < 0.37] = 1
        sizes = sizes[: np.searchsorted(np.cumsum(sizes), rows) + 1]
        n_families = len(sizes) // FAMILY_SIZE + 1
        families = self.mean + np.sqrt(FAMILY) * self.scale * rng.standard_normal((n_families, self.dim), np.float32)
        centres = families[rng.integers(0, n_families, len(sizes))]
        centres += np.sqrt(CONCEPT) * self.scale * rng.standard_normal(centres.shape, np.float32)
        owner = np.repeat(np.arange(len(sizes)), sizes)[:rows]
        return centres, owner

    def _names_of(self, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        spread = rng.uniform(0.15, 1.0, size=(len(centres), 1)).astype(np.float32)
        x = centres + np.sqrt(NAME) * self.scale * spread * rng.standard_normal(centres.shape, np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def chunk(self, c: int) -> np.ndarray:
        """Rows ``c·CHUNK`` to ``(c+1)·CHUNK`` as float32, unit length."""
        centres, owner = self._concepts(c)
        return self._names_of(centres[owner], np.random.default_rng([self.seed, self.dim, c, 1]))

    def chunks(self) -> Iterator[np.ndarray]:
        for c in range(self.n_chunks):
            yield self.chunk(c)

    def sample(self, rows: int) -> np.ndarray:
        """The first ``rows`` vectors (for training IVF and PQ), spread over the first chunks."""
        out = []
        for c in range(self.n_chunks):
            out.append(self.chunk(c))
            if sum(len(x) for x in out) >= rows:
                break
        return np.vstack(out)[:rows]

    def queries(self, count: int) -> np.ndarray:
        """New names of existing concepts (like mentions), spread over the chunks in proportion."""
        out = []
        per_chunk = np.bincount(np.random.default_rng([self.seed, self.dim, 2]).integers(0, self.n, count) // CHUNK,
                                minlength=self.n_chunks)
        for c, k in enumerate(per_chunk):
            if k:
                centres, owner = self._concepts(c)
                rng = np.random.default_rng([self.seed, self.dim, c, 2])
                out.append(self._names_of(centres[owner[rng.integers(0, len(owner), k)]], rng))
        return np.vstack(out)

    def exact_top(self, queries: np.ndarray, k: int = 5) -> np.ndarray:
        """Ids of the exact top ``k`` by inner product, streaming over the chunks."""
        best_scores = np.full((len(queries), k), -np.inf, np.float32)
        best_ids = np.zeros((len(queries), k), np.int64)
        for c, x in enumerate(self.chunks()):
            scores = queries @ x.T
            top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            all_scores = np.hstack([best_scores, np.take_along_axis(scores, top, 1)])
            all_ids = np.hstack([best_ids, top + c * CHUNK])
            keep = np.argsort(-all_scores, axis=1)[:, :k]
            best_scores, best_ids = np.take_along_axis(all_scores, keep, 1), np.take_along_axis(all_ids, keep, 1)
        return best_ids


def recall_at(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean share of the exact top-k ids that the search also returned."""
    k = truth.shape[1]
    return float(np.mean([len(set(t) & set(f[:k])) / k for t, f in zip(truth, found)]))
