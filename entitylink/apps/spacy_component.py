"""spaCy pipeline component: links ``doc.ents`` to ontology concepts with an entitylink index.

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")            # or a NER model, e.g. scispacy's en_core_sci_sm
    nlp.add_pipe("entitylink", config={"index": "hpo-index"})
    doc = nlp("The patient had a heart attack.")
    doc.ents[0]._.kb_ents                            # [("HP:0001658", 0.98), ...]
    doc.ents[0].kb_id_                               # "HP:0001658"

Without an upstream NER the component finds the mentions itself: ``config={"index": ..., "detect":
"dictionary"}`` (names verbatim plus approximate windows scored by the linker, from the ontology alone)
or ``"exact"`` (names verbatim), or ``"tagger"`` with ``config["tagger"]`` a directory from
``entitylink train-tagger``; found entities are added where they do not overlap an upstream one,
with label ``config["label"]`` (default ``ENTITY``). ``"detect": "none"`` (the default) links the
upstream entities only.

Like scispacy's ``EntityLinker``: ``Span._.kb_ents`` holds (concept id, score) pairs, best first;
``ent.kb_id_`` is the best one (an entity left with no candidate gets none: a NIL decision). What is
linked and kept follows the index's :class:`~entitylink.link.policy.LinkingPolicy` (``k``,
``threshold``, ``abbreviations``); the config's ``k``, ``threshold`` and ``abbreviations`` override it
when set. Abbreviations come from scispacy's ``AbbreviationDetector`` when it is in the pipeline, else
from the linker's own detector run on the document text.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import require

require("spacy", "the spaCy component", "pip install 'entitylink[spacy]'")

from spacy.language import Language  # noqa: E402 - after the check that names the missing extra
from spacy.tokens import Doc, Span  # noqa: E402
from spacy.util import minibatch  # noqa: E402

from .._io import atomic_write_text, recover_directory  # noqa: E402
from ..link.linker import Candidate, Linker  # noqa: E402
from ..model.defaults import DEFAULT_MODEL, DEFAULT_PRECISION  # noqa: E402

CONFIG_FILE = "entitylink_component.json"
_SETTINGS = ("k", "threshold", "abbreviations", "sparse_weight", "set_kb_id", "batch_size", "precision", "detect",
             "detect_threshold", "label")
DETECT = ("none", "dictionary", "exact", "tagger")

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
        k: int | None = None,
        threshold: float | None = None,
        abbreviations: str | None = None,
        sparse_weight: float | None = None,
        set_kb_id: bool = True,
        batch_size: int | None = None,
        precision: str = DEFAULT_PRECISION,
        detect: str = "none",
        detect_threshold: float | None = None,
        label: str = "ENTITY",
        tagger: str | None = None,
    ):
        from ..link.policy import LinkingPolicy

        if detect not in DETECT:
            raise ValueError(f"detect must be one of {DETECT}, not {detect!r}")
        if detect == "tagger" and not tagger:
            raise ValueError('detect="tagger" needs config["tagger"], a directory from entitylink train-tagger')
        self.tagger_path = tagger
        self._tagger = None
        self.detect, self.detect_threshold, self.label = detect, detect_threshold, label
        self._annotator = None

        LinkingPolicy().override(k=k, threshold=threshold, abbreviations=abbreviations,
                                 sparse_weight=sparse_weight)  # fail early on bad values
        self.name = name
        self.index_path = index
        self.k, self.threshold, self.abbreviations, self.sparse_weight = k, threshold, abbreviations, sparse_weight
        self.set_kb_id = set_kb_id
        self.batch_size = batch_size
        self.precision = precision
        self._linker: Linker | None = None

    @property
    def linker(self) -> Linker:
        """The linker, opening the index on first use."""
        if self._linker is None:
            if not self.index_path:
                raise ValueError(
                    f"the '{self.name}' component has no index: pass config={{'index': 'path/to/index'}} "
                    "to nlp.add_pipe, or load a saved pipeline"
                )
            self.set_linker(Linker.load(self.index_path, precision=self.precision))
        return self._linker  # type: ignore[return-value]

    def set_linker(self, linker: Linker) -> None:
        """Link with ``linker`` (e.g. one just built, or the service's); the config's overrides apply to it."""
        policy = linker.policy.override(k=self.k, threshold=self.threshold, abbreviations=self.abbreviations,
                                        sparse_weight=self.sparse_weight)
        if policy != linker.policy:
            linker = Linker(linker.index, policy, reranker=linker.reranker)
        encoder = getattr(linker.index, "encoder", None)
        if encoder is not None and self.batch_size is not None:
            encoder.batch_size = self.batch_size
        self._linker = linker
        self._annotator = None

    @property
    def annotator(self):
        """The detector-and-linker that finds mentions (``detect`` other than ``"none"``)."""
        if self._annotator is None:
            from ..link.annotate import Annotator

            # detect_threshold None: the index's saved one
            self._annotator = Annotator(self.linker, detector=self.detect, threshold=self.detect_threshold,
                                        tagger=self.tagger)
        return self._annotator

    # ---------------------------------------------------------------- processing
    def __call__(self, doc: Doc) -> Doc:
        return self._link([doc])[0]

    def pipe(self, stream: Iterable[Doc], batch_size: int = 128) -> Iterator[Doc]:
        """Link the entities of many docs with one encoder call per batch of docs."""
        for docs in minibatch(stream, size=batch_size):
            yield from self._link(list(docs))

    def _mentions(self, doc: Doc) -> tuple[list[str], list[str | None]]:
        """Each entity's text and the context its abbreviations are resolved in."""
        if self.linker.policy.abbreviations == "off":
            return [ent.text for ent in doc.ents], [None] * len(doc.ents)
        if Doc.has_extension("abbreviations") and doc._.abbreviations:  # scispacy's detector ran
            by_span = {(s.start_char, s.end_char): str(s._.long_form) for s in doc._.abbreviations}
            by_text = {s.text: str(s._.long_form) for s in doc._.abbreviations}
            texts = [by_span.get((e.start_char, e.end_char), by_text.get(e.text, e.text)) for e in doc.ents]
            return texts, [None] * len(texts)
        return [ent.text for ent in doc.ents], [doc.text] * len(doc.ents)

    def _link(self, docs: list[Doc]) -> list[Doc]:
        self._link_upstream(docs)
        if self.detect != "none":
            self._detect(docs)
        return docs

    @property
    def tagger(self):
        """The mention tagger (``detect="tagger"``), opened on first use."""
        if self._tagger is None and self.detect == "tagger":
            from ..model.tagger import Tagger

            self._tagger = Tagger.open(self.tagger_path, "the tagger", precision=self.precision)
        return self._tagger

    def _detect(self, docs: list[Doc]) -> None:
        """Add the mentions the annotator finds where no entity is yet."""
        for doc, entities in zip(docs, self.annotator.annotate([doc.text for doc in docs])):
            taken, found, candidates = list(doc.ents), [], {}
            for e in entities:
                span = doc.char_span(e.start, e.end, label=self.label,
                                     kb_id=e.concept_id if self.set_kb_id else "", alignment_mode="expand")
                if span is not None and not any(span.start < o.end and o.start < span.end for o in taken):
                    taken.append(span)
                    found.append(span)
                    candidates[(span.start, span.end)] = [(c.concept_id, c.score) for c in e.candidates]
            if found:
                doc.ents = sorted([*doc.ents, *found], key=lambda s: s.start)
                for ent in doc.ents:
                    if (ent.start, ent.end) in candidates:
                        ent._.kb_ents = candidates[(ent.start, ent.end)]

    def _link_upstream(self, docs: list[Doc]) -> list[Doc]:
        from ..text.spans import context_window

        mentions, contexts, windows, owners = [], [], [], []
        for d, doc in enumerate(docs):
            texts, where = self._mentions(doc) if doc.ents else ([], [])
            mentions += texts
            contexts += where
            windows += [context_window(doc.text, ent.start_char, ent.end_char) for ent in doc.ents]
            owners += [(d, e) for e in range(len(texts))]
        if not mentions:
            return docs
        results: list[list[Candidate]] = self.linker.link(mentions, contexts=contexts, windows=windows)
        per_doc: dict[int, dict[int, list[Candidate]]] = {}
        for (d, e), candidates in zip(owners, results):
            per_doc.setdefault(d, {})[e] = candidates
        for d, links in per_doc.items():
            doc = docs[d]
            if self.set_kb_id:
                doc.ents = [
                    Span(doc, ent.start, ent.end, label=ent.label, kb_id=links[e][0].concept_id if links[e] else "")
                    for e, ent in enumerate(doc.ents)
                ]
            for e, ent in enumerate(doc.ents):
                ent._.kb_ents = [(c.concept_id, c.score) for c in links[e]]
        return docs

    # ---------------------------------------------------------------- serialisation
    def to_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> None:
        """Save the settings (``cfg``), the index with its policy and, unless it is the packaged default,
        the model (``index``); names in ``exclude`` are left out."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        exclude = set(exclude)
        encoder = self.linker.index.encoder
        own_model = encoder.model_id != DEFAULT_MODEL
        if "index" not in exclude:
            self.linker.save(path / "index")
            if own_model:
                encoder.save(path / "model")
        if "index" not in exclude and self.tagger is not None:
            self.tagger.save(path / "tagger")
        if "cfg" not in exclude:
            settings = {key: getattr(self, key) for key in _SETTINGS}
            settings["model"] = "model" if own_model else DEFAULT_MODEL
            atomic_write_text(path / CONFIG_FILE, json.dumps(settings, indent=2))

    def from_disk(self, path: str | Path, *, exclude: Iterable[str] = ()) -> EntityLinkerComponent:
        """Load what :meth:`to_disk` saved (the same ``exclude`` names)."""
        from ..errors import DataFormatError

        path = Path(path)
        exclude = set(exclude)
        model = DEFAULT_MODEL
        if "cfg" not in exclude:
            try:
                settings = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise DataFormatError(path / CONFIG_FILE, None, f"unreadable component settings ({err})") from err
            for key in _SETTINGS:
                setattr(self, key, settings.get(key, getattr(self, key)))
            model = str(path / "model") if settings.get("model") != DEFAULT_MODEL else DEFAULT_MODEL
        elif (path / "model").is_dir():
            model = str(path / "model")
        if "index" not in exclude:
            recover_directory(path / "model")
            if (path / "tagger").is_dir():
                self.tagger_path, self._tagger = str(path / "tagger"), None
            self.index_path = str(path / "index")
            self.set_linker(Linker.load(path / "index", model=model, precision=self.precision))
        return self

    def to_bytes(self, *, exclude: Iterable[str] = ()) -> bytes:
        """Everything :meth:`to_disk` writes, as one msgpack message."""
        import srsly

        with tempfile.TemporaryDirectory(prefix="entitylink-component-") as tmp:
            self.to_disk(tmp, exclude=exclude)
            files = {str(p.relative_to(tmp)): p.read_bytes() for p in sorted(Path(tmp).rglob("*")) if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, data: bytes, *, exclude: Iterable[str] = ()) -> EntityLinkerComponent:
        """Load what :meth:`to_bytes` gave."""
        import srsly

        files = srsly.msgpack_loads(data)
        with tempfile.TemporaryDirectory(prefix="entitylink-component-") as tmp:
            for name, content in files.items():
                target = Path(tmp) / name
                if Path(tmp).resolve() not in target.resolve().parents:
                    raise ValueError(f"refusing a file outside the component's directory: {name!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)
            self.from_disk(tmp, exclude=exclude)
            if self.tagger is not None:  # opened now, while its files are still there
                self.tagger_path = None
            encoder = self.linker.index.encoder
            if encoder.model_id.startswith((tmp, str(Path(tmp).resolve()))):
                # the model now lives in memory only: name where it came from, not a deleted folder
                encoder.model_id = self.linker.index.meta["encoder"]["model"]
            self.index_path = None
        return self


@Language.factory(
    "entitylink",
    default_config={
        "index": None, "k": None, "threshold": None, "abbreviations": None, "sparse_weight": None,
        "set_kb_id": True, "batch_size": None, "precision": DEFAULT_PRECISION, "detect": "none",
        "detect_threshold": None, "label": "ENTITY", "tagger": None,
    },
    assigns=["span._.kb_ents", "token.ent_kb_id"],
)
def make_entity_linker(
    nlp: Language, name: str, index: str | None, k: int | None, threshold: float | None,
    abbreviations: str | None, sparse_weight: float | None, set_kb_id: bool, batch_size: int | None, precision: str,
    detect: str, detect_threshold: float | None, label: str, tagger: str | None,
) -> EntityLinkerComponent:
    """spaCy factory for :class:`EntityLinkerComponent` (``nlp.add_pipe("entitylink", config=...)``)."""
    return EntityLinkerComponent(
        nlp, name, index=index, k=k, threshold=threshold, abbreviations=abbreviations, sparse_weight=sparse_weight,
        set_kb_id=set_kb_id, batch_size=batch_size, precision=precision, detect=detect,
        detect_threshold=detect_threshold, label=label, tagger=tagger,
    )
