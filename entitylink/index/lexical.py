"""Lexical index: an ontology's names found in running text at dictionary speed, with no encoder.

Names and text are cut into the same tokens (runs of letters and digits). Each token is normalised as
the index normalises names, folded to its lexical-variant key (plural, British spelling:
:mod:`entitylink.text.variants`) and mapped to its equivalence class: words that the ontology's own
synonyms swap in one position ("Renal cyst" / "Kidney cyst", "Abnormality of the ear" / "Anomaly of the
ear"), learnt from the names alone. An Aho–Corasick automaton (``pyahocorasick``) over the keyed names
finds every name in one pass over a document, never across a sentence end, a bracket, a colon, a
semicolon or a comma. A second pass finds names written with their words in another order, only
prepositions between ("abnormalities of the kidney" for "Kidney abnormality"), or split by a coordination
("aplastic or hypoplastic nails" for "Aplastic nails").

Rules that keep string matching honest on any ontology, all read from the names themselves: a short
name in capitals ("WAS", "CORD") matches only when written in capitals; a word found in 1% of the names
or more ("disease", "syndrome") is no mention on its own, unless the ontology gives its concept another
one-word name ("seizure" is also "epilepsy", "neoplasm" "cancer"); a match starts and ends with a word
that may bound a mention (no stop word, no bare number) and follows no negating prefix ("non-", "anti-");
one word alone matches as itself, a plural or a spelling, never through its class.
"""

from __future__ import annotations

import bisect
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from ..errors import require
from ..text.normalize import Normalizer
from ..text.spans import STOP_WORDS, Span, is_boundary_token
from ..text.variants import fold_word

MatchKind = Literal["exact", "variant", "reordered", "coordinated"]
MAX_NAME_TOKENS = 12  # longer names are not matched verbatim
GENERIC_SHARE = 0.01  # a word in 1% of the names or more is generic on its own...
GENERIC_MIN = 20  # ...and in at least this many
ACRONYM_CHARS = 6  # longer names in capitals are titles (OMIM's "ANIRIDIA"), matched in any case
MIN_SUPPORT = 2  # a word swap is learnt when the synonyms of this many concepts show it
MAX_CLASS = 8  # equivalence classes stay small: a swap that would make one larger is not learnt
STEM = 5  # "infarct" and "infarction" share their first five letters
# reordered names turn around one of these ("loss of hearing"); coordinated ones are split by these
PREPOSITIONS = frozenset({"of", "in", "the", "a", "an", "on", "at", "to", "for", "from", "with"})
CONJUNCTIONS = frozenset({"and", "or", "nor"})
MAX_GAP = 3  # words between the parts of a coordinated name
NEGATIONS = frozenset({"non", "anti", "not"})  # prefixes that, joined by a hyphen, negate the name after them
MAX_POSTINGS = 5_000  # names read per word when telling partial matches
SLACK_FROM = 3  # windows of this many content words may have one that is in no name
MAX_CANDIDATES = 256  # names a partial window is scored against

# tokens, and what separates the segments a name never crosses: ( ) [ ] ; : , and sentence ends
_STREAM = re.compile(r"(?P<t>[^\W_]+)|[()\[\];:,]|(?<=[.!?])\s+(?=[A-Z0-9(\[])|\n\s*\n")


@dataclass(frozen=True)
class Match:
    """A name found in text: ``text[start:end]``, the dictionary text it matched and how."""

    start: int
    end: int
    text: str
    name: str  # the normalised dictionary text whose concept the span takes
    kind: MatchKind
    tokens: int

    def span(self) -> Span:
        return Span(self.start, self.end, self.text, self.tokens)


@dataclass
class Tokens:
    """A document cut into tokens: offsets, raw text, normalised text and key of each; ``None`` keys are
    segment breaks."""

    starts: list[int]
    ends: list[int]
    raw: list[str]
    norms: list[str | None]
    keys: list[str | None]

    def segments(self) -> Iterator[tuple[int, int]]:
        """(first, last + 1) token positions of each run without a break."""
        first = 0
        for i, key in enumerate(self.keys):
            if key is None:
                if i > first:
                    yield first, i
                first = i + 1
        if len(self.keys) > first:
            yield first, len(self.keys)


