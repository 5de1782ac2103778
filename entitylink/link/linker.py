"""Linker: mentions → top-k distinct concepts with scores, under one linking policy."""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol, overload

import numpy as np
import pandas as pd

from ..errors import EntityLinkError
from ..index.dense import DictionaryIndex
from ..index.hybrid import SPARSE_DIR, HybridIndex
from ..index.sparse import SparseIndex
from ..model.cross_encoder import CrossEncoder
from ..model.reranker import CandidateList, rerank_lists
from ..text.abbreviations import AbbreviationFinder, expand
from ..text.normalize import Normalizer
from .calibration import Calibration
from .policy import POLICY_FILE, LinkingPolicy

RERANKER_DIR = "reranker"  # where Linker.save writes the reranker, inside the index directory


class SearchIndex(Protocol):
    """What a linker needs of an index: entries, a normaliser, query preparation and top-k search."""

    names: list[str]
    concept_ids: list[str]
    normalizer: Normalizer

    def __len__(self) -> int: ...
    def prepare(self, texts: Sequence[str], show_progress: bool | None = None) -> Any: ...
    def search(self, queries: Any, k: int) -> tuple[np.ndarray, np.ndarray]: ...


class Candidate(NamedTuple):
    """One linked concept: its id, the dictionary name that matched best, and that name's score."""

    concept_id: str
    name: str
    score: float


Contexts = str | Sequence[str | None] | None


