"""spaCy pipeline component: links ``doc.ents`` to ontology concepts with an entitylink index.

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")            # or a NER model, e.g. scispacy's en_core_sci_sm
    nlp.add_pipe("entitylink", config={"index": "hpo-index", "k": 5, "threshold": 0.7})
    doc = nlp("The patient had a heart attack.")
    doc.ents[0]._.kb_ents                            # [("HP:0001658", 0.98), ...]
    doc.ents[0].kb_id_                               # "HP:0001658"

Like scispacy's ``EntityLinker``: ``Span._.kb_ents`` holds (concept id, score) pairs, best first,
above the threshold; ``ent.kb_id_`` is the best one (entities below the threshold get none: a NIL
decision). Abbreviations are resolved first: from scispacy's ``AbbreviationDetector`` when it is in
the pipeline, else with entitylink's own detector on the document text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import minibatch

from ._atomic import atomic_write_text
from .abbreviations import AbbreviationFinder, expand
from .encoder import DEFAULT_MODEL, Encoder
from .index import DictionaryIndex
from .linker import Candidate, Linker

CONFIG_FILE = "entitylink_component.json"

if not Span.has_extension("kb_ents"):
    Span.set_extension("kb_ents", default=[])


class EntityLinkerComponent:
    """Sets ``ent._.kb_ents`` and ``ent.kb_id_`` for every entity of a doc (see module docs)."""

    def __init__(
        self,
        nlp: Language,
        name: str = "entitylink",
        *,
        index: str | None = None,
        k: int = 5,
        threshold: float = 0.7,
        resolve_abbreviations: bool = True,
        set_kb_id: bool = True,
        batch_size: int | None = None,
        precision: str = "auto",
    ):
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        self.name = name
        self.index_path = index
        self.k = k
        self.threshold = threshold
        self.resolve_abbreviations = resolve_abbreviations
        self.set_kb_id = set_kb_id
        self.batch_size = batch_size
        self.precision = precision
        self._linker: Linker | None = None
        self._finder = AbbreviationFinder()

    @property
    def linker(self) -> Linker:
        """The linker, loading the index on first use."""
        if self._linker is None:
            if not self.index_path:
                raise ValueError(
                    f"the '{self.name}' component has no index: pass config={{'index': 'path/to/index'}} "
                    "to nlp.add_pipe, or load a saved pipeline"
                )
            self.set_index(DictionaryIndex.load(self.index_path, precision=self.precision))
        return self._linker  # type: ignore[return-value]

    def set_index(self, index: DictionaryIndex) -> None:
        """Use an index already in memory (e.g. one just built)."""
        if index.encoder is not None and self.batch_size is not None:
            index.encoder.batch_size = self.batch_size
        self._linker = Linker(index, k=self.k)

    # ---------------------------------------------------------------- processing
    def __call__(self, doc: Doc) -> Doc:
        return self._link([doc])[0]

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        """Link the entities of many docs with one encoder call per batch of docs."""
        for docs in minibatch(stream, size=batch_size):
            yield from self._link(list(docs))

    def mention_text(self, ent: Span, long_forms: dict) -> str:
        """The text to link for an entity: its long form when it is a defined abbreviation."""
        if not self.resolve_abbreviations:
            return ent.text
        if Span.has_extension("long_form") and ent._.long_form is not None:
            return str(ent._.long_form)
        by_span, by_text = long_forms
        if (ent.start_char, ent.end_char) in by_span:
            return by_span[(ent.start_char, ent.end_char)]
        return expand(ent.text, by_text)

    def _long_forms(self, doc: Doc) -> tuple[dict, dict]:
        if not self.resolve_abbreviations or not doc.ents:
            return {}, {}
        if Doc.has_extension("abbreviations") and doc._.abbreviations:
            by_span = {(s.start_char, s.end_char): str(s._.long_form) for s in doc._.abbreviations}
            by_text = {s.text: str(s._.long_form) for s in doc._.abbreviations}
            return by_span, by_text
        return {}, self._finder.find([doc.text])

    def _link(self, docs: list[Doc]) -> list[Doc]:
        mentions, owners = [], []
        for d, doc in enumerate(docs):
            long_forms = self._long_forms(doc)
            for e, ent in enumerate(doc.ents):
                mentions.append(self.mention_text(ent, long_forms))
                owners.append((d, e))
        if not mentions:
            return docs
        results: list[list[Candidate]] = self.linker.link(mentions, k=self.k)
        per_doc: dict[int, dict[int, list[Candidate]]] = {}
        for (d, e), candidates in zip(owners, results):
            per_doc.setdefault(d, {})[e] = [c for c in candidates if c.score >= self.threshold]
        for d, links in per_doc.items():
            doc = docs[d]
            ents = list(doc.ents)
            if self.set_kb_id:
                ents = [
                    Span(doc, ent.start, ent.end, label=ent.label, kb_id=links[e][0].concept_id if links[e] else "")
                    for e, ent in enumerate(ents)
                ]
                doc.ents = ents
            for e, ent in enumerate(doc.ents):
                ent._.kb_ents = [(c.concept_id, c.score) for c in links[e]]
        return docs

    # ---------------------------------------------------------------- serialisation
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Save settings, the index and (unless it is the packaged default) the model."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        index = self.linker.index
        encoder = index.encoder
        index.save(path / "index")
        if encoder.model_id != DEFAULT_MODEL:
            encoder.save(path / "model")
        settings = {"k": self.k, "threshold": self.threshold, "resolve_abbreviations": self.resolve_abbreviations,
                    "set_kb_id": self.set_kb_id, "batch_size": self.batch_size, "precision": self.precision,
                    "model": "model" if encoder.model_id != DEFAULT_MODEL else DEFAULT_MODEL}
        atomic_write_text(path / CONFIG_FILE, json.dumps(settings, indent=2))

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> EntityLinkerComponent:
        """Load what :meth:`to_disk` saved."""
        path = Path(path)
        settings = json.loads((path / CONFIG_FILE).read_text())
        for key in ("k", "threshold", "resolve_abbreviations", "set_kb_id", "batch_size", "precision"):
            setattr(self, key, settings[key])
        meta = json.loads((path / "index" / "meta.json").read_text())["encoder"]
        model = str(path / "model") if settings["model"] != DEFAULT_MODEL else DEFAULT_MODEL
        encoder = Encoder(model, pooling=meta["pooling"], max_length=meta["max_length"], precision=self.precision)
        self.index_path = str(path / "index")
        self.set_index(DictionaryIndex.load(path / "index", encoder=encoder))
        return self


@Language.factory(
    "entitylink",
    default_config={
        "index": None, "k": 5, "threshold": 0.7, "resolve_abbreviations": True,
        "set_kb_id": True, "batch_size": None, "precision": "auto",
    },
    assigns=["span._.kb_ents", "token.ent_kb_id"],
)
def make_entity_linker(
    nlp: Language, name: str, index: str | None, k: int, threshold: float, resolve_abbreviations: bool,
    set_kb_id: bool, batch_size: int | None, precision: str,
) -> EntityLinkerComponent:
    """spaCy factory for :class:`EntityLinkerComponent` (``nlp.add_pipe("entitylink", config=...)``)."""
    return EntityLinkerComponent(
        nlp, name, index=index, k=k, threshold=threshold, resolve_abbreviations=resolve_abbreviations,
        set_kb_id=set_kb_id, batch_size=batch_size, precision=precision,
    )