def _letters_digits(text: str) -> str:
    return "".join(c for c in text if c.isalnum())


def is_acronym(name: str) -> bool:
    """A short name in capitals ("WAS", "CORD", "G6PD"): it names a concept only when written so."""
    letters = [c for c in name if c.isalpha()]
    return len(letters) >= 2 and not any(c.islower() for c in letters) and len(name) <= ACRONYM_CHARS


class LexicalIndex:
    """An ontology's names for matching in text (see the module docs).

    Args:
        names: the dictionary's surface forms.
        concept_ids: the concept of each name (``A|B`` where several concepts share it).
        normalizer: how tokens are normalised (the index's normaliser).
        equivalences: learn word classes from the synonyms (``False``: plurals and spellings only).
        generic_share: words in this share of the names (and at least 20 of them) are no mention alone.
    """

    def __init__(self, names: Sequence[str], concept_ids: Sequence[str], normalizer: Normalizer | None = None,
                 *, equivalences: bool = True, generic_share: float = GENERIC_SHARE):
        require("ahocorasick", "dictionary matching", "pip install pyahocorasick")
        import ahocorasick

        self.normalizer = normalizer or Normalizer()
        self._cache: dict[str, tuple[str, str]] = {}
        self.classes: dict[str, str] = {}
        normalised = [self._norm_tokens(name) for name in names]
        if equivalences:
            self.classes = _learn_classes(normalised, concept_ids)
            self._cache.clear()  # its keys were made before the classes were known
        self.concepts: dict[str, str] = {}  # normalised text -> concept id(s)
        self.names: dict[str, str] = {}  # normalised text -> the first name written so
        self.acronyms: dict[str, set[str]] = {}  # an acronym's normalised text -> the ways it is written
        by_key: dict[str, list[str]] = defaultdict(list)
        in_names: Counter[str] = Counter()
        for name, tokens, cid in zip(names, normalised, concept_ids):
            if not tokens or len(tokens) > MAX_NAME_TOKENS:
                continue
            text = " ".join(tokens)
            self.concepts[text] = _join(self.concepts.get(text), cid)
            self.names.setdefault(text, name)
            if is_acronym(name) and len(tokens) == 1:
                self.acronyms.setdefault(text, set()).add(_letters_digits(name))
            key = " ".join(self._key(t) for t in tokens)
            if text not in by_key[key]:
                by_key[key].append(text)
            in_names.update(set(tokens))
        n = len(self.concepts)
        # a word in many names is a head ("disease", "syndrome"), not a mention when alone
        frequent = {w for w, c in in_names.items() if c >= generic_share * n and c >= GENERIC_MIN}
        single: dict[str, set[str]] = defaultdict(set)  # concept -> its one-word names' keys
        for text, cid in self.concepts.items():
            if " " not in text:
                for part in cid.split("|"):
                    single[part].add(_fold(text))
        # a frequent word whose concept has another one-word name names something specific ("seizure" is
        # also "epilepsy", "neoplasm" "cancer"); otherwise it is a head ("disease", "syndrome")
        self.generic = {w for w in frequent if not (w in self.concepts and any(
            single[part] - {_fold(w)} for part in self.concepts[w].split("|")))}
        self._generic_keys = {self._key(w) for w in self.generic}
        self._texts = set(self.concepts) - set(self.acronyms)
        # a key shared by several names is read as the first of them, sorted: the same on every run
        self._key_text = {key: min(t for t in texts if t in self._texts) for key, texts in by_key.items()
                          if any(t in self._texts for t in texts)}
        self._fold_text: dict[str, str] = {}
        for text in sorted(self._texts):
            self._fold_text.setdefault(_fold(text), text)
        self._automaton = ahocorasick.Automaton()
        for key in by_key:
            self._automaton.add_word(f" {key} ", (key, key.count(" ") + 1))
        if by_key:
            self._automaton.make_automaton()
        self._empty = not by_key
        # bag-of-words keys of the multi-word names, for reordered and coordinated matches
        self._bags: dict[tuple[str, ...], str] = {}
        self._anchors: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        word_count: Counter[str] = Counter()
        content = {}
        for key in self._key_text:
            words = tuple(w for w in key.split(" ") if w not in PREPOSITIONS)
            if len(words) >= 2:
                content[key] = words
                word_count.update(set(words))
        for key, words in content.items():
            bag = tuple(sorted(words))
            if bag in self._bags:
                continue
            self._bags[bag] = self._key_text[key]
            self._anchors[min(words, key=lambda w: (word_count[w], w))].append(bag)
        # the content words of each entry (first five letters of their keys), for partial matches
        self._entry_words: list[frozenset[str]] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for i, tokens in enumerate(normalised):
            words = frozenset(self._key(t)[:STEM] for t in tokens if t not in STOP_WORDS) \
                if 0 < len(tokens) <= MAX_NAME_TOKENS else frozenset()
            for w in words:
                postings[w].append(i)
            self._entry_words.append(words)
        self._postings = dict(postings)
        self._partial: dict[tuple[str, ...], list[int]] = {}
        self._lookups: dict[str, str | None] = {}
        self.first_stems = {t[0][:STEM] for t in normalised if t}
        self.last_stems = {t[-1][:STEM] for t in normalised if t}
        self.words = {self._key(w) for w in in_names}

    @classmethod
    def from_index(cls, index, **options) -> LexicalIndex:
        """The names of a dense or hybrid index, normalised as it normalises them."""
        dense = getattr(index, "dense", index)
        return cls(list(dense.names), list(dense.concept_ids), index.normalizer, **options)

    @classmethod
    def from_ontology(cls, ontology, normalizer: Normalizer | None = None, **options) -> LexicalIndex:
        frame = ontology.frame
        return cls(frame["name"].tolist(), frame["concept_id"].tolist(), normalizer, **options)

    # ---------------------------------------------------------------- tokens
    def _norm_tokens(self, text: str) -> list[str]:
        return [part for m in _STREAM.finditer(text) if m.lastgroup for part in self._word(m.group()).split(" ")
                if part] if text else []

    def _word(self, token: str) -> str:
        cached = self._cache.get(token)
        if cached is None:
            return self._remember(token)[0]
        return cached[0]

    def _remember(self, token: str) -> tuple[str, str]:
        norm = self.normalizer(token)
        key = " ".join(self._key(part) for part in norm.split(" ")) if norm else ""
        if len(self._cache) > 500_000:
            self._cache.clear()
        self._cache[token] = (norm, key)
        return norm, key

    def _key(self, word: str) -> str:
        folded = _fold(word)
        return self.classes.get(folded, folded)

    def tokens(self, text: str) -> Tokens:
        """``text`` cut into tokens and segment breaks."""
        starts, ends, raw, norms, keys = [], [], [], [], []
        cache, remember = self._cache, self._remember
        add_start, add_end, add_raw, add_norm, add_key = \
            starts.append, ends.append, raw.append, norms.append, keys.append
        for m in _STREAM.finditer(text):
            if m.lastgroup:
                token = m.group()
                norm, key = cache.get(token) or remember(token)
                if not norm:
                    continue
                start, end = m.span()
                add_start(start)
                add_end(end)
                add_raw(token)
                add_norm(norm)
                add_key(key)
            elif keys and keys[-1] is not None:
                start, end = m.span()
                add_start(start)
                add_end(end)
                add_raw("")
                add_norm(None)
                add_key(None)
        return Tokens(starts, ends, raw, norms, keys)

    # ---------------------------------------------------------------- matching
    def find(self, text: str, tokens: Tokens | None = None, reordered: bool = True) -> list[Match]:
        """Every name in ``text`` (overlapping ones too), in text order."""
        tokens = tokens or self.tokens(text)
        if self._empty or not tokens.keys:
            return []
        stream, end_at = _stream(tokens.keys)
        found: dict[tuple[int, int], Match] = {}
        for end, (key, n) in self._automaton.iter(stream):
            last = end_at[end]
            first = last - n + 1
            match = self._classify(text, tokens, first, last, key)
            if match is not None:
                found[(first, last)] = match
        if reordered and self._bags:
            for match in self._reordered(text, tokens, found):
                found.setdefault((match.start, match.end), match)
        return sorted(found.values(), key=lambda m: (m.start, -m.end))

    def _bounds(self, text: str, tokens: Tokens, first: int, last: int) -> Span | None:
        raw = tokens.raw
        if not is_boundary_token(raw[first]):
            return None
        if not (is_boundary_token(raw[last]) or (last > first and raw[last].isdigit() and len(raw[last]) <= 2)):
            return None
        start, end = tokens.starts[first], tokens.ends[last]
        if end - start < 3:
            return None
        if first and start and text[start - 1] == "-" and tokens.norms[first - 1] in NEGATIONS \
                and tokens.ends[first - 1] == start - 1:
            return None  # "insulin-dependent diabetes" inside "non-insulin-dependent diabetes" is not that
        return Span(start, end, text[start:end], last - first + 1)

    def _classify(self, text: str, tokens: Tokens, first: int, last: int, key: str) -> Match | None:
        span = self._bounds(text, tokens, first, last)
        if span is None:
            return None
        norm = " ".join(tokens.norms[first:last + 1])  # type: ignore[arg-type]
        if norm in self.generic:
            return None
        if norm in self._texts:
            return Match(span.start, span.end, span.text, norm, "exact", span.tokens)
        forms = self.acronyms.get(norm)
        if forms is not None:
            if _letters_digits(span.text) in forms:
                return Match(span.start, span.end, span.text, norm, "exact", span.tokens)
            return None
        if key in self._generic_keys:
            return None
        # a plural or spelling of a name first; through word classes only for names of several words
        name = self._fold_text.get(_fold(norm))
        if name is None and first < last:
            name = self._key_text.get(key)
        return None if name is None else Match(span.start, span.end, span.text, name, "variant", span.tokens)

    def _reordered(self, text: str, tokens: Tokens, found: dict) -> Iterator[Match]:
        """Names whose words are reordered (only prepositions between), or split by a coordination."""
        keys = tokens.keys
        anchors = self._anchors
        hits = [i for i, key in enumerate(keys) if key in anchors]
        if not hits:
            return
        segments = list(tokens.segments())
        ends = [stop for _, stop in segments]
        done: set[int] = set()
        for i in hits:
            number = bisect.bisect_right(ends, i)
            if number in done:
                continue
            done.add(number)
            begin, stop = segments[number]
            where: dict[str, list[int]] = defaultdict(list)
            for j in range(begin, stop):
                where[keys[j]].append(j)  # type: ignore[index]
            for word in [w for w in where if w in anchors]:
                for bag in anchors[word]:
                    if not all(w in where for w in bag):
                        continue
                    match = self._place(text, tokens, bag, where)
                    if match is not None and (match.start, match.end) not in found:
                        yield match

    def _place(self, text: str, tokens: Tokens, bag: tuple[str, ...], where: dict[str, list[int]]) -> Match | None:
        """The shortest run of tokens holding the bag's words, if only prepositions (reordered) or a
        coordination (same order, a few words between) lie between them."""
        need = Counter(bag)
        best = None
        for anchor in where[bag[0]]:
            lo = max(0, anchor - len(bag) - MAX_GAP)
            positions = sorted(i for w in need for i in where[w] if lo <= i <= anchor + len(bag) + MAX_GAP)
            for a in range(len(positions)):
                got: Counter[str] = Counter()
                for b in range(a, len(positions)):
                    got[tokens.keys[positions[b]]] += 1  # type: ignore[index]
                    if all(got[w] >= c for w, c in need.items()):
                        first, last = positions[a], positions[b]
                        if best is None or last - first < best[1] - best[0]:
                            best = (first, last)
                        break
        if best is None:
            return None
        first, last = best
        inside = [tokens.keys[i] for i in range(first, last + 1)]
        between = [tokens.norms[i] for i in range(first, last + 1) if tokens.keys[i] not in need]
        order = [w for w in inside if w in need]
        name = self._bags[bag]
        name_order = [w for w in (self._key(t) for t in name.split(" ")) if w in need]
        if len(between) > MAX_GAP or len(order) != len(bag):
            return None
        if order == name_order:
            if not between or not (set(between) & CONJUNCTIONS):
                return None  # contiguous matches are the automaton's; other words between are no coordination
            kind: MatchKind = "coordinated"
        elif all(w in PREPOSITIONS for w in between):
            kind = "reordered"  # "severe intellectual disability" for "Intellectual disability, severe" too
        else:
            return None
        span = self._bounds(text, tokens, first, last)
        if span is None:
            return None
        return Match(span.start, span.end, span.text, name, kind, span.tokens)

    def lookup(self, text: str) -> str | None:
        """The dictionary text that all of ``text`` is (or is a plural or spelling of), or ``None``."""
        if text in self._lookups:
            return self._lookups[text]
        tokens = self.tokens(text)
        name = None
        if tokens.keys and None not in tokens.keys:
            match = self._classify(text, tokens, 0, len(tokens.keys) - 1, " ".join(tokens.keys))  # type: ignore[arg-type]
            name = None if match is None else match.name
        if len(self._lookups) > 100_000:
            self._lookups.clear()
        self._lookups[text] = name
        return name

    def concept(self, name: str) -> str:
        """The concept id(s) of a normalised dictionary text."""
        return self.concepts[name]

    def plausible(self, tokens: Tokens, first: int, last: int) -> bool:
        """Whether a window is worth linking: it begins as some name begins, ends as some name ends."""
        a, z = tokens.norms[first], tokens.norms[last]
        return a[:STEM] in self.first_stems and (z[:STEM] in self.last_stems or z.isdigit())  # type: ignore[index]

    def partial(self, words: Sequence[str]) -> list[int]:
        """The entries (positions in the names given) that content words (keys) match partly, by their first
        five letters: a word alone that is no word of any name, the one-word names it begins as ("infarct",
        "infarction"); two words, names holding both ("myocardial infarct"); more, names holding all but one
        ("hearing loss in both ears"). A name may have at most twice as many words as it shares."""
        memo = self._partial.get(tuple(words))
        if memo is not None:
            return memo
        if len(self._partial) > 200_000:
            self._partial.clear()
        self._partial[tuple(words)] = found = self._find_partial(words)
        return found

    def _find_partial(self, words: Sequence[str]) -> list[int]:
        stems = {w[:STEM] for w in words}
        if len(stems) == 1 and len(set(words)) == 1:
            if words[0] in self.words:
                return []
            return [n for n in self._postings.get(words[0][:STEM], ())[:MAX_POSTINGS]
                    if len(self._entry_words[n]) == 1]
        need = len(stems) - (len(stems) >= SLACK_FROM)
        found: dict[int, None] = {}
        # a name with all the words (or all but one) holds one of the two rarest
        for stem in sorted(stems, key=lambda w: len(self._postings.get(w, ())))[:2]:
            for n in self._postings.get(stem, ())[:MAX_POSTINGS]:
                shared = len(self._entry_words[n] & stems)
                if shared >= need and 2 * shared >= len(self._entry_words[n]):
                    found[n] = None
        return list(found)[:MAX_CANDIDATES]

    def windows(self, text: str, tokens: Tokens, max_tokens: int) -> Iterator[tuple[Span, list[int]]]:
        """Windows of up to ``max_tokens`` tokens inside a segment that bound as names do, begin and end as
        names do, and match some names partly, with those names' positions (:meth:`partial`)."""
        keys = tokens.keys
        for begin, stop in tokens.segments():
            for first in range(begin, stop):
                if not is_boundary_token(tokens.raw[first]):
                    continue
                for last in range(first, min(stop, first + max_tokens)):
                    if not self.plausible(tokens, first, last):
                        continue
                    span = self._bounds(text, tokens, first, last)
                    if span is None:
                        continue
                    words = [k for k in keys[first:last + 1] if k not in STOP_WORDS]  # type: ignore[operator]
                    entries = self.partial(words) if words else []  # type: ignore[arg-type]
                    if entries:
                        yield span, entries


