"""The candidate lists a reranker is trained on (reranking itself is the :class:`Linker`'s).

Two label sources make lists: an annotated corpus (mentions with gold ids, :func:`lists_from_mentions`)
and the ontology alone (:func:`lists_from_synonyms`: each sampled name is a query whose own entry is
hidden, so only the concept's other names can find it).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import replace

import numpy as np

from ..model.reranker import CandidateList
from .evaluation import is_match
from .linker import Candidate, Linker


def _gold_position(candidates: Sequence[Candidate], gold: str) -> int:
    return next((i for i, c in enumerate(candidates) if is_match(c.concept_id, gold)), len(candidates))


def _lists(linker: Linker, texts: Sequence[str], gold: Sequence[str], k: int,
           hidden: Sequence[Container[int]] | None, show_progress: bool | None, synonyms: int = 0,
           windows: Sequence[tuple[str, str] | None] | None = None) -> list[CandidateList]:
    policy = replace(linker.policy, k=k, reranker=None, calibration=None)  # the raw retriever
    found = linker._retrieve(texts, policy, hidden, show_progress=show_progress)
    return [CandidateList(text, linker.candidate_texts(cands, synonyms, hidden[i] if hidden is not None else ()),
                          [c.score for c in cands],
                          _gold_position(cands, g), [c.concept_id for c in cands],
                          windows[i] if windows is not None else None)
            for i, (text, g, cands) in enumerate(zip(texts, gold, found)) if text]


def lists_from_mentions(linker: Linker, mentions: Sequence[str], gold: Sequence[str], k: int,
                        hidden: Sequence[Container[int]] | None = None,
                        show_progress: bool | None = None, synonyms: int = 0,
                        windows: Sequence[tuple[str, str] | None] | None = None) -> list[CandidateList]:
    """The retriever's top ``k`` for each annotated mention, with the gold's position (``k`` = not there).

    A mention must not find itself: mine against an index without these mentions as names (the
    ontology alone), or pass ``hidden[i]``, the index positions mention ``i`` may not return (e.g.
    the names that only its own document contributed: leave-one-document-out). ``synonyms``: other
    names of each candidate's concept written after its name; ``windows``: each mention's text before and
    after it (for a reranker that reads context).
    """
    texts = [linker.index.normalizer(m) for m in mentions]
    return _lists(linker, texts, gold, k, hidden, show_progress, synonyms, windows)


def lists_from_synonyms(linker: Linker, k: int, n: int | None = None, seed: int = 0,
                        show_progress: bool | None = None, synonyms: int = 0) -> list[CandidateList]:
    """Lists from the index alone: a sampled entry's text is the query and its own entry is left out.

    Only entries of concepts with two or more entries are sampled (one per concept), so the gold
    can be found through its other names.
    """
    index = linker.index
    rng = np.random.default_rng(seed)
    eligible = [entries for entries in linker.concept_entries().values() if len(entries) >= 2]
    picks = [int(entries[rng.integers(len(entries))]) for entries in eligible]
    if n is not None and len(picks) > n:
        picks = [picks[i] for i in sorted(rng.choice(len(picks), n, replace=False))]
    texts = [index.texts[p] for p in picks] if hasattr(index, "texts") else [index.names[p] for p in picks]
    return _lists(linker, texts, [index.concept_ids[p] for p in picks], k, [{p} for p in picks], show_progress,
                  synonyms)
