"""The candidate lists a reranker is trained on (reranking itself is the :class:`Linker`'s).

Two label sources make lists: an annotated corpus (mentions with gold ids, :func:`lists_from_mentions`)
and the ontology alone (:func:`lists_from_synonyms`: each sampled name is a query whose own entry is
hidden, so only the concept's other names can find it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..model.reranker import CandidateList
from .evaluation import is_match
from .linker import Candidate, Linker


def _gold_position(candidates: Sequence[Candidate], gold: str) -> int:
    return next((i for i, c in enumerate(candidates) if is_match(c.concept_id, gold)), len(candidates))


def lists_from_mentions(linker: Linker, mentions: Sequence[str], gold: Sequence[str], k: int,
                        show_progress: bool | None = None) -> list[CandidateList]:
    """The retriever's top ``k`` for each annotated mention, with the gold's position (``k`` = not there).

    The linker's index must not hold these mentions themselves as names (mine train mentions
    against the ontology alone), or every list would start with a trivial exact match.
    """
    texts = [linker.index.normalizer(m) for m in mentions]
    plain = Linker(linker.index, replace(linker.policy, reranker=None, calibration=None))  # the raw retriever
    results = plain.link(texts, k=k, threshold=-np.inf, show_progress=show_progress)
    return [CandidateList(text, [c.name for c in cands], [c.score for c in cands], _gold_position(cands, g),
                          [c.concept_id for c in cands])
            for text, g, cands in zip(texts, gold, results) if text]


def lists_from_synonyms(linker: Linker, k: int, n: int | None = None, seed: int = 0,
                        show_progress: bool | None = None) -> list[CandidateList]:
    """Lists from the index alone: a sampled entry's text is the query and its own entry is left out.

    Only entries of concepts with two or more entries are sampled (one per concept), so the gold
    can be found through its other names.
    """
    index = linker.index
    concept_entries: dict[str, list[int]] = {}
    for position, cid in enumerate(index.concept_ids):
        concept_entries.setdefault(cid, []).append(position)
    rng = np.random.default_rng(seed)
    eligible = [entries for entries in concept_entries.values() if len(entries) >= 2]
    picks = [int(entries[rng.integers(len(entries))]) for entries in eligible]
    if n is not None and len(picks) > n:
        picks = [picks[i] for i in sorted(rng.choice(len(picks), n, replace=False))]
    texts = [index.texts[p] for p in picks] if hasattr(index, "texts") else [index.names[p] for p in picks]
    queries = index.prepare(texts, show_progress=show_progress)
    fetch = min(len(index), max(4 * k, k + 16))
    scores, positions = linker._search(queries, fetch, linker.policy)
    out = []
    for text, own, s_row, p_row in zip(texts, picks, scores, positions):
        best: dict[str, Candidate] = {}
        for score, pos in zip(s_row, p_row):
            if pos < 0 or pos == own:
                continue
            cid = index.concept_ids[pos]
            if cid not in best:
                best[cid] = Candidate(cid, index.names[pos], float(score))
                if len(best) == k:
                    break
        cands = list(best.values())
        gold = index.concept_ids[own]
        out.append(CandidateList(text, [c.name for c in cands], [c.score for c in cands],
                                 _gold_position(cands, gold), [c.concept_id for c in cands]))
    return out
