"""Document annotation: find the mentions in running text and link them.

Detection from the ontology alone (``detector="dictionary"``): every window of up to 12 tokens inside
a sentence (QuickUMLS's rules: no stop word, bare number or punctuation at either end) whose
normalised text is a dictionary name, or a lexical variant of one (a plural, a British spelling:
"tumours" for "tumor"), is an *exact* match; the other windows of up to ``max_tokens``
tokens that begin as some name begins and end as some name ends, and overlap no exact match, are
linked and kept when the top concept scores at least ``threshold`` (the *approximate* matches:
"myocardial infarct", "hearing loss in both ears"). Short forms defined in the document
("non-insulin-dependent diabetes (NIDDM)") are linked as their long forms wherever they recur, and take
the concept of the entity found in the long form where there is one.
Overlapping spans are resolved: exact matches first, then by score, then length.
``detector="exact"`` keeps the exact matches only (the string-matcher baseline). A token-classification
tagger (:class:`~entitylink.model.tagger.Tagger`) may propose the spans instead (``detector="tagger"``).
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..ontology.table import Ontology
from ..text.abbreviations import AbbreviationFinder, expand
from ..text.normalize import Normalizer
from ..text.spans import Span, chunks, is_boundary_token, keep_non_overlapping, windows
from ..text.variants import variant_key
from .linker import Candidate, Linker
from .policy import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DETECT_THRESHOLD,
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_TOKENS,
    DETECTOR_NAMES,
    MAX_EXACT_TOKENS,
    DetectorName,
)

STEM = 5  # "infarct" and "infarction" share their first five letters
GENERIC_SHARE = 0.01  # a word in 1% of the names or more is generic on its own
MEMORY = 200_000  # texts whose candidates are remembered across batches
ACRONYM_CHARS = 6  # longer names in capitals are titles (OMIM's "ANIRIDIA"), matched in any case


@dataclass(frozen=True)
class Entity:
    """A linked mention: ``text[start:end]``, its best concept and score, and the other candidates."""

    start: int
    end: int
    text: str
    concept_id: str
    score: float
    candidates: tuple[Candidate, ...] = field(default=(), compare=False)
    source: str = "dictionary"  # how it was found: exact, approximate, abbreviation, tagger

    def to_dict(self, candidates: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"start": self.start, "end": self.end, "text": self.text,
                               "concept_id": self.concept_id, "score": round(float(self.score), 6)}
        if candidates:
            out["candidates"] = [{"concept_id": c.concept_id, "name": c.name, "score": round(float(c.score), 6)}
                                 for c in self.candidates]
        return out


def _is_acronym(name: str) -> bool:
    """A short name in capitals ("WAS", "CORD", "G6PD"): it names a concept only when written so."""
    letters = [c for c in name if c.isalpha()]
    return len(letters) >= 2 and not any(c.islower() for c in letters) and len(name) <= ACRONYM_CHARS


def _letters_digits(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


class NameMatcher:
    """A dictionary's names for exact matching in text: a normalised name is found wherever a window of
    text normalises to it, with the acronym and generic-word rules of the module docs."""

    def __init__(self, names: Sequence[str], texts: Sequence[str], normalizer: Normalizer):
        self.normalizer = normalizer
        self.acronyms: dict[str, set[str]] = {}
        self.texts: set[str] = set()
        for name, text in zip(names, texts):
            if _is_acronym(name) and " " not in text:
                self.acronyms.setdefault(text, set()).add(_letters_digits(name))
            else:
                self.texts.add(text)
        in_names = Counter(token for text in texts for token in set(text.split()))
        # a word in many names is a head ("disease", "syndrome"), not a mention when alone
        self.generic = {token for token, n in in_names.items() if n >= GENERIC_SHARE * len(texts) and n >= 20}
        self._generic_keys = {variant_key(token) for token in self.generic}
        self._variants: dict[str, str] = {}  # a name's lexical-variant key -> the name's text
        for text in sorted(self.texts):  # sorted: the same name wins a shared key on every run
            key = variant_key(text)
            if key not in self.texts:  # a key that is a name's text is looked up as that name
                self._variants.setdefault(key, text)
        self.first_stems = {text.split()[0][:STEM] for text in texts if text}
        self.last_stems = {text.split()[-1][:STEM] for text in texts if text}

    @classmethod
    def from_index(cls, index) -> NameMatcher:
        dense = getattr(index, "dense", index)
        names = list(dense.names)
        texts = list(getattr(dense, "texts", None) or [index.normalizer(n) for n in names])
        return cls(names, texts, index.normalizer)

    @classmethod
    def from_ontology(cls, ontology: Ontology, normalizer: Normalizer | None = None) -> NameMatcher:
        entries = ontology.entries(normalizer)
        return cls(entries["name"].tolist(), entries["text"].tolist(), normalizer or Normalizer())

    def find(self, text: str, max_tokens: int = MAX_EXACT_TOKENS) -> list[Span]:
        """The dictionary names in ``text``, longest first where they overlap (weak labels for a tagger)."""
        found = []
        for span in windows(text, max_tokens):
            normalised = self.normalizer(span.text)
            exact = self.exact(span.text, normalised)
            if exact or (exact is not None and self.variant(normalised)):
                found.append(span)
        return keep_non_overlapping(found, rank=lambda s: (-(s.end - s.start), s.start))

    def exact(self, text: str, normalised: str) -> bool | None:
        """True for a dictionary name; ``None`` for an acronym's text in the wrong case ("was" for "WAS")
        or a generic word on its own ("disease")."""
        if normalised in self.generic:
            return None
        if normalised in self.texts:
            return True
        forms = self.acronyms.get(normalised)
        if forms is None:
            return False
        return True if _letters_digits(text) in forms else None

    def variant(self, normalised: str) -> str | None:
        """The text of a dictionary name that ``normalised`` is a lexical variant of (a plural, a British
        spelling: "tumours" for "tumor"), or ``None``."""
        key = variant_key(normalised)
        if key in self._generic_keys:
            return None
        return key if key in self.texts else self._variants.get(key)

    def plausible(self, normalised: str) -> bool:
        """Whether a window is worth linking: it begins as some name begins, and ends as some name ends."""
        tokens = normalised.split()
        return bool(tokens) and tokens[0][:STEM] in self.first_stems and (tokens[-1][:STEM] in self.last_stems
                                                                          or tokens[-1].isdigit())


@dataclass
class _Proposal:
    span: Span
    query: str  # what is linked: the span with the document's short forms expanded
    source: str
    defined_at: tuple[int, int] | None = None  # a short form's long form in the text, where it is defined


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
        linker: links the proposed spans (its policy: k, sparse weight, abbreviations detector, reranker).
        detector: ``"dictionary"`` (exact + approximate matching, from the ontology alone), ``"exact"``
            (dictionary names verbatim after normalisation) or ``"tagger"`` (spans from ``tagger``).
        tagger: a :class:`~entitylink.model.tagger.Tagger` (needed by ``detector="tagger"``).
        threshold: approximate and tagger spans are kept when their top concept scores at least this
            (a cosine for a dense index; a probability when the index is calibrated or reranked).
        max_tokens: the longest approximate window, in tokens.
        batch_size: documents (or pieces of long ones) whose spans are linked together, each distinct
            text once.
        max_chars: longer documents are cut at sentence ends into pieces of at most this many characters
            (a short form defined in one piece is expanded in that piece only).
    """

    def __init__(self, linker: Linker, detector: DetectorName = "dictionary", tagger: Any = None,
                 threshold: float = DEFAULT_DETECT_THRESHOLD, max_tokens: int = DEFAULT_MAX_TOKENS,
                 batch_size: int = DEFAULT_BATCH_SIZE, max_chars: int = DEFAULT_MAX_CHARS):
        if detector not in DETECTOR_NAMES:
            raise ValueError(f"detector must be one of {DETECTOR_NAMES}, not {detector!r}")
        if detector == "tagger" and tagger is None:
            raise ValueError("detector='tagger' needs a tagger (entitylink train-tagger)")
        if min(max_tokens, batch_size, max_chars) < 1:
            raise ValueError(f"max_tokens, batch_size and max_chars must be positive, got {max_tokens}, "
                             f"{batch_size} and {max_chars}")
        self.linker = linker
        self.detector = detector
        self.tagger = tagger
        self.threshold = float(threshold)
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        self.max_chars = max_chars
        self._dictionary = NameMatcher.from_index(linker.index)
        detector_name = linker.policy.abbreviations
        self._finder = AbbreviationFinder(detector_name) if detector_name != "off" else None
        self._seen: OrderedDict[str, list[Candidate]] = OrderedDict()  # recent texts' candidates

    def _retrieve(self, queries: list[str]) -> dict[str, list[Candidate]]:
        """Candidates of each text, linking only those not among the last ``MEMORY`` texts linked: the
        same phrases recur across documents."""
        missing = [q for q in queries if q not in self._seen]
        if missing:
            for query, candidates in zip(missing, self.linker.link(missing, threshold=float("-inf"), rerank=False)):
                self._seen[query] = candidates
        out = {}
        for query in queries:
            self._seen.move_to_end(query)
            out[query] = self._seen[query]
        while len(self._seen) > MEMORY:
            self._seen.popitem(last=False)
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

    # ---------------------------------------------------------------- internals
    def _proposals(self, text: str, tagged: list[Span] | None = None) -> list[_Proposal]:
        short_forms = self._finder.find([text]) if self._finder is not None and text.strip() else {}
        if tagged is not None:
            return [_Proposal(s, expand(s.text, short_forms) if short_forms else s.text, "tagger") for s in tagged]
        defined = _long_form_spans(text, short_forms) if short_forms else {}
        out: list[_Proposal] = []
        approximate = []
        for span in windows(text, max(self.max_tokens, MAX_EXACT_TOKENS)):
            query = expand(span.text, short_forms) if short_forms else span.text
            normalised = self._dictionary.normalizer(query)
            exact = self._dictionary.exact(query, normalised)
            if exact:
                out.append(_Proposal(span, query, "exact", defined.get(span.text)))
            elif exact is not None and (name := self._dictionary.variant(normalised)):
                out.append(_Proposal(span, name, "exact", defined.get(span.text)))
            elif (exact is not None and self.detector == "dictionary" and span.tokens <= self.max_tokens
                  and self._dictionary.plausible(normalised)):
                approximate.append(_Proposal(span, query, "approximate", defined.get(span.text)))
        # an exact match wins any overlap, so windows overlapping one need not be linked
        exact_spans = [p.span for p in out]
        out += [p for p in approximate if not any(p.span.overlaps(e) for e in exact_spans)]
        proposed = {p.span for p in out}
        for short, long_form in short_forms.items():  # a defined short form of any length, wherever it recurs
            if not is_boundary_token(short):
                continue
            for match in re.finditer(rf"(?<![\w-]){re.escape(short)}(?![\w-])", text):
                span = Span(match.start(), match.end(), short)
                if len(short) < 3 or span not in proposed:
                    out.append(_Proposal(span, long_form, "abbreviation", defined.get(short)))
        return out

    def _annotate_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        tagged = self.tagger.spans_batch(texts) if self.detector == "tagger" else [None] * len(texts)
        proposals = [self._proposals(text, spans) if text else [] for text, spans in zip(texts, tagged)]
        queries = list(dict.fromkeys(p.query for props in proposals for p in props))
        # spans are found with the retriever's scores; a reranker then re-scores the spans kept
        linked = self._retrieve(queries)
        docs = []
        for props in proposals:
            found = []
            for p in props:
                candidates = linked.get(p.query) or []
                if not candidates or (p.source != "exact" and candidates[0].score < self.threshold
                                      and p.defined_at is None):
                    continue
                entity = Entity(p.span.start, p.span.end, p.span.text, candidates[0].concept_id,
                                candidates[0].score, tuple(candidates), p.source)
                found.append(_Found(entity, p.query, p.defined_at))
            docs.append(_short_forms_as_defined(found, self.threshold))
        if getattr(self.linker, "reranker", None) is not None:
            kept = list(dict.fromkeys(f.query for doc in docs for f in doc))
            reranked = dict(zip(kept, self.linker.link(kept, threshold=float("-inf"))))
            return [[_relinked(f.entity, reranked[f.query]) for f in doc] for doc in docs]
        return [[f.entity for f in doc] for doc in docs]


