"""Document annotation: find the mentions in running text and link them.

One pipeline of small stages, whatever finds the spans:

1. **propose**: the :class:`~entitylink.index.lexical.LexicalIndex` finds the dictionary's names (and
   their lexical variants, learnt word swaps, reorderings and coordinations, as the policy's ``lexical``
   says) at dictionary speed; ``detector="dictionary"`` adds the *approximate* windows of up to
   ``max_tokens`` tokens that begin as some name begins and end as some name ends ("myocardial
   infarct", "hearing loss in both ears"); ``detector="tagger"`` takes a tagger's spans instead. Short
   forms defined in the document ("non-insulin-dependent diabetes (NIDDM)") are proposed wherever they
   recur, as their long forms.
2. **link**: a span that is a name (or a variant of one) takes that name's concept from the table, with
   no encoder call; the others are linked by the linker, each distinct text once, and kept when their top
   concept scores at least the detection threshold (the policy's ``detect_threshold``).
3. **resolve**: a defined short form takes the concept of the entity found in its long form; overlaps are
   resolved as the policy's ``overlaps`` says (dictionary matches first, then by score, then length).

``detector="exact"`` keeps the dictionary matches only (the string-matcher baseline).
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass, field, replace
from typing import Any

import numpy as np

from ..index.hybrid import HybridIndex
from ..index.lexical import LexicalIndex, Match
from ..ontology.table import Ontology
from ..text.abbreviations import AbbreviationFinder, expand
from ..text.preprocess import split_coordination
from ..text.spans import Span, chunks, context_window, coordinated_runs, is_boundary_token, keep_non_overlapping
from .linker import Candidate, Linker
from .policy import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_TOKENS,
    DETECTOR_NAMES,
    DetectorName,
    Lexical,
    Overlaps,
)

MEMORY = 200_000  # texts whose candidates are remembered across batches
TABLE = ("exact", "reordered", "coordinated")  # sources whose concept comes from the table, not the encoder
COMPOSITE = "+"  # joins the concepts of a coordinated mention ("A|B" joins alternatives)
LONG_FORM_SHARE = 0.5  # a short form takes an inner entity's concept when it covers this much of the long form


@dataclass(frozen=True)
class Entity:
    """A linked mention: ``text[start:end]``, its best concept and score, and the other candidates."""

    start: int
    end: int
    text: str
    concept_id: str
    score: float
    candidates: tuple[Candidate, ...] = field(default=(), compare=False)
    source: str = "exact"  # how it was found: exact, reordered, coordinated, approximate, abbreviation, tagger,
    # composite (a coordinated tagger span: concept_id joins its parts' concepts with "+")

    def to_dict(self, candidates: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text,
                               "concept_id": self.concept_id, "score": round(float(self.score), 6)}
        if candidates:
            out["candidates"] = [{"concept_id": c.concept_id, "name": c.name, "score": round(float(c.score), 6)}
                                 for c in self.candidates]
        return out


def tagger_dictionary(pairs: Sequence[tuple[str, str]]):
    """A tagger's dictionary: ``text -> spans`` of the (concept id, name) pairs' names in it, verbatim or as
    variants; the same in training and in annotation (the tagger carries its pairs)."""
    return _name_spans(LexicalIndex([name for _, name in pairs], [cid for cid, _ in pairs], equivalences=False))


def _name_spans(lexicon: LexicalIndex):
    def spans(text: str) -> list[tuple[int, int]]:
        return [(m.start, m.end) for m in lexicon.find(text, reordered=False)]

    return spans


class NameMatcher(LexicalIndex):
    """A :class:`~entitylink.index.lexical.LexicalIndex` whose :meth:`find` keeps the longest names (weak
    labels for a tagger)."""

    def find(self, text: str, tokens=None, reordered: bool = True) -> list[Match]:  # type: ignore[override]
        return keep_non_overlapping(super().find(text, tokens, reordered),
                                    rank=lambda m: (-(m.end - m.start), m.start))


@dataclass
class _Proposal:
    span: Span
    query: str  # what is linked: the span with the document's short forms expanded, or the name matched
    source: str
    defined_at: tuple[int, int] | None = None  # a short form's long form in the text, where it is defined
    concept: str | None = None  # from the table: no encoder call
    entries: list[int] | None = None  # a partial match: scored against these dictionary entries only
    fallback: bool = False  # kept only where no other entity is (a tagger's training mention)
    parts: list[str] | None = None  # a coordinated span's mentions ("breast and ovarian cancer")
    joined: bool = False  # tagged pieces joined at their coordination: a composite entity or nothing


def _long_form_spans(text: str, short_forms: dict[str, str]) -> dict[str, tuple[int, int]]:
    """Where each short form's long form is written: just before the short form's first occurrence."""
    out = {}
    lowered = text.lower()
    for short, long_form in short_forms.items():
        first = text.find(short)
        start = lowered.rfind(long_form.lower(), 0, first + 1) if first >= 0 else -1
        if start >= 0:
            out[short] = (start, start + len(long_form))
    return out


class Annotator:
    """Finds and links the mentions of documents.

    Args:
        linker: links the proposed spans; its policy also holds the detection settings below.
        detector: ``"dictionary"`` (dictionary matches + approximate windows, from the ontology alone),
            ``"exact"`` (dictionary matches only) or ``"tagger"`` (spans from ``tagger``).
        tagger: a :class:`~entitylink.model.tagger.Tagger` (needed by ``detector="tagger"``).
        threshold: spans linked by the encoder are kept when their top concept scores at least this
            (default: the tagger's own when it has one — chosen on dev when it was trained —, else the
            policy's ``detect_threshold``).
        sparse_weight: the sparse weight spans are linked with (default: the tagger's own where the index
            has a sparse half and no calibration, else the policy's).
        max_tokens: the longest approximate window, in tokens.
        batch_size: documents (or pieces of long ones) whose spans are linked together, each distinct
            text once.
        max_chars: longer documents are cut at sentence ends into pieces of at most this many characters
            (a short form defined in one piece is expanded in that piece only).
        overlaps, lexical: override the policy's (see :class:`~entitylink.link.policy.LinkingPolicy`).
        training_mentions: with a tagger, also keep the names found verbatim in the text that its annotated
            training corpus had as mentions, where no entity of the tagger's spans is (default: the tagger's
            own setting, chosen on dev when it was trained; else off).
        composites: with a tagger, a tagged span that coordinates mentions ("brain, breast and prostate
            cancer") becomes one entity of its parts' concepts (``A+B+C``) when each part links above the
            threshold (default: the tagger's own setting, chosen on dev when it was trained; else off).
    """

    def __init__(self, linker: Linker, detector: DetectorName = "dictionary", tagger: Any = None,
                 threshold: float | None = None, max_tokens: int = DEFAULT_MAX_TOKENS,
                 batch_size: int = DEFAULT_BATCH_SIZE, max_chars: int = DEFAULT_MAX_CHARS,
                 overlaps: Overlaps | None = None, lexical: Lexical | None = None,
                 sparse_weight: float | None = None, training_mentions: bool | None = None,
                 composites: bool | None = None):
        if detector not in DETECTOR_NAMES:
            raise ValueError(f"detector must be one of {DETECTOR_NAMES}, not {detector!r}")
        if detector == "tagger" and tagger is None:
            raise ValueError("detector='tagger' needs a tagger (entitylink train-tagger)")
        if min(max_tokens, batch_size, max_chars) < 1:
            raise ValueError(f"max_tokens, batch_size and max_chars must be positive, got {max_tokens}, "
                             f"{batch_size} and {max_chars}")
        policy = linker.policy
        own = (getattr(tagger, "settings", None) or {}) if detector == "tagger" else {}
        if threshold is None:
            threshold = own.get("detect_threshold", policy.detect_threshold)
        if sparse_weight is None and isinstance(linker, Linker) and isinstance(linker.index, HybridIndex) \
                and policy.calibration is None:
            sparse_weight = own.get("sparse_weight")  # a wrapped linker (a cache, a batcher) keeps its own
        if sparse_weight is not None and sparse_weight != policy.sparse_weight:
            if not isinstance(linker, Linker):
                raise ValueError("sparse_weight needs a Linker (give the wrapped linker its sparse weight instead)")
            linker = Linker(linker.index, policy, sparse_weight=sparse_weight, reranker=linker.reranker)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or math.isnan(threshold):
            raise ValueError(f"threshold must be a number, not {threshold!r}")
        settings = policy.override(overlaps=overlaps, lexical=lexical)  # checked as the policy checks them
        self.overlaps, self.lexical = settings.overlaps, settings.lexical
        self.linker = linker
        self.detector = detector
        self.tagger = tagger
        self.threshold = float(threshold)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.lexicon = LexicalIndex.from_index(linker.index, equivalences=self.lexical != "variants")
        detector_name = policy.abbreviations
        self._finder = AbbreviationFinder(detector_name) if detector_name != "off" else None
        self._seen: OrderedDict[str, list[Candidate]] = OrderedDict()  # recent texts' candidates
        self._scored: OrderedDict[str, list[Candidate]] = OrderedDict()  # partial windows' candidates
        self._lock = threading.Lock()
        self._tagger_dictionary = None
        self._training_mentions: frozenset[str] = frozenset()
        if training_mentions is None:
            training_mentions = bool(own.get("training_mentions")) and bool(getattr(tagger, "mentions", None))
        self.training_mentions = training_mentions
        self.composites = bool(own.get("composites", False)) if composites is None else bool(composites)

    @property
    def training_mentions(self) -> bool:
        return bool(self._training_mentions)

    @training_mentions.setter
    def training_mentions(self, on: bool) -> None:
        mentions = getattr(self.tagger, "mentions", None) if self.detector == "tagger" else None
        if on and not mentions:
            raise ValueError("training_mentions needs a tagger trained on an annotated corpus (it keeps its mentions)")
        normalise = self.linker.index.normalizer
        self._training_mentions = frozenset(filter(None, map(normalise, mentions))) if on else frozenset()

    def dictionary(self, text: str) -> list[tuple[int, int]]:
        """The spans of dictionary names in ``text`` that a tagger with dictionary features reads: those of the
        dictionary it was trained with (it carries it), else the index's."""
        if self._tagger_dictionary is None:
            pairs = getattr(self.tagger, "dictionary", None)
            self._tagger_dictionary = tagger_dictionary(pairs) if pairs else _name_spans(self.lexicon)
        return self._tagger_dictionary(text)

    def _retrieve(self, queries: list[str]) -> dict[str, list[Candidate]]:
        """Candidates of each text from the retriever (the whole dictionary searched)."""
        return self._remembered(self._seen, queries,
                                lambda todo: self.linker.link(todo, threshold=float("-inf"), rerank=False))

    def _remembered(self, memory: OrderedDict, queries: list[str], link) -> dict[str, list[Candidate]]:
        """``link(texts)`` of each text, linking only those not among the last ``MEMORY`` texts in ``memory``:
        the same phrases recur across documents. Linked outside the lock: concurrent callers (the HTTP
        service's threads) wait on the encoder, not on each other."""
        with self._lock:
            out = {q: memory[q] for q in queries if q in memory}
        missing = [q for q in queries if q not in out]
        if missing:
            out.update(zip(missing, link(missing)))
        with self._lock:
            for query in queries:
                memory[query] = out[query]
                memory.move_to_end(query)
            while len(memory) > MEMORY:
                memory.popitem(last=False)
        return out

    def annotate(self, texts: Iterable[str]) -> Iterator[list[Entity]]:
        """Entities of each document, in input order, as they are ready.

        Documents are read lazily and linked a batch at a time; a long document is cut at sentence ends
        into pieces of at most ``max_chars`` characters, so memory stays flat whatever the input.
        """
        units: list[tuple[int, int, str]] = []  # (document number, offset, piece)
        found: dict[int, list[Entity]] = {}
        left: dict[int, int] = {}
        next_doc = 0
        for number, text in enumerate(texts):
            pieces = chunks(text, self.max_chars)
            found[number], left[number] = [], len(pieces)
            for offset, piece in pieces:
                units.append((number, offset, piece))
                if len(units) == self.batch_size:
                    self._run(units, found, left)
                    units = []
            while left.get(next_doc) == 0:
                yield self._finish(found, left, next_doc)
                next_doc += 1
        if units:
            self._run(units, found, left)
        while next_doc in left:
            yield self._finish(found, left, next_doc)
            next_doc += 1

    def annotate_one(self, text: str) -> list[Entity]:
        return next(self.annotate([text]))

    def _run(self, units: list[tuple[int, int, str]], found: dict[int, list[Entity]], left: dict[int, int]) -> None:
        for (number, offset, _), entities in zip(units, self._annotate_batch([piece for _, _, piece in units])):
            found[number] += [replace(e, start=e.start + offset, end=e.end + offset) for e in entities]
            left[number] -= 1

    @staticmethod
    def _finish(found: dict[int, list[Entity]], left: dict[int, int], number: int) -> list[Entity]:
        del left[number]
        return found.pop(number)

    # ---------------------------------------------------------------- stage 1: propose
    def _proposals(self, text: str, tagged: list[Span] | None = None) -> list[_Proposal]:
        short_forms = self._finder.find([text]) if self._finder is not None and text.strip() else {}
        tokens = self.lexicon.tokens(text)
        matches = self.lexicon.find(text, tokens, reordered=self.lexical == "reordered")
        if tagged is not None:
            named = {(m.start, m.end): m for m in matches}
            out = []
            for s in tagged:
                m = named.get((s.start, s.end))
                if m:
                    out.append(_Proposal(s, m.name, "tagger", concept=self.lexicon.concept(m.name)))
                    continue
                query = expand(s.text, short_forms) if short_forms else s.text
                out.append(_Proposal(s, query, "tagger", parts=split_coordination(query) if self.composites else None))
            if self.composites:
                for run in coordinated_runs(text, tagged):
                    query = expand(run.text, short_forms) if short_forms else run.text
                    parts = split_coordination(query)
                    if parts:
                        out.append(_Proposal(run, query, "tagger", parts=parts, joined=True))
            if self._training_mentions:
                normalise = self.linker.index.normalizer
                out += [_Proposal(m.span(), m.name, "exact", concept=self.lexicon.concept(m.name), fallback=True)
                        for m in matches if m.kind in ("exact", "variant")
                        and (normalise(m.text) in self._training_mentions
                             or normalise(m.name) in self._training_mentions)]
            return out
        defined = _long_form_spans(text, short_forms) if short_forms else {}
        out = [_Proposal(m.span(), m.name, "exact" if m.kind in ("exact", "variant") else m.kind,
                         defined.get(m.text), self.lexicon.concept(m.name)) for m in matches]
        if self.detector == "dictionary":
            # a dictionary match wins any overlap, so windows overlapping one need not be linked
            taken = [(m.start, m.end) for m in matches]
            for span, entries in self.lexicon.windows(text, tokens, self.max_tokens):
                if any(span.start < z and a < span.end for a, z in taken):
                    continue
                query = expand(span.text, short_forms) if short_forms else span.text
                out.append(_Proposal(span, query, "approximate", defined.get(span.text),
                                     entries=None if query != span.text else entries))
        proposed = {(p.span.start, p.span.end) for p in out}
        for short, long_form in short_forms.items():  # a defined short form of any length, wherever it recurs
            if not is_boundary_token(short):
                continue
            as_name = self.lexicon.lookup(long_form)
            if as_name is None and self.detector == "exact" and short not in defined:
                continue  # string matching only: a short form needs its long form's name
            for match in re.finditer(rf"(?<![\w-]){re.escape(short)}(?![\w-])", text):
                span = Span(match.start(), match.end(), short)
                if len(short) < 3 or (span.start, span.end) not in proposed:
                    out.append(_Proposal(span, as_name or long_form, "abbreviation", defined.get(short),
                                         self.lexicon.concept(as_name) if as_name else None))
        return out

    # ---------------------------------------------------------------- stage 2: link
    def _annotate_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        tagged = self.tagger.spans_batch(texts, self.dictionary) if self.detector == "tagger" else [None] * len(texts)
        proposals = [self._proposals(text, spans) if text else [] for text, spans in zip(texts, tagged)]
        # string matching only: no encoder call at all (a short form may still take its long form's entity)
        dense = [] if self.detector == "exact" else [p for props in proposals for p in props if p.concept is None]
        partial: dict[str, dict[int, None]] = {}
        for p in dense:
            if p.entries is not None:
                partial.setdefault(p.query, {}).update(dict.fromkeys(p.entries))
        queries = list(dict.fromkeys(q for p in dense if p.entries is None
                                     for q in ((() if p.joined else (p.query,)) + tuple(p.parts or ()))))
        # spans are found with the retriever's scores; a reranker then re-scores the spans kept
        linked = self._retrieve(queries) if queries else {}
        linked.update(self._score_partial(partial))
        docs = []
        for props in proposals:
            found, covered = self._composites(props, linked)
            for p in props:
                if p.joined or (covered and p.source == "tagger"
                                and any(a <= p.span.start and p.span.end <= z for a, z in covered)):
                    continue
                if p.concept is not None:
                    candidates = [Candidate(p.concept, self.lexicon.names.get(p.query, p.query), 1.0)]
                elif self.detector == "exact":
                    if p.defined_at is None:
                        continue
                    candidates = [Candidate("", p.query, float("-inf"))]  # may take an entity of its long form
                else:
                    candidates = linked.get(p.query) or []
                    if not candidates or (candidates[0].score < self.threshold and p.defined_at is None):
                        continue
                entity = Entity(p.span.start, p.span.end, p.span.text, candidates[0].concept_id,
                                candidates[0].score, tuple(candidates), p.source)
                found.append(_Found(entity, p.query, p.defined_at, p.concept is not None, p.fallback))
            kept = self._resolve([f for f in found if not f.fallback])
            fallback = [f for f in found if f.fallback]
            docs.append(keep_non_overlapping(kept + fallback, rank=lambda f: (f.fallback, _rank(f))) if fallback
                        else kept)
        reranker = getattr(self.linker, "reranker", None)
        if reranker is not None and getattr(reranker, "context_chars", 0):
            # a reranker that reads context re-scores each occurrence in its own sentence
            todo = [(d, j) for d, doc in enumerate(docs) for j, f in enumerate(doc) if f.rerankable]
            windows = [context_window(texts[d], docs[d][j].entity.start, docs[d][j].entity.end) for d, j in todo]
            linked = self.linker.link([docs[d][j].query for d, j in todo], threshold=float("-inf"),
                                      windows=windows) if todo else []
            again = dict(zip(todo, linked))
            return [[_relinked(f.entity, again[(d, j)]) if f.rerankable else f.entity for j, f in enumerate(doc)]
                    for d, doc in enumerate(docs)]
        if reranker is not None:
            kept = list(dict.fromkeys(f.query for doc in docs for f in doc if f.rerankable))
            reranked = dict(zip(kept, self.linker.link(kept, threshold=float("-inf")))) if kept else {}
            return [[_relinked(f.entity, reranked[f.query]) if f.rerankable else f.entity for f in doc] for doc in docs]
        return [[f.entity for f in doc] for doc in docs]

    def _composites(self, proposals: list[_Proposal],
                    linked: dict[str, list[Candidate]]) -> tuple[list[_Found], list[tuple[int, int]]]:
        """Each coordinated span as one entity of its parts' concepts (``A+B``; ``A`` when they all link to one)
        where every part's top concept passes the threshold; and the spans these cover (the tagger's pieces
        inside one are dropped; a coordinated span that fails is linked whole, or not at all if joined)."""
        found, covered = [], []
        for p in proposals:
            tops = [(linked.get(part) or [None])[0] for part in p.parts or ()]
            if not tops or any(c is None or c.score < self.threshold for c in tops):
                continue
            ids = list(dict.fromkeys(c.concept_id for c in tops))
            entity = Entity(p.span.start, p.span.end, p.span.text, COMPOSITE.join(ids), min(c.score for c in tops),
                            tuple(tops), "composite")
            found.append(_Found(entity, p.query, None, composite=True))
            covered.append((p.span.start, p.span.end))
        return found, covered

    def _score_partial(self, partial: dict[str, dict[int, None]]) -> dict[str, list[Candidate]]:
        """Candidates of windows that match names partly, among those names only (:meth:`Linker.link_within`)."""
        return self._remembered(self._scored, list(partial),
                                lambda todo: self.linker.link_within(todo, [list(partial[q]) for q in todo]))

    # ---------------------------------------------------------------- stage 3: resolve
    def _resolve(self, found: list[_Found]) -> list[_Found]:
        """A defined short form takes the concept (and the query, for a reranker) of the longest entity found
        in its long form where its own link (as the long form) passes the threshold or that entity covers
        half the long form or more; else it keeps its own link if that passes the threshold. Then overlaps
        are resolved as ``overlaps`` says."""
        plain = [f for f in found if f.defined_at is None]
        kept = keep_non_overlapping(plain, rank=_rank)
        short_forms = []
        for f in found:
            if f.defined_at is None:
                continue
            begin, end = f.defined_at
            passes = f.table or f.entity.score >= self.threshold
            inside = [k for k in kept if begin <= k.start and k.end <= end
                      and (passes or (k.end - k.start) >= LONG_FORM_SHARE * (end - begin))]
            if inside:
                best = max(inside, key=lambda k: (k.end - k.start, k.entity.score))
                short_forms.append(_Found(replace(_relinked(f.entity, best.entity.candidates), source="abbreviation"),
                                          best.query, f.defined_at, best.table))
            elif passes:
                short_forms.append(f)
        out = keep_non_overlapping(kept + short_forms, rank=_rank)
        if self.overlaps == "nested":
            taken = {(f.start, f.end) for f in out}
            out += [f for f in plain if f.table and (f.start, f.end) not in taken
                    and any(k.start <= f.start and f.end <= k.end for k in out)]
            out.sort(key=lambda f: (f.start, f.end))
        return out


@dataclass(frozen=True)
class _Found:
    """An entity with the text it was linked as, where its long form is if it is a defined short form, and
    whether its concept came from the table."""

    entity: Entity
    query: str
    defined_at: tuple[int, int] | None
    table: bool = False
    fallback: bool = False
    composite: bool = False

    @property
    def rerankable(self) -> bool:
        """Linked by the retriever as one text: a table concept or a composite's parts are not re-scored."""
        return not (self.table or self.composite)

    @property
    def start(self) -> int:
        return self.entity.start

    @property
    def end(self) -> int:
        return self.entity.end


def _relinked(entity: Entity, candidates: Sequence[Candidate]) -> Entity:
    if not candidates:
        return entity
    return replace(entity, concept_id=candidates[0].concept_id, score=candidates[0].score,
                   candidates=tuple(candidates))


def _rank(f) -> tuple:
    e = f.entity if isinstance(f, _Found) else f
    tier = 0 if e.source in ("exact", "reordered") else 1 if e.source == "coordinated" else 2
    return tier, -round(e.score, 2), -(e.end - e.start), e.start


def _resolve_overlaps(entities: list[Entity]) -> list[Entity]:
    """Keep the best of overlapping entities: names as written or reordered first, then coordinated names
    (their parts may be names of their own), then by score, then the longer one."""
    return keep_non_overlapping(entities, rank=_rank)


_TEMPLATES = ("{0}.", "The patient had {0}.", "We describe a family with {0} and {1}.",
              "{0}, {1} and {2} were reported.", "No {0} was seen; {1} was confirmed.",
              "Signs of {0} appeared in childhood.", "Patients with {0} or {1} were excluded.")
_NEGATIVES = ("Samples were collected at baseline and after six months.", "The study was approved by the board.",
              "All participants gave written consent.", "Data were analysed with standard methods.")


def synthetic_examples(ontology: Ontology, n: int = 20_000, seed: int = 0) -> list[tuple[str, list[tuple[int, int]]]]:
    """Weak tagger labels from an ontology alone (the distant supervision PhenoTagger uses): its names
    placed in short sentences, plus sentences with none. Inverted names ("Infarction, Myocardial") are
    left out: text does not write them so."""
    import random

    rng = random.Random(seed)
    names = [name for name in dict.fromkeys(ontology.names) if "," not in name and len(name) >= 3]
    rng.shuffle(names)
    names = names[:n]
    out: list[tuple[str, list[tuple[int, int]]]] = []
    i = 0
    while i < len(names):
        template = _TEMPLATES[rng.randrange(len(_TEMPLATES))]
        count = template.count("{")
        chosen = names[i : i + count]
        i += count
        if len(chosen) < count:
            break
        text, spans = "", []
        for part, name in zip(re.split(r"\{\d\}", template), [*chosen, None]):
            text += part
            if name is not None:
                if not text:
                    written = name[0].upper() + name[1:]
                else:  # mid-sentence, "Hand muscle weakness" is written "hand muscle weakness"; "CCTGA" stays
                    written = name[0].lower() + name[1:] if name[1:2].islower() else name
                spans.append((len(text), len(text) + len(written)))
                text += written
        out.append((text, spans))
        if len(out) % 5 == 4:
            out.append((_NEGATIVES[rng.randrange(len(_NEGATIVES))], []))
    return out


TAGGER_THRESHOLDS = (0.6, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.99)
TAGGER_SPARSE_WEIGHTS = (0.0, 0.1, 0.25, 0.5)


def tagger_settings_grid(linker: Linker, tagger: Any, documents: Sequence) -> tuple[list[dict], np.ndarray]:
    """Every setting :func:`choose_tagger_settings` weighs, and the document-level counts of annotation under each:
    an integer array of shape (settings, documents, 4) holding right predictions, predictions, gold ids found and
    gold ids per document (:func:`~entitylink.link.doc_evaluation.document_counts`)."""
    from .doc_evaluation import document_counts

    weights = TAGGER_SPARSE_WEIGHTS if isinstance(linker.index, HybridIndex) and linker.policy.calibration is None \
        else (linker.policy.sparse_weight,)
    texts = [d.text for d in documents]
    gold = [[(m.start, m.end, m.ids) for m in d.mentions] for d in documents]
    settings: list[dict] = []
    counts: list[list[tuple[int, int, int, int]]] = []
    tagged = _TaggedOnce(tagger)
    for weight in weights:
        annotator = Annotator(linker, detector="tagger", tagger=tagged, threshold=float("-inf"), sparse_weight=weight,
                              training_mentions=False)
        for mentions, composites in itertools.product((False, True) if getattr(tagger, "mentions", None)
                                                      else (False,), (False, True)):
            annotator.training_mentions, annotator.composites = mentions, composites
            for threshold in TAGGER_THRESHOLDS:
                annotator.threshold = threshold  # the linked spans are remembered: only the cut changes
                settings.append({"detect_threshold": threshold, "sparse_weight": float(weight),
                                 "training_mentions": mentions, "composites": composites})
                counts.append([astuple(document_counts(g, [(e.start, e.end, e.concept_id) for e in entities]))
                               for g, entities in zip(gold, annotator.annotate(texts))])
    return settings, np.asarray(counts, dtype=np.int64).reshape(len(settings), len(documents), 4)


def document_f1(counts: np.ndarray) -> np.ndarray:
    """Micro document F1 of counts summed over their second-to-last axis (``(..., documents, 4)`` → ``(...)``)."""
    right, predicted, found, gold = np.moveaxis(np.asarray(counts).sum(axis=-2), -1, 0).astype(float)
    p = np.divide(right, predicted, out=np.zeros_like(right), where=predicted > 0)
    r = np.divide(found, gold, out=np.zeros_like(found), where=gold > 0)
    return np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)


def choose_tagger_settings(linker: Linker, tagger: Any, documents: Sequence) -> dict:
    """The detection threshold (and, on an index with a sparse half, the sparse weight; for a tagger that keeps its
    training mentions, whether annotation adds them: ``training_mentions``; whether coordinated spans become
    composite entities: ``composites``) with which annotation by ``tagger`` scores the best document F1 on annotated
    ``documents`` (a dev split; the first of equals in :func:`tagger_settings_grid`'s order), and that F1."""
    settings, counts = tagger_settings_grid(linker, tagger, documents)
    f1 = document_f1(counts)
    chosen = int(np.argmax(f1))
    return {**settings[chosen], "dev_document_f1": round(float(f1[chosen]), 4)}


class _TaggedOnce:
    """A tagger that tags each text once (the same dev texts are annotated under many settings)."""

    def __init__(self, tagger: Any):
        self.tagger, self._spans = tagger, {}

    def __getattr__(self, name: str):  # settings, dictionary: the tagger's own
        return getattr(self.tagger, name)

    def spans_batch(self, texts: Sequence[str], dictionary=None) -> list[list[Span]]:
        todo = [t for t in dict.fromkeys(texts) if t not in self._spans]
        self._spans.update(zip(todo, self.tagger.spans_batch(todo, dictionary)))
        return [self._spans[t] for t in texts]