class Linker:
    """Links mentions to the concepts of an index (dense :class:`DictionaryIndex`, sparse or hybrid).

    Each mention gets up to ``k`` distinct concepts (the best-scoring name of each), best first,
    those below the policy's threshold left out. The :class:`LinkingPolicy` is the linker's own:
    it is saved with the index by :meth:`save`, read back by :meth:`load`, and any setting can be
    overridden per call.

    Args:
        index: the index to search.
        policy: the linking policy (default: :class:`LinkingPolicy`'s defaults; for a
            :class:`HybridIndex`, with that index's ``sparse_weight``).
        k, threshold, abbreviations, sparse_weight, rerank_k: override those settings of ``policy``.
        reranker: a :class:`~entitylink.model.cross_encoder.CrossEncoder` that re-scores the top
            ``rerank_k`` candidates (:meth:`load` opens the one the policy names).

    Example:
        >>> linker = Linker.load("hpo-index")  # doctest: +SKIP
        >>> linker.link("heart attack", k=3)  # doctest: +SKIP
        [Candidate(concept_id='HP:0001658', name='Myocardial infarction', score=0.83), ...]
    """

    def __init__(
        self,
        index: SearchIndex,
        policy: LinkingPolicy | None = None,
        *,
        k: int | None = None,
        threshold: float | None = None,
        abbreviations: str | None = None,
        sparse_weight: float | None = None,
        rerank_k: int | None = None,
        reranker: CrossEncoder | None = None,
    ):
        if getattr(index, "encoder", True) is None:
            raise ValueError("the index has no encoder: build it with one or open it with DictionaryIndex.load")
        if policy is None:
            policy = LinkingPolicy(sparse_weight=index.sparse_weight) if isinstance(index, HybridIndex) \
                else LinkingPolicy()
        self.index = index
        self.policy = policy.override(k=k, threshold=threshold, abbreviations=abbreviations,
                                      sparse_weight=sparse_weight, rerank_k=rerank_k,
                                      reranker=reranker.model_id if reranker is not None and not policy.reranker
                                      else None)
        _check_sparse(self.policy, index)
        _check_calibration(self.policy, policy)
        if self.policy.reranker and reranker is None:
            raise ValueError(f"the policy names the reranker {self.policy.reranker!r}: pass it as reranker=..., "
                             "or open the index with Linker.load")
        self.reranker = reranker
        self._finders: dict[str, AbbreviationFinder] = {}
        self._concept_entries: dict[str, list[int]] | None = None

    @property
    def k(self) -> int:
        return self.policy.k

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        policy: LinkingPolicy | None = None,
        k: int | None = None,
        threshold: float | None = None,
        abbreviations: str | None = None,
        sparse_weight: float | None = None,
        rerank_k: int | None = None,
        model: str | Path | None = None,
        **encoder_options,
    ) -> Linker:
        """Open a saved index (and the model it was built with) with the policy saved beside it.

        An index saved with its sparse half opens as a :class:`HybridIndex`. ``policy`` replaces
        the saved policy, ``k``/``threshold``/``abbreviations``/``sparse_weight``/``rerank_k`` override
        single settings; ``model`` and ``encoder_options`` (``precision``, ``device``, ``batch_size``) go to
        :meth:`DictionaryIndex.load`.
        """
        dense = DictionaryIndex.load(path, model=model, **encoder_options)
        saved = policy or LinkingPolicy.read(path)
        index: SearchIndex = dense
        if (Path(path) / SPARSE_DIR).is_dir():
            index = HybridIndex(dense, SparseIndex.load(Path(path) / SPARSE_DIR, dense), saved.sparse_weight)
        reranker = None
        if saved.reranker:
            where = Path(saved.reranker) if Path(saved.reranker).is_absolute() else Path(path) / saved.reranker
            options = {key: encoder_options[key] for key in ("precision", "device") if key in encoder_options}
            if options.get("precision") == "int8":
                options["precision"] = "auto"  # int8 is the encoder's ONNX path; the reranker stays in torch
            reranker = CrossEncoder(where, **options)
        return cls(index, saved, k=k, threshold=threshold, abbreviations=abbreviations, sparse_weight=sparse_weight,
                   rerank_k=rerank_k, reranker=reranker)

    def save(self, path: str | Path) -> Path:
        """Save the index (both halves of a hybrid), its reranker and this linker's policy, atomically.

        The reranker is written into the index directory (``reranker/``), so the directory is whole.
        """
        policy = self.policy.override(reranker=RERANKER_DIR) if self.reranker is not None else self.policy
        extra = {POLICY_FILE: policy.to_dict()}
        dense = self.index.dense if isinstance(self.index, HybridIndex) else self.index
        if not isinstance(dense, DictionaryIndex):
            raise TypeError(f"only a DictionaryIndex or HybridIndex can be saved, not {type(self.index).__name__}")

        def add_files(directory: Path) -> None:
            if isinstance(self.index, HybridIndex):
                self.index.sparse.save(directory / SPARSE_DIR)
            if self.reranker is not None:
                model_id = self.reranker.model_id
                self.reranker.save(directory / RERANKER_DIR)
                self.reranker.model_id = model_id  # the in-memory reranker is still the one it was

        saved = dense.save(path, extra, add_files=add_files)
        self.policy = policy
        return saved

    def __repr__(self) -> str:
        return f"Linker({self.index!r}, {self.policy!r})"

    def calibrate(self, mentions: Sequence[str], gold: Sequence[str], kind: str = "isotonic") -> Calibration:
        """Fit a calibration of this linker's top score on dev mentions with their gold ids (``A|B``: either
        is right) and make it the policy's (:meth:`use_calibration`): scores become probabilities that the
        top candidate is right. :meth:`save` keeps it."""
        scores, correct = self.top_score_hits(mentions, gold)
        return self.use_calibration(Calibration.fit(scores, correct, kind=kind))

    def top_score_hits(self, mentions: Sequence[str], gold: Sequence[str]) -> tuple[list[float], list[bool]]:
        """The uncalibrated top score of each mention that gets a candidate, and whether that candidate is right."""
        from .evaluation import is_match

        if len(mentions) != len(gold):
            raise ValueError(f"{len(mentions)} mentions for {len(gold)} gold ids")
        raw = Linker(self.index, replace(self.policy, calibration=None), reranker=self.reranker)
        top = raw.link(list(mentions), k=1, threshold=-np.inf)
        pairs = [(cands[0].score, is_match(cands[0].concept_id, g)) for cands, g in zip(top, gold) if cands]
        if not pairs:
            raise ValueError("no mention got a candidate: nothing to calibrate on")
        return [p for p, _ in pairs], [c for _, c in pairs]

    def use_calibration(self, calibration: Calibration) -> Calibration:
        """Make ``calibration`` the policy's, as fitted for this linker's scorer (the reranker if there is one,
        the sparse weight): it is applied to that scorer's scores only, and a later change of scorer is
        refused."""
        fitted = {**calibration.to_dict(), "scorer": scorer_of(self.policy, self.reranker is not None)}
        self.policy = replace(self.policy, calibration=fitted)
        return calibration

    # ---------------------------------------------------------------- linking
    @overload
    def link(self, mentions: str, k: int | None = ..., *, threshold: float | None = ...,
             sparse_weight: float | None = ..., contexts: Contexts = ..., rerank: bool = ...,
             windows: Sequence[tuple[str, str] | None] | None = ...,
             show_progress: bool | None = ...) -> list[Candidate]: ...
    @overload
    def link(self, mentions: Sequence[str], k: int | None = ..., *, threshold: float | None = ...,
             sparse_weight: float | None = ..., contexts: Contexts = ..., rerank: bool = ...,
             windows: Sequence[tuple[str, str] | None] | None = ...,
             show_progress: bool | None = ...) -> list[list[Candidate]]: ...

    def link(self, mentions, k=None, *, threshold=None, sparse_weight=None, contexts=None, rerank=True,
             windows=None, show_progress=None):
        """Top-``k`` candidates for each mention (one list for a lone string).

        ``contexts`` gives each mention the text it came from (one string for all, or one per
        mention, ``None`` for none): short forms defined there are expanded as the policy's
        ``abbreviations`` says. With a reranker (and ``rerank``), the top ``rerank_k`` candidates
        are re-scored by it and the scores are its probabilities; ``windows`` gives each mention the
        text before and after it (a ``(left, right)`` pair, or ``None``), which a reranker trained
        with context reads; with a calibration, scores are
        mapped to the probability of being right. A mention that normalises to nothing (empty, only
        punctuation) gets no candidates.
        """
        single = isinstance(mentions, str)
        items = [mentions] if single else list(mentions)
        policy = self.policy.override(k=k, threshold=threshold, sparse_weight=sparse_weight)
        _check_sparse(policy, self.index)
        items = self.expand_abbreviations(items, contexts, policy)
        texts = [self.index.normalizer(m) for m in items]
        reranking = rerank and self.reranker is not None
        found = self._retrieve(texts, replace(policy, k=max(policy.k, policy.rerank_k)) if reranking else policy,
                               show_progress=show_progress)
        if reranking:
            if windows is not None and len(windows) != len(items):
                raise ValueError(f"{len(windows)} windows for {len(items)} mentions")
            found = self._rerank(texts, found, policy.rerank_k, windows)
        calibration = fitted_calibration(policy, reranked=reranking)
        if calibration is not None:
            found = _calibrated(found, calibration)
        results = [[c for c in candidates[: policy.k] if c.score >= policy.threshold] for candidates in found]
        return results[0] if single else results

    def _retrieve(self, texts: Sequence[str], policy: LinkingPolicy, hidden: Sequence[Container[int]] | None = None,
                  show_progress: bool | None = None) -> list[list[Candidate]]:
        """The retriever's ``policy.k`` best concepts per normalised text (none for an empty one), before
        reranking, calibration and threshold; ``hidden[i]``: entry positions text ``i`` may not return."""
        results: list[list[Candidate]] = [[] for _ in texts]
        todo = [i for i, t in enumerate(texts) if t]
        if todo:
            # a hybrid index at sparse weight 0 is searched as the dense index it holds
            index = self.index.dense if isinstance(self.index, HybridIndex) and not policy.sparse_weight \
                else self.index
            queries = index.prepare([texts[i] for i in todo], show_progress=show_progress)
            skip = None if hidden is None else [hidden[i] for i in todo]
            found = self._top_concepts(queries, len(todo), policy, skip, index)
            for row, candidates in zip(todo, found):
                results[row] = candidates
        return results

    def concept_entries(self) -> dict[str, list[int]]:
        """The index's entry positions of each concept, in index order (made once)."""
        if self._concept_entries is None:
            entries: dict[str, list[int]] = {}
            for position, cid in enumerate(self.index.concept_ids):
                entries.setdefault(cid, []).append(position)
            self._concept_entries = entries
        return self._concept_entries

    def candidate_texts(self, candidates: Sequence[Candidate], synonyms: int,
                        hidden: Container[int] = ()) -> list[str]:
        """What a reranker reads of each candidate: its name, then up to ``synonyms`` other names of its
        concept (``name ; other ; other``), none from the entry positions in ``hidden``."""
        if not synonyms:
            return [c.name for c in candidates]
        entries, names = self.concept_entries(), self.index.names
        out = []
        for c in candidates:
            seen = {c.name.lower()}
            others = []
            for position in entries.get(c.concept_id, []):
                name = names[position]
                if len(others) == synonyms:
                    break
                if position not in hidden and name.lower() not in seen:
                    seen.add(name.lower())
                    others.append(name)
            out.append(" ; ".join([c.name, *others]))
        return out

    def _rerank(self, texts: list[str], candidates: list[list[Candidate]], rerank_k: int,
                windows: Sequence[tuple[str, str] | None] | None = None) -> list[list[Candidate]]:
        synonyms = getattr(self.reranker, "synonyms", 0)
        lists = [CandidateList(text, self.candidate_texts(cands[:rerank_k], synonyms), [c.score for c in cands],
                               context=windows[i] if windows is not None else None)
                 for i, (text, cands) in enumerate(zip(texts, candidates))]
        todo = [i for i, item in enumerate(lists) if item.names]
        out = [list(cands) for cands in candidates]
        for i, probs in zip(todo, rerank_lists(self.reranker, [lists[i] for i in todo], rerank_k)):
            kept = candidates[i][:rerank_k]
            order = np.argsort(-probs[:-1], kind="stable")
            out[i] = [Candidate(kept[j].concept_id, kept[j].name, float(probs[j])) for j in order]
        return out

    def expand_abbreviations(self, mentions: list[str], contexts: Contexts,
                             policy: LinkingPolicy | None = None) -> list[str]:
        """Each mention with the short forms its context defines replaced by their long forms."""
        policy = policy or self.policy
        if contexts is None or policy.abbreviations == "off":
            return mentions
        per_mention = [contexts] * len(mentions) if isinstance(contexts, str) else list(contexts)
        if len(per_mention) != len(mentions):
            raise ValueError(f"{len(per_mention)} contexts for {len(mentions)} mentions")
        finder = self._finders.get(policy.abbreviations)
        if finder is None:
            finder = self._finders[policy.abbreviations] = AbbreviationFinder(policy.abbreviations)
        defined: dict[str, dict[str, str]] = {}
        out = []
        for mention, context in zip(mentions, per_mention):
            if not context:
                out.append(mention)
                continue
            if context not in defined:
                defined[context] = finder.find([context])
            out.append(expand(mention, defined[context]))
        return out

    @staticmethod
    def _search(index, queries, k: int, policy: LinkingPolicy) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(index, HybridIndex):
            return index.search(queries, k, sparse_weight=policy.sparse_weight)
        return index.search(queries, k)

    def _top_concepts(self, queries, n_queries: int, policy: LinkingPolicy,
                      hidden: Sequence[Container[int]] | None = None, index=None) -> list[list[Candidate]]:
        """The ``policy.k`` best distinct concepts per query; ``hidden[i]`` lists entry positions query i skips."""
        index = self.index if index is None else index
        k = policy.k
        n_entries = len(self.index)
        fetch = min(n_entries, max(4 * k, k + 16))
        out: list[list[Candidate] | None] = [None] * n_queries
        pending = np.arange(n_queries)
        while len(pending):
            scores, positions = self._search(index, queries[pending], fetch, policy)
            retry = []
            for row, s_row, p_row in zip(pending, scores, positions):
                best = self._distinct_concepts(s_row, p_row, k, hidden[row] if hidden is not None else ())
                if len(best) < k and fetch < n_entries:
                    retry.append(row)
                else:
                    out[row] = best
            pending = np.asarray(retry, dtype=np.int64)
            fetch = min(n_entries, fetch * 4)
        return out  # type: ignore[return-value]

    def _distinct_concepts(self, scores, positions, k: int, skip: Container[int] = ()) -> list[Candidate]:
        """The first ``k`` distinct concepts of entries in score order (-1 positions end the list)."""
        best: dict[str, Candidate] = {}
        for score, pos in zip(scores, positions):
            if pos < 0:
                break
            if pos in skip:
                continue
            cid = self.index.concept_ids[pos]
            if cid not in best:
                best[cid] = Candidate(cid, self.index.names[pos], float(score))
                if len(best) == k:
                    break
        return list(best.values())

    def link_within(self, mentions: Sequence[str], entries: Sequence[Sequence[int]]) -> list[list[Candidate]]:
        """The retriever's top-``k`` concepts of each mention among the given dictionary entries only (their
        positions): scored as :meth:`link` scores them without a reranker (dense, + sparse on a hybrid index,
        calibrated when the calibration was fitted on the retriever), with no search of the whole dictionary."""
        if len(mentions) != len(entries):
            raise ValueError(f"{len(entries)} entry lists for {len(mentions)} mentions")
        policy = self.policy
        texts = [self.index.normalizer(m) for m in mentions]
        out: list[list[Candidate]] = [[] for _ in texts]
        keep = [i for i, t in enumerate(texts) if t and len(entries[i])]
        if not keep:
            return out
        index = self.index.dense if isinstance(self.index, HybridIndex) and not policy.sparse_weight else self.index
        queries = index.prepare([texts[i] for i in keep])
        rows = np.concatenate([np.full(len(entries[i]), r) for r, i in enumerate(keep)])
        positions = np.concatenate([np.asarray(entries[i], dtype=np.int64) for i in keep])
        scores = index.score_pairs(queries, rows, positions, policy.sparse_weight) \
            if isinstance(index, HybridIndex) else index.score_pairs(queries, rows, positions)
        calibration = fitted_calibration(policy, reranked=False)
        if calibration is not None:
            scores = calibration(scores)
        start = 0
        for i in keep:
            n = len(entries[i])
            order = np.argsort(-scores[start:start + n], kind="stable")
            out[i] = self._distinct_concepts(scores[start:start + n][order], positions[start:start + n][order],
                                             policy.k)
            start += n
        return out

    def link_frame(self, mentions: Sequence[str], k: int | None = None) -> pd.DataFrame:
        """Candidates as a long table: ``mention``, ``rank``, ``concept_id``, ``name``, ``score``."""
        rows = [
            {"mention": m, "rank": r + 1, **c._asdict()}
            for m, cands in zip(mentions, self.link(list(mentions), k=k))
            for r, c in enumerate(cands)
        ]
        return pd.DataFrame(rows, columns=["mention", "rank", "concept_id", "name", "score"])


