"""End-to-end scores of document annotation: document-level and mention-level P/R/F1.

Counted as the literature counts them (DNorm, TaggerOne, PhenoTagger):
- ``document``: micro P/R/F1 over each document's set of concept ids. A predicted id that joins
  alternatives (``A|B``, a name several concepts share) is right when any of them is gold; a predicted
  composite (``A+B``, a coordinated mention) counts each of its ids, as a gold composite (``A|B`` or
  ``A+B``) contributes each of its ids.
- ``mention_strict``: the same span and a right id; ``mention_relaxed``: overlapping spans and a right
  id. Each gold mention matches at most one predicted mention.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..text.preprocess import split_ids

Mention = tuple[int, int, str]  # start, end, concept id(s)


@dataclass
class Counts:
    tp_predicted: int = 0  # predictions that are right
    predicted: int = 0
    tp_gold: int = 0  # gold items found
    gold: int = 0

    def __iadd__(self, other: Counts) -> Counts:
        self.tp_predicted += other.tp_predicted
        self.predicted += other.predicted
        self.tp_gold += other.tp_gold
        self.gold += other.gold
        return self

    def scores(self) -> dict[str, float | int]:
        p = self.tp_predicted / self.predicted if self.predicted else 0.0
        r = self.tp_gold / self.gold if self.gold else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        return {"p": round(p, 4), "r": round(r, 4), "f1": round(f1, 4), "tp": self.tp_gold,
                "fp": self.predicted - self.tp_predicted, "fn": self.gold - self.tp_gold}


def _ids(concept_id: str) -> set[str]:
    return {i.removeprefix("MESH:") for i in split_ids(concept_id)}


def _match_mentions(gold: list[Mention], predicted: list[Mention], counts: Counts, strict: bool) -> None:
    used: set[int] = set()
    for g_start, g_end, g_id in gold:
        g_ids = _ids(g_id)
        for i, (p_start, p_end, p_id) in enumerate(predicted):
            if i in used or not (g_ids & _ids(p_id)):
                continue
            same = (p_start, p_end) == (g_start, g_end)
            if same or (not strict and p_start < g_end and g_start < p_end):
                used.add(i)
                counts.tp_gold += 1
                break
    counts.tp_predicted += len(used)
    counts.gold += len(gold)
    counts.predicted += len(predicted)


def document_counts(gold: Iterable[Mention], predicted: Iterable[Mention]) -> Counts:
    """One document's document-level counts: its predicted concept ids (and those right) against its gold ones."""
    gold_ids = set().union(*(_ids(cid) for _, _, cid in gold))
    groups = {frozenset(_ids(part)) for _, _, cid in predicted for part in cid.split("+")}
    return Counts(tp_predicted=sum(bool(g & gold_ids) for g in groups), predicted=len(groups),
                  tp_gold=len(gold_ids & set().union(*groups)), gold=len(gold_ids))


def score_documents(gold: Sequence[Iterable[Mention]], predicted: Sequence[Iterable[Mention]]) -> dict[str, dict]:
    """Document and mention P/R/F1 of predicted (start, end, concept id) per document against gold."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(predicted)} predicted documents for {len(gold)} gold ones")
    document, strict, relaxed = Counts(), Counts(), Counts()
    for gold_doc, predicted_doc in zip(gold, predicted):
        gold_doc, predicted_doc = list(gold_doc), list(predicted_doc)
        document += document_counts(gold_doc, predicted_doc)
        _match_mentions(gold_doc, predicted_doc, strict, strict=True)
        _match_mentions(gold_doc, predicted_doc, relaxed, strict=False)
    return {"document": document.scores(), "mention_strict": strict.scores(), "mention_relaxed": relaxed.scores()}


def score_annotations(documents: Sequence, annotated: Sequence[Iterable]) -> dict[str, dict]:
    """:func:`score_documents` of annotated entities (``start``, ``end``, ``concept_id``) per document
    against annotated documents' mentions (``start``, ``end``, ``ids``, as PubTator ones have)."""
    gold = [[(m.start, m.end, m.ids) for m in document.mentions] for document in documents]
    return score_documents(gold, [[(e.start, e.end, e.concept_id) for e in entities] for entities in annotated])
