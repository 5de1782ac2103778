"""Linker: mentions → top-k distinct concepts with scores, under one linking policy."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol, overload

import numpy as np
import pandas as pd

from ..index.dense import DictionaryIndex
from ..text.abbreviations import AbbreviationFinder, expand
from ..text.normalize import Normalizer
from .policy import POLICY_FILE, LinkingPolicy


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
        policy: the linking policy (default: :class:`LinkingPolicy`'s defaults).
        k, threshold, abbreviations: override those settings of ``policy``.

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
    ):
        if getattr(index, "encoder", True) is None:
            raise ValueError("the index has no encoder: build it with one or open it with DictionaryIndex.load")
        self.index = index
        self.policy = (policy or LinkingPolicy()).override(k=k, threshold=threshold, abbreviations=abbreviations)
        self._finders: dict[str, AbbreviationFinder] = {}

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
        model: str | Path | None = None,
        **encoder_options,
    ) -> Linker:
        """Open a saved index (and the model it was built with) with the policy saved beside it.

        ``policy`` replaces the saved policy, ``k``/``threshold``/``abbreviations`` override single
        settings; ``model`` and ``encoder_options`` (``precision``, ``device``, ``batch_size``) go to
        :meth:`DictionaryIndex.load`.
        """
        index = DictionaryIndex.load(path, model=model, **encoder_options)
        saved = policy or LinkingPolicy.read(path)
        return cls(index, saved, k=k, threshold=threshold, abbreviations=abbreviations)

    def save(self, path: str | Path) -> Path:
        """Save the index with this linker's policy (``policy.json``), in one atomic step."""
        if not isinstance(self.index, DictionaryIndex):
            raise TypeError(f"only a DictionaryIndex can be saved, not {type(self.index).__name__}")
        return self.index.save(path, extra_files={POLICY_FILE: self.policy.to_dict()})

    def __repr__(self) -> str:
        return f"Linker({self.index!r}, {self.policy!r})"

    # ---------------------------------------------------------------- linking
    @overload
    def link(self, mentions: str, k: int | None = ..., *, threshold: float | None = ...,
             contexts: Contexts = ..., show_progress: bool | None = ...) -> list[Candidate]: ...
    @overload
    def link(self, mentions: Sequence[str], k: int | None = ..., *, threshold: float | None = ...,
             contexts: Contexts = ..., show_progress: bool | None = ...) -> list[list[Candidate]]: ...

    def link(self, mentions, k=None, *, threshold=None, contexts=None, show_progress=None):
        """Top-``k`` candidates for each mention (one list for a lone string).

        ``contexts`` gives each mention the text it came from (one string for all, or one per
        mention, ``None`` for none): short forms defined there are expanded as the policy's
        ``abbreviations`` says. A mention that normalises to nothing (empty, only punctuation)
        gets no candidates.
        """
        single = isinstance(mentions, str)
        items = [mentions] if single else list(mentions)
        policy = self.policy.override(k=k, threshold=threshold)
        items = self.expand_abbreviations(items, contexts, policy)
        texts = [self.index.normalizer(m) for m in items]
        results: list[list[Candidate]] = [[] for _ in items]
        todo = [i for i, t in enumerate(texts) if t]
        if todo:
            queries = self.index.prepare([texts[i] for i in todo], show_progress=show_progress)
            for row, candidates in zip(todo, self._top_concepts(queries, len(todo), policy.k)):
                results[row] = [c for c in candidates if c.score >= policy.threshold]
        return results[0] if single else results

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
