"""Accuracy@k with the composite-id rules of the entity-linking literature."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from .._io import read_lines
from ..errors import DataFormatError
from .linker import Candidate, Linker


def id_set(concept_id: str) -> frozenset[str]:
    """The ids named by a gold or predicted id: ``A|B`` (alternatives) and ``A+B`` (composite) give {A, B}."""
    return frozenset(part.strip() for part in concept_id.replace("+", "|").split("|") if part.strip())


def is_match(predicted: str, gold: str) -> bool:
    """A prediction is right if its id set shares an id with the gold's (BioSyn/SapBERT ``check_label``)."""
    return bool(id_set(predicted) & id_set(gold))


def first_hit_rank(predicted: Sequence[str], gold: str) -> int | None:
    """1-based rank of the first prediction that matches ``gold``, or ``None``."""
    return next((i + 1 for i, p in enumerate(predicted) if is_match(p, gold)), None)


def query_hit_rank(parts: Sequence[Sequence[str]], gold: str) -> int | None:
    """Rank at which a query split into parts (a composite mention) is right: every part must match.

    "breast and ovarian cancer" split into two parts is a hit at k only if each part
    has a match for the gold within its own top k; the query's rank is its worst part's.
    """
    ranks = [first_hit_rank(p, gold) for p in parts]
    if not ranks or any(r is None for r in ranks):
        return None
    return max(ranks)  # type: ignore[type-var]


def accuracy_at_k(
    predicted: Sequence[Sequence[str]], gold: Sequence[str], ks: Iterable[int] = (1, 5)
) -> dict[str, float]:
    """Share of queries whose gold is matched within the top k, for each k (``{"acc@1": …}``)."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predictions for {len(gold)} gold ids")
    ranks = [first_hit_rank(p, g) for p, g in zip(predicted, gold)]
    n = len(ranks)
    return {f"acc@{k}": (sum(r is not None and r <= k for r in ranks) / n if n else 0.0) for k in ks}


@dataclass
class Evaluation:
    """Figures of one evaluation and a per-mention table for error analysis."""

    metrics: dict[str, float]
    n: int
    details: pd.DataFrame = field(repr=False)

    def __str__(self) -> str:
        figures = "  ".join(f"{name} {100 * value:.1f}" for name, value in self.metrics.items())
        return f"{figures}  (n={self.n})"

    def to_dict(self) -> dict[str, float | int]:
        return {**self.metrics, "n": self.n}


Query = str | Sequence[str]


def evaluate(
    linker: Linker,
    mentions: Sequence[Query],
    gold: Sequence[str],
    ks: Iterable[int] = (1, 5),
    show_progress: bool | None = None,
    windows: Sequence[tuple[str, str] | None] | None = None,
) -> Evaluation:
    """Link ``mentions`` and score them against ``gold`` ids at each k.

    ``windows``: each mention's text before and after it, for a reranker that reads context.

    A mention may be a list of parts (a split composite mention): all parts are linked
    in one batch and the query is right only if every part is (:func:`query_hit_rank`).
    ``details`` has one row per query: the mention, gold id, the top prediction
    (id, name, score), the rank of the first right answer (or NA) and a hit column per k.
    """
    ks = sorted(set(ks))
    if len(mentions) != len(gold):
        raise ValueError(f"{len(mentions)} mentions for {len(gold)} gold ids")
    parts = [[m] if isinstance(m, str) else list(m) for m in mentions]
    flat = [p for query in parts for p in query]
    flat_windows = None if windows is None else [w for query, w in zip(parts, windows) for _ in query]
    linked = linker.link(flat, k=max(ks), show_progress=show_progress, windows=flat_windows)
    results, start = [], 0
    for mention, query in zip(mentions, parts):
        results.append(linked[start] if isinstance(mention, str) else linked[start : start + len(query)])
        start += len(query)
    return score(mentions, gold, results, ks)


def score(
    mentions: Sequence[Query],
    gold: Sequence[str],
    results: Sequence[Sequence[Candidate]] | Sequence[Sequence[Sequence[Candidate]]],
    ks: Iterable[int] = (1, 5),
) -> Evaluation:
    """Score ready-made candidate lists, one per query or one per part of a query (see :func:`evaluate`)."""
    ks = sorted(set(ks))
    rows = []
    for mention, gold_id, cands in zip(mentions, gold, results):
        per_part = cands if isinstance(mention, (list, tuple)) else [cands]
        rank = query_hit_rank([[c.concept_id for c in part] for part in per_part], gold_id)
        top = per_part[0][0] if per_part and per_part[0] else None
        rows.append({
            "mention": mention if isinstance(mention, str) else " | ".join(mention),
            "gold": gold_id,
            "predicted": top.concept_id if top else None,
            "predicted_name": top.name if top else None,
            "score": top.score if top else None,
            "rank": rank,
            **{f"hit@{k}": rank is not None and rank <= k for k in ks},
        })
    details = pd.DataFrame(rows)
    if not details.empty:
        details["rank"] = details["rank"].astype("Int64")
    n = len(rows)
    metrics = {f"acc@{k}": float(details[f"hit@{k}"].mean()) if n else 0.0 for k in ks}
    return Evaluation(metrics=metrics, n=n, details=details)


def read_queries(path: str) -> pd.DataFrame:
    """Read a ``mention<TAB>concept_id`` file (optional header ``mention<TAB>concept_id``)."""
    rows = []
    for number, line in read_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataFormatError(path, number, f"expected 'mention<TAB>concept_id', found {len(fields)} fields")
        if number == 1 and [f.strip().lower() for f in fields] == ["mention", "concept_id"]:
            continue
        if not fields[1].strip():
            raise DataFormatError(path, number, "empty gold concept id")
        rows.append((fields[0], fields[1].strip()))
    if not rows:
        raise DataFormatError(path, None, "no queries in the file")
    return pd.DataFrame(rows, columns=["mention", "concept_id"])