@dataclass(frozen=True)
class _Found:
    """An entity with the text it was linked as, and where its long form is if it is a defined short form."""

    entity: Entity
    query: str
    defined_at: tuple[int, int] | None

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


def _short_forms_as_defined(found: list[_Found], threshold: float) -> list[_Found]:
    """Resolve overlaps; then a defined short form takes the concept (and the query, for a reranker) of the
    longest entity found in its long form, or keeps its own link if that passes ``threshold``."""
    kept = keep_non_overlapping([f for f in found if f.defined_at is None], rank=lambda f: _rank(f.entity))
    short_forms = []
    for f in found:
        if f.defined_at is None:
            continue
        begin, end = f.defined_at
        inside = [k for k in kept if begin <= k.start and k.end <= end]
        if inside:
            best = max(inside, key=lambda k: (k.end - k.start, k.entity.score))
            short_forms.append(_Found(replace(_relinked(f.entity, best.entity.candidates), source="abbreviation"),
                                      best.query, f.defined_at))
        elif f.entity.score >= threshold or f.entity.source == "exact":
            short_forms.append(f)
    return keep_non_overlapping(kept + short_forms, rank=lambda f: _rank(f.entity))


def _rank(e: Entity) -> tuple:
    return e.source != "exact", -round(e.score, 2), -(e.end - e.start), e.start


def _resolve_overlaps(entities: list[Entity]) -> list[Entity]:
    """Keep the best of overlapping entities: exact matches first, then by score, then the longer one."""
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
