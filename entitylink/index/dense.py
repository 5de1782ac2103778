"""Embedding dictionary: every surface form encoded once, searched with FAISS."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .._io import atomic_directory, recover_directory
from .._version import __version__
from ..errors import DataFormatError, EntityLinkError, IndexMismatchError
from ..model.encoder import Encoder
from ..ontology import Ontology, count_ids, join_ids
from ..text.normalize import Normalizer
from .search import SearchSpec, after_fill, describe, make_index, set_search_parameters, training_size

logger = logging.getLogger(__name__)

FORMAT = "entitylink-index/1"
FAISS_FILE = "index.faiss"
ENTRIES_FILE = "entries.json"
META_FILE = "meta.json"


class DictionaryIndex:
    """Encoded surface forms of an ontology with their concept ids, searchable by inner product.

    Build one with :meth:`build`, save it with :meth:`save`, reopen it with :meth:`load`.
    Names are normalised before encoding; the normaliser is saved with the index and
    applied to queries by the :class:`~entitylink.linker.Linker`.

    With ``merge_shared_names`` (the BioSyn/SapBERT convention), a normalised name
    that several concepts share is one entry whose concept id joins theirs with ``|``.
    """

    def __init__(
        self,
        faiss_index: faiss.Index,
        names: Sequence[str],
        texts: Sequence[str],
        concept_ids: Sequence[str],
        normalizer: Normalizer,
        meta: dict,
        encoder: Encoder | None = None,
    ):
        if not (faiss_index.ntotal == len(names) == len(texts) == len(concept_ids)):
            raise ValueError("index, names, texts and concept ids must have the same length")
        self.faiss_index = faiss_index
        self.names = list(names)
        self.texts = list(texts)
        self.concept_ids = list(concept_ids)
        self.normalizer = normalizer
        self.meta = meta
        self.encoder = encoder

    def __len__(self) -> int:
        return len(self.names)

    def vectors(self, positions: np.ndarray) -> np.ndarray:
        """Stored embeddings of the given entries."""
        if not len(positions):
            return np.empty((0, self.dim), np.float32)
        return self.faiss_index.reconstruct_batch(np.ascontiguousarray(positions, dtype=np.int64))

    def __repr__(self) -> str:
        model = self.meta["encoder"]["model"]
        return f"DictionaryIndex({len(self)} names, {self.meta.get('n_concepts')} concept ids, model={model!r})"

    @property
    def dim(self) -> int:
        return int(self.faiss_index.d)

    # ---------------------------------------------------------------- building
    @classmethod
    def build(
        cls,
        ontology: Ontology,
        encoder: Encoder,
        *,
        normalizer: Normalizer | None = None,
        merge_shared_names: bool = True,
        search: SearchSpec | str = "auto",
        chunk_size: int = 65_536,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> DictionaryIndex:
        """Encode every surface form of ``ontology`` with ``encoder``.

        ``search`` picks the FAISS index (``"auto"``, ``"flat"``, ``"hnsw"``, ``"ivf"``,
        ``"ivfpq"`` or a :class:`~entitylink.search.SearchSpec`). Names are encoded and added
        ``chunk_size`` at a time, so memory does not grow with a full matrix of vectors.
        """
        normalizer = normalizer or Normalizer()
        _warn_if_unsaved(encoder)
        entries = ontology.entries(normalizer, merge_shared_names=merge_shared_names)
        if entries.empty:
            raise EntityLinkError(f"{ontology.name}: no names left to index after normalisation")
        spec = SearchSpec.of(search).resolve(len(entries), encoder.dim)
        texts = entries["text"].tolist()
        logger.info("encoding %d dictionary names of %s (%s index)", len(texts), ontology.name, spec.kind)
        index, sample_rows, sample = _new_faiss_index(
            spec, len(texts), encoder.dim,
            lambda rows: encoder.encode([texts[i] for i in rows], batch_size=batch_size, show_progress=False))
        if spec.float16:  # what the index stores of them anyway; halves what is held until the end
            sample = sample.astype(np.float16)
        show = len(texts) >= 2000 if show_progress is None else show_progress
        with tqdm(total=len(texts), unit="name", desc="encoding", disable=not show) as bar:
            for start in range(0, len(texts), chunk_size):
                stop = min(start + chunk_size, len(texts))
                # names of the training sample are already encoded: only the others are
                lo, hi = np.searchsorted(sample_rows, [start, stop])
                known = sample_rows[lo:hi] - start
                todo = np.setdiff1d(np.arange(stop - start), known, assume_unique=True)
                vectors = np.empty((stop - start, encoder.dim), dtype=np.float32)
                vectors[known] = sample[lo:hi]
                if len(todo):
                    vectors[todo] = encoder.encode([texts[start + i] for i in todo], batch_size=batch_size,
                                                   show_progress=False)
                index.add(vectors)
                bar.update(len(vectors))
        after_fill(index)
        meta = _meta(ontology, encoder, normalizer, merge_shared_names, entries, encoder.dim, spec, index)
        return cls(index, entries["name"], entries["text"], entries["concept_id"], normalizer, meta, encoder)

    def add(self, ontology: Ontology, show_progress: bool | None = None) -> int:
        """Add the surface forms of ``ontology`` (e.g. training mentions); returns how many entries were added.

        Names already in the index under the same normalised text join their concept ids
        to that entry (with ``merge_shared_names``) instead of adding a duplicate.
        """
        if self.encoder is None:
            raise ValueError("this index has no encoder to embed new names")
        merge = self.meta.get("merge_shared_names", True)
        new = ontology.entries(self.normalizer, merge_shared_names=merge)
        if merge:
            position = {text: i for i, text in enumerate(self.texts)}
            known = new["text"].map(position)
            for pos, cid in zip(known[known.notna()].astype(int), new.loc[known.notna(), "concept_id"]):
                self.concept_ids[pos] = join_ids([self.concept_ids[pos], cid])
            new = new[known.isna()]
        else:
            present = set(zip(self.texts, self.concept_ids))
            new = new[[(t, c) not in present for t, c in zip(new["text"], new["concept_id"])]]
        if len(new):
            vectors = self.encoder.encode(new["text"].tolist(), show_progress=show_progress)
            self.faiss_index.add(vectors)
            self.names += new["name"].tolist()
            self.texts += new["text"].tolist()
            self.concept_ids += new["concept_id"].tolist()
        self.meta["count"] = len(self)
        self.meta["n_concepts"] = count_ids(self.concept_ids)
        return len(new)

    @classmethod
    def build_sharded(
        cls,
        ontology: Ontology,
        encoder: Encoder,
        out: str | Path,
        *,
        normalizer: Normalizer | None = None,
        merge_shared_names: bool = True,
        search: SearchSpec | str = "auto",
        show_progress: bool | None = None,
        extra_files: dict[str, dict] | None = None,
        save: bool = True,
    ) -> DictionaryIndex | None:
        """Build and save an index with every ``torchrun`` rank encoding a contiguous shard of the names.

        Each rank writes its vectors to ``.OUT.parts/part-RANK.npy``; rank 0 joins them in
        order, builds the FAISS index, saves it to ``out`` and removes the parts. The
        result equals :meth:`build` on one process. Returns the index on rank 0, ``None``
        on the other ranks. Without torchrun it is :meth:`build` followed by :meth:`save`
        (``extra_files`` as there); with ``save=False`` rank 0 returns the index unsaved.
        """
        from ..model.distributed import context

        out = Path(out)
        ctx = context(encoder.device)
        if not ctx.active:
            index = cls.build(ontology, encoder, normalizer=normalizer, merge_shared_names=merge_shared_names,
                              search=search, show_progress=show_progress)
            if save:
                index.save(out, extra_files)
            return index
        normalizer = normalizer or Normalizer()
        entries = ontology.entries(normalizer, merge_shared_names=merge_shared_names)
        bounds = np.linspace(0, len(entries), ctx.world + 1).astype(int)
        parts = out.parent / f".{out.name}.parts"
        parts.mkdir(parents=True, exist_ok=True)
        texts = entries["text"].tolist()[bounds[ctx.rank] : bounds[ctx.rank + 1]]
        vectors = encoder.encode(texts, show_progress=ctx.progress(show_progress))
        np.save(parts / f"part-{ctx.rank}.npy", vectors)
        ctx.barrier()
        index = None
        if ctx.is_main:
            joined = np.vstack([np.load(parts / f"part-{r}.npy", allow_pickle=False) for r in range(ctx.world)])
            spec = SearchSpec.of(search).resolve(len(joined), encoder.dim)
            faiss_index, _, _ = _new_faiss_index(spec, len(joined), joined.shape[1], lambda rows: joined[rows])
            faiss_index.add(joined)
            after_fill(faiss_index)
            meta = _meta(ontology, encoder, normalizer, merge_shared_names, entries, joined.shape[1], spec,
                         faiss_index)
            index = cls(faiss_index, entries["name"], entries["text"], entries["concept_id"], normalizer, meta, encoder)
            if save:
                index.save(out, extra_files)
            for part in parts.iterdir():
                part.unlink()
            parts.rmdir()
        ctx.barrier()
        return index

    # ---------------------------------------------------------------- search
    def prepare(self, texts: Sequence[str], show_progress: bool | None = None) -> np.ndarray:
        """Query representations of normalised texts (their embeddings), for :meth:`search`."""
        if self.encoder is None:
            raise ValueError("this index has no encoder: build it with one or open it with DictionaryIndex.load")
        return self.encoder.encode(list(texts), show_progress=show_progress)

    def score_pairs(self, queries: np.ndarray, rows: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Inner product of query ``rows[i]`` with entry ``positions[i]``, for each i."""
        if len(rows) == 0:
            return np.empty(0, np.float32)
        unique, inverse = np.unique(positions, return_inverse=True)
        return np.einsum("ij,ij->i", self.vectors(unique)[inverse], queries[rows])

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` entries by inner product: (scores, entry positions), each (n, k); -1 pads."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"query vectors must have shape (n, {self.dim}), not {vectors.shape}")
        k = max(1, min(k, len(self)))
        if len(vectors) == 0:
            return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
        if _is_flat_inner_product(self.faiss_index):
            return _exact_search(self.faiss_index, vectors, k)
        return self.faiss_index.search(vectors, k)

    # ---------------------------------------------------------------- saving
    def save(self, path: str | Path, extra_files: dict[str, dict] | None = None,
             add_files: Callable[[Path], None] | None = None) -> Path:
        """Write the index directory atomically (FAISS file, entries JSON, metadata JSON).

        ``extra_files`` maps file names to JSON objects written into the same directory (e.g. the
        linker's policy), and ``add_files(directory)`` may write more (e.g. a sparse index), so that
        they appear together with the index.
        """
        path = Path(path)
        with atomic_directory(path) as tmp:
            faiss.write_index(self.faiss_index, str(tmp / FAISS_FILE))
            entries = {"names": self.names, "texts": self.texts, "concept_ids": self.concept_ids}
            (tmp / ENTRIES_FILE).write_text(json.dumps(entries, ensure_ascii=False))
            meta = dict(self.meta)
            meta["checksums"] = {name: _sha256(tmp / name) for name in (FAISS_FILE, ENTRIES_FILE)}
            (tmp / META_FILE).write_text(json.dumps(meta, indent=2))
            for name, content in (extra_files or {}).items():
                (tmp / name).write_text(json.dumps(content, indent=2))
            if add_files is not None:
                add_files(tmp)
        logger.info("saved index of %d names to %s", len(self), path)
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        encoder: Encoder | None = None,
        *,
        model: str | Path | None = None,
        **encoder_options,
    ) -> DictionaryIndex:
        """Open a saved index, checking its files against the stored checksums.

        Without ``encoder``, the model it was built with is loaded (from ``model`` when given: the
        same weights saved elsewhere), with the index's pooling and max length; ``encoder_options``
        such as ``precision`` or ``device`` go to :class:`Encoder`. An encoder whose weights differ
        from the build's is an :class:`IndexMismatchError`.
        """
        path = recover_directory(path)
        meta = read_meta(path)
        for name, expected in meta.get("checksums", {}).items():
            if _sha256(path / name) != expected:
                raise DataFormatError(
                    path / name, None, "checksum differs from meta.json: the index was modified or damaged"
                )
        try:
            entries = json.loads((path / ENTRIES_FILE).read_text(encoding="utf-8"))
            index = faiss.read_index(str(path / FAISS_FILE))
        except (OSError, json.JSONDecodeError, RuntimeError) as err:
            raise DataFormatError(path, None, f"unreadable index files ({err})") from err
        if not (index.ntotal == meta["count"] == len(entries["names"]) == len(entries["concept_ids"])):
            raise DataFormatError(path, None, "the FAISS index, entries.json and meta.json disagree on the count")
        set_search_parameters(index, SearchSpec(**meta.get("search", {"kind": "flat"})))
        cfg = meta["encoder"]
        if encoder is None:
            encoder = Encoder(model or cfg["model"], pooling=cfg["pooling"], max_length=cfg["max_length"],
                              **encoder_options)
        check_encoder(meta, encoder, path)
        return cls(
            index, entries["names"], entries["texts"], entries["concept_ids"],
            Normalizer.from_dict(meta["normalizer"]), meta, encoder,
        )


def _new_faiss_index(spec: SearchSpec, n: int, dim: int, vectors_of) -> tuple[faiss.Index, np.ndarray, np.ndarray]:
    """An empty FAISS index for ``spec``, trained when it needs it on a seeded sample (``vectors_of(rows)``).

    Also returns the sample's sorted row numbers and vectors (none when no training was needed).
    """
    index = make_index(spec, n, dim)
    n_train = training_size(index, n)
    rows, sample = np.empty(0, dtype=np.int64), np.empty((0, dim), dtype=np.float32)
    if n_train:
        rows = np.sort(np.random.default_rng(0).choice(n, n_train, replace=False))
        sample = np.ascontiguousarray(vectors_of(rows), dtype=np.float32)
        index.train(sample)
    set_search_parameters(index, spec)
    return index, rows, sample


def _meta(ontology: Ontology, encoder: Encoder, normalizer: Normalizer, merge_shared_names: bool,
          entries: pd.DataFrame, dim: int, spec: SearchSpec, index: faiss.Index) -> dict:
    return {
        "format": FORMAT,
        "entitylink_version": __version__,
        "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "ontology": ontology.name,
        "encoder": encoder.config(),
        "encoder_fingerprint": encoder.fingerprint(),
        "model_saved": not encoder.unsaved,  # False: tuned in memory, the weights are nowhere on disk
        "encoder_precision": encoder.precision,  # the vectors were computed so; queries may use another
        "normalizer": normalizer.to_dict(),
        "merge_shared_names": merge_shared_names,
        "faiss": describe(index),
        "search": spec.to_dict(),
        "faiss_factory": spec.factory(len(entries), dim),
        "dim": int(dim),
        "count": int(len(entries)),
        "n_concepts": count_ids(entries["concept_id"]),
    }


def read_meta(path: Path) -> dict:
    """The index's ``meta.json``, with a clear error when the directory is not an index."""
    meta_file = path / META_FILE
    if not path.is_dir():
        raise FileNotFoundError(f"no index directory at {path}")
    if not meta_file.is_file():
        raise DataFormatError(path, None, f"not an entitylink index (no {META_FILE})")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataFormatError(meta_file, err.lineno, f"invalid JSON ({err.msg})") from None
    if meta.get("format") != FORMAT:
        raise DataFormatError(meta_file, None, f"unknown index format {meta.get('format')!r}; expected {FORMAT!r}")
    return meta


def check_encoder(meta: dict, encoder: Encoder, path: Path | str = "index") -> None:
    """Raise :class:`IndexMismatchError` unless ``encoder`` embeds as the index's builder did."""
    cfg = meta["encoder"]
    if (encoder.pooling, encoder.max_length) != (cfg["pooling"], cfg["max_length"]):
        raise IndexMismatchError(
            f"{path} was built with pooling={cfg['pooling']!r}, max_length={cfg['max_length']}; "
            f"the encoder has pooling={encoder.pooling!r}, max_length={encoder.max_length}"
        )
    if encoder.fingerprint() != meta["encoder_fingerprint"]:
        raise IndexMismatchError(
            f"{path} was built with model {cfg['model']!r} (fingerprint {meta['encoder_fingerprint'][:12]}), "
            f"but the encoder {encoder.model_id!r} has other weights (fingerprint {encoder.fingerprint()[:12]}); "
            + ("it was built with a tuned model that was never saved, so its weights are lost: rebuild it"
               if meta.get("model_saved") is False else
               "rebuild the index with this model or load it with the original one")
        )


def _warn_if_unsaved(encoder: Encoder) -> None:
    if encoder.unsaved:
        logger.warning(
            "the encoder was tuned in memory and not saved: the index records model %r, which has other "
            "weights. Save the model first (MirrorTrainer.save or Encoder.save) so the index can reopen it",
            encoder.model_id)


EXACT_SEARCH_BLOCK = 1 << 25  # scores computed at once (queries x entries) by the exact search


def _is_flat_inner_product(index: faiss.Index) -> bool:
    # index_factory builds an IndexFlat with the metric; read_index gives it back as an IndexFlatIP
    return isinstance(index, faiss.IndexFlat) and index.metric_type == faiss.METRIC_INNER_PRODUCT


def _exact_search(flat: faiss.IndexFlat, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``flat.search``: the top ``k`` by one matrix product per block of queries, on the FAISS index's own
    storage, then each score computed again on its own.

    FAISS scans the whole dictionary once per query below a large batch size (its BLAS threshold); one
    product reads it once per block: 3x faster for 10 queries and 6x for 40, the batch sizes linking and
    annotation send. The products run on PyTorch's threads, those of the encoder. A product's last bits
    depend on the batch it was computed in; the scores returned (and their order) do not.
    """
    import torch

    stored = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    table, queries = torch.from_numpy(stored), torch.from_numpy(vectors)
    positions = np.empty((len(vectors), k), np.int64)
    rows = max(1, EXACT_SEARCH_BLOCK // flat.ntotal)
    with torch.inference_mode():
        for start in range(0, len(vectors), rows):
            positions[start : start + rows] = torch.topk(queries[start : start + rows] @ table.T, k, dim=1).indices
    scores = np.empty((len(vectors), k), np.float32)
    rows = max(1, EXACT_SEARCH_BLOCK // (8 * k * flat.d))  # the gathered vectors stay under 128 MB
    for start in range(0, len(vectors), rows):
        block = slice(start, start + rows)
        scores[block] = np.einsum("ijd,id->ij", stored[positions[block]], vectors[block])
    order = np.lexsort((positions, -scores), axis=1)  # by score, ties by position
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(positions, order, axis=1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