def _calibrated(found: list[list[Candidate]], calibration: Calibration) -> list[list[Candidate]]:
    scores = calibration(np.array([c.score for cands in found for c in cands], dtype=np.float64))
    out, start = [], 0
    for cands in found:
        out.append([c._replace(score=float(s)) for c, s in zip(cands, scores[start : start + len(cands)])])
        start += len(cands)
    return out


def scorer_of(policy: LinkingPolicy, reranked: bool) -> dict:
    """What produces a linker's scores: the reranker or the retriever, and the retriever's sparse weight."""
    return {"reranked": bool(reranked), "sparse_weight": float(policy.sparse_weight)}


def fitted_calibration(policy: LinkingPolicy, reranked: bool) -> Calibration | None:
    """The policy's calibration if it was fitted for the scores of this scorer, else ``None`` (raw scores)."""
    if policy.calibration is None:
        return None
    fitted = _fitted_scorer(policy.calibration, policy)
    return Calibration.from_dict(policy.calibration) if fitted == scorer_of(policy, reranked) else None


def _fitted_scorer(calibration: dict, policy: LinkingPolicy) -> dict:
    """The scorer a calibration was fitted for; one saved before calibrations named theirs was fitted on the
    scores ``policy`` gives (its reranker's, if it names one)."""
    return calibration.get("scorer") or scorer_of(policy, bool(policy.reranker))


def _check_calibration(policy: LinkingPolicy, saved: LinkingPolicy) -> None:
    """Refuse overrides (sparse weight, reranker) that change the scores a saved calibration was fitted on."""
    if policy.calibration is None:
        return
    fitted = _fitted_scorer(policy.calibration, saved)
    if fitted != scorer_of(policy, bool(policy.reranker)) and fitted != scorer_of(policy, False):
        raise EntityLinkError(
            f"the index's calibration was fitted on the scores of {_describe(fitted)}, not of "
            f"{_describe(scorer_of(policy, bool(policy.reranker)))}: drop the override, or run "
            "`entitylink calibrate` again with it")


def _describe(scorer: dict) -> str:
    what = "the reranker" if scorer["reranked"] else "the retriever"
    return f"{what} (sparse weight {scorer['sparse_weight']:g})"


def _check_sparse(policy: LinkingPolicy, index) -> None:
    if policy.sparse_weight > 0 and not isinstance(index, HybridIndex):
        raise EntityLinkError(
            f"sparse_weight={policy.sparse_weight} needs an index with a sparse half: rebuild it with "
            "`entitylink index ... --sparse-weight W` (or Linker(HybridIndex(dense), ...).save(path))")