def _fold(text: str) -> str:
    """The variant key of normalised text, word by word: no accents ("café" -> "cafe", as ontologies often
    write them), singular, American spelling."""
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return " ".join(fold_word(w) for w in text.split(" "))


def _stream(keys: Sequence[str | None]) -> tuple[str, dict[int, int]]:
    """The keys joined by spaces (``|`` for a break), and the token at each token's trailing space."""
    parts = []
    end_at: dict[int, int] = {}
    position = 1
    for i, key in enumerate(keys):
        word = "|" if key is None else key
        parts.append(word)
        position += len(word)
        end_at[position] = i
        position += 1
    return " " + " ".join(parts) + " ", end_at


def _join(existing: str | None, cid: str) -> str:
    if not existing:
        return cid
    parts = dict.fromkeys(existing.split("|"))
    parts.update(dict.fromkeys(cid.split("|")))
    return "|".join(parts)


def _learn_classes(names: Sequence[list[str]], concept_ids: Sequence[str]) -> dict[str, str]:
    """Words that synonyms of one concept swap in one position, as classes (each word mapped to its class's
    first word, sorted).

    A swap is learnt when the names of ``MIN_SUPPORT`` concepts or more show it and no two concepts'
    names differ by it alone ("Benign X" and "Malignant X" naming two concepts: benign is no malignant).
    Numbers are never swapped, and two classes merge only where each word of one is swapped with each
    word of the other somewhere (no chains: "liver" ~ "hepatic" and "hepatic" ~ "portosystemic" do not make
    "liver" ~ "portosystemic").
    """
    slots: dict[tuple[str, ...], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for tokens, cid in zip(names, concept_ids):
        if len(tokens) < 2:
            continue
        form = tuple(_fold(t) for t in tokens)
        for i, word in enumerate(form):
            if word in STOP_WORDS or not word.isalpha() or _is_roman(word):
                continue
            slots[form[:i] + ("",) + form[i + 1:]][word].update(cid.split("|"))
    support: Counter[tuple[str, str]] = Counter()
    against: Counter[tuple[str, str]] = Counter()
    for words in slots.values():
        if len(words) < 2 or len(words) > 50:  # a slot filled by many words is a list of kinds, not synonyms
            continue
        items = sorted(words.items())
        for i, (a, ids_a) in enumerate(items):
            for b, ids_b in items[i + 1:]:
                shared = ids_a & ids_b
                if shared:
                    support[(a, b)] += 1
                if ids_a - shared and ids_b - shared:
                    against[(a, b)] += 1
    parent: dict[str, str] = {}
    members: dict[str, set[str]] = {}

    def root(word: str) -> str:
        while parent.get(word, word) != word:
            word = parent[word]
        return word

    for (a, b), count in sorted(support.items(), key=lambda item: (-item[1], item[0])):
        if count < MIN_SUPPORT:
            break
        if against[(a, b)]:
            continue
        ra, rb = root(a), root(b)
        if ra == rb:
            continue
        group_a, group_b = members.get(ra, {ra}), members.get(rb, {rb})
        if len(group_a) + len(group_b) > MAX_CLASS or not all(
                support[(min(x, y), max(x, y))] and not against[(min(x, y), max(x, y))]
                for x in group_a for y in group_b):
            continue  # every two words of a class are swapped somewhere: no chains
        parent[rb] = ra
        members[ra] = group_a | group_b
        members.pop(rb, None)
    out = {}
    for group in members.values():
        first = min(group)
        out.update({w: first for w in group if w != first})
    return out


_ROMAN = re.compile(r"^(?=[ivxlc]+$)c{0,3}(xc|xl|l?x{0,3})(ix|iv|v?i{0,3})$")


def _is_roman(word: str) -> bool:
    return bool(_ROMAN.match(word))
