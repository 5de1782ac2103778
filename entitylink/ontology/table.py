"""The ontology table: one row per (concept id, surface form), and the normalised entries an index holds."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import EntityLinkError
from ..text.normalize import Normalizer
from .delimited import read_medic, read_tsv
from .obo import read_hpo, read_obo
from .snomed import read_snomed
from .umls import read_umls

logger = logging.getLogger(__name__)

COLUMNS = ["concept_id", "name", "source", "semantic_type"]

READERS = {
    "medic": read_medic,
    "ctd": read_medic,
    "tsv": read_tsv,
    "obo": read_obo,
    "umls": read_umls,
    "snomed": read_snomed,
    "hpo": read_hpo,
}

_SUFFIX_KIND = {".obo": "obo", ".tsv": "tsv", ".rrf": "umls"}


def parse_spec(spec: str) -> tuple[str, str | None]:
    """Split an ontology spec ``KIND:PATH`` (or a bare ``hpo``) into kind and path.

    Without a known ``KIND:`` prefix the kind is inferred from the file name where
    that is unambiguous (``.obo``, ``.tsv``, ``MRCONSO.RRF``, ``sct2_Description``).
    """
    kind, sep, path = spec.partition(":")
    if sep and kind.lower() in READERS:
        return kind.lower(), (path or None)
    if spec.lower() in READERS:
        return spec.lower(), None
    name = Path(spec).name
    if name.lower().startswith("sct2_description"):
        return "snomed", spec
    if Path(spec).suffix.lower() in _SUFFIX_KIND:
        return _SUFFIX_KIND[Path(spec).suffix.lower()], spec
    if sep and len(kind) > 1:
        raise ValueError(f"unknown ontology kind {kind!r} in {spec!r}; valid kinds: {sorted(READERS)}")
    raise ValueError(
        f"cannot tell the format of {spec!r}: write it as KIND:PATH with KIND one of {sorted(READERS)}"
    )


class Ontology:
    """A tidy table of concept ids and their surface forms.

    The frame has the columns ``concept_id``, ``name``, ``source`` and
    ``semantic_type`` (the last two may be empty). Rows with an empty name are
    dropped with a warning.

    Example:
        >>> onto = Ontology.from_pairs([("D003924", "Type 2 diabetes"), ("D003924", "NIDDM")])
        >>> onto.names_of("D003924")
        ['Type 2 diabetes', 'NIDDM']
    """

    def __init__(self, frame: pd.DataFrame, name: str = "ontology"):
        missing = {"concept_id", "name"} - set(frame.columns)
        if missing:
            raise ValueError(f"an ontology frame needs the columns {sorted(missing)}")
        frame = frame.reindex(columns=COLUMNS).copy()
        frame["concept_id"] = frame["concept_id"].astype(str).str.strip()
        frame["name"] = frame["name"].astype(str).str.strip()
        empty = (frame["name"] == "") | (frame["concept_id"] == "")
        if empty.any():
            logger.warning("%s: dropped %d rows with an empty name or concept id", name, int(empty.sum()))
            frame = frame[~empty]
        frame = frame.drop_duplicates(subset=["concept_id", "name"]).reset_index(drop=True)
        frame = frame.astype({"concept_id": object, "name": object, "source": object, "semantic_type": object})
        self._frame = frame
        self.name = name

    # ---------------------------------------------------------------- building
    @classmethod
    def load(cls, spec: str, **options) -> Ontology:
        """Load ``KIND:PATH`` (``medic``, ``ctd``, ``tsv``, ``obo``, ``umls``, ``snomed``) or ``hpo``.

        Keyword options go to the format's reader (e.g. ``synonym_scopes`` for OBO,
        ``sources`` for UMLS); an option the reader doesn't take is an error.

        Example:
            >>> Ontology.load("hpo")  # doctest: +SKIP
            >>> Ontology.load("umls:/data/MRCONSO.RRF", sources=["MSH", "SNOMEDCT_US"])  # doctest: +SKIP
        """
        kind, path = parse_spec(spec)
        reader = READERS[kind]
        params = inspect.signature(reader).parameters
        unknown = set(options) - set(params)
        if unknown:
            valid = [p for p, v in params.items() if v.kind == inspect.Parameter.KEYWORD_ONLY]
            raise ValueError(f"the {kind!r} loader has no option(s) {sorted(unknown)}; valid: {valid}")
        if kind == "hpo":
            if path:
                raise ValueError("'hpo' is the embedded HPO and takes no path; use obo:PATH for a file")
            rows = reader(**options)
        else:
            if not path:
                raise ValueError(f"the {kind!r} loader needs a path: {kind}:PATH")
            rows = reader(path, **options)
        frame = pd.DataFrame.from_records(list(rows), columns=COLUMNS)
        label = "HPO" if kind == "hpo" else Path(path).name
        if frame.empty:
            raise EntityLinkError(f"{path or kind}: no names were read (empty file, or every row filtered out)")
        onto = cls(frame, name=label)
        logger.info("loaded %s: %d names of %d concepts", label, len(onto), onto.n_concepts)
        return onto

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]], name: str = "ontology") -> Ontology:
        """Build from ``(concept_id, name)`` pairs."""
        return cls(pd.DataFrame.from_records(list(pairs), columns=["concept_id", "name"]), name=name)

    @classmethod
    def from_mentions(cls, documents: Iterable, name: str = "corpus mentions") -> Ontology:
        """An annotated corpus's mentions as extra names of their concepts (the linking literature's standard
        dictionary adds the train mentions); mentions of several concepts (``A|B``, ``A+B``) are left out."""
        pairs = [(m.ids.strip(), m.text) for d in documents for m in d.mentions
                 if m.ids.strip() and not set("|+,") & set(m.ids)]
        return cls.from_pairs(pairs, name=name)

    @classmethod
    def concat(cls, ontologies: Iterable[Ontology], name: str = "ontology") -> Ontology:
        """Union of several ontologies (duplicate rows dropped)."""
        return cls(pd.concat([o.frame for o in ontologies], ignore_index=True), name=name)

    # ---------------------------------------------------------------- reading
    @property
    def frame(self) -> pd.DataFrame:
        """The table (a copy: the ontology itself is immutable)."""
        return self._frame.copy()

    @property
    def concept_ids(self) -> list[str]:
        """Distinct concept ids in first-seen order."""
        return list(dict.fromkeys(self._frame["concept_id"]))

    @property
    def names(self) -> list[str]:
        """Every surface form, one per row."""
        return self._frame["name"].tolist()

    @property
    def n_concepts(self) -> int:
        return int(self._frame["concept_id"].nunique())

    def __len__(self) -> int:
        return len(self._frame)

    def __repr__(self) -> str:
        return f"Ontology({self.name!r}: {len(self)} names, {self.n_concepts} concepts)"

    def names_of(self, concept_id: str) -> list[str]:
        """Surface forms of one concept (empty if unknown)."""
        return self._frame.loc[self._frame["concept_id"] == concept_id, "name"].tolist()

    def concepts_of(self, name: str, normalizer: Normalizer | None = None) -> list[str]:
        """Concepts having ``name`` as a surface form, compared after ``normalizer``."""
        if normalizer is None:
            mask = self._frame["name"] == name
        else:
            key = normalizer(name)
            mask = self._frame["name"].map(normalizer) == key
        return list(dict.fromkeys(self._frame.loc[mask, "concept_id"]))

    # ---------------------------------------------------------------- deriving
    def dedupe(self, normalizer: Normalizer | None = None) -> Ontology:
        """Keep one row per (concept, normalised name); the first spelling wins."""
        normalizer = normalizer or Normalizer()
        key = self._frame["name"].map(normalizer)
        keep = ~pd.DataFrame({"c": self._frame["concept_id"], "k": key}).duplicated() & (key != "")
        return Ontology(self._frame[keep.to_numpy()], name=self.name)

    def sample(self, n: int, seed: int = 0) -> Ontology:
        """``n`` surface forms drawn without replacement (all if fewer)."""
        if n >= len(self):
            return self
        return Ontology(self._frame.sample(n=n, random_state=seed), name=self.name)

    def subset(self, concept_ids: Iterable[str]) -> Ontology:
        """Only the rows of the given concepts."""
        return Ontology(self._frame[self._frame["concept_id"].isin(set(concept_ids))], name=self.name)

    def hold_out_synonyms(
        self, seed: int = 0, normalizer: Normalizer | None = None, max_queries: int | None = None
    ) -> tuple[Ontology, pd.DataFrame]:
        """Split off one surface form of each concept that has two or more distinct names.

        Returns the ontology without the held-out forms and a frame of queries
        (``mention``, ``concept_id``): a zero-shot synonym benchmark for any ontology.
        Names are first deduplicated per concept after ``normalizer``, so a held-out
        form never has a trivial twin left in the dictionary.
        """
        deduped = self.dedupe(normalizer)
        frame = deduped._frame
        rng = np.random.default_rng(seed)
        counts = frame.groupby("concept_id", sort=False)["name"].transform("size")
        eligible = frame[counts >= 2]
        order = rng.permutation(len(eligible))
        picked = eligible.iloc[order].drop_duplicates(subset="concept_id")
        if max_queries is not None and len(picked) > max_queries:
            picked = picked.iloc[:max_queries]
        rest = frame.drop(index=picked.index)
        queries = picked[["name", "concept_id"]].rename(columns={"name": "mention"}).reset_index(drop=True)
        return Ontology(rest, name=f"{self.name} (held-out synonyms removed)"), queries

    def entries(self, normalizer: Normalizer | None = None, merge_shared_names: bool = True) -> pd.DataFrame:
        """The rows an index holds: ``name`` (first spelling), ``text`` (normalised) and ``concept_id``.

        Names that normalise to nothing are left out (with a warning). With ``merge_shared_names``
        (the BioSyn/SapBERT convention) a text that several concepts share is one row whose concept
        id joins theirs with ``|``.
        """
        normalizer = normalizer or Normalizer()
        frame = self._frame[["concept_id", "name"]]
        frame = frame.assign(text=frame["name"].map(normalizer))
        empty = frame["text"] == ""
        if empty.any():
            logger.warning("%s: %d name(s) normalise to nothing and are left out (e.g. %r)",
                           self.name, int(empty.sum()), frame.loc[empty, "name"].iloc[0])
        frame = frame[~empty].drop_duplicates(subset=["concept_id", "text"])
        if not merge_shared_names:
            return frame[["name", "text", "concept_id"]].reset_index(drop=True)
        grouped = frame.groupby("text", sort=False)
        merged = pd.DataFrame({
            "name": grouped["name"].first(),
            "concept_id": grouped["concept_id"].agg(join_ids),
        })
        return merged.reset_index()[["name", "text", "concept_id"]]


ENTITY_TYPES = {"medic": "Disease", "ctd": "Disease", "hpo": "Phenotype"}


def default_entity_type(spec: str, ontology: Ontology) -> str:
    """The type of the entities an ontology names: by its kind (MEDIC: Disease, HPO: Phenotype), else its most
    common semantic type, else "Entity"."""
    kind, _ = parse_spec(spec)
    if kind in ENTITY_TYPES:
        return ENTITY_TYPES[kind]
    types = ontology.frame["semantic_type"].dropna().astype(str).str.strip()
    types = types[(types != "") & ~types.str.contains(r"[\t\n\r|]")]
    return str(types.mode().iloc[0]) if len(types) else "Entity"


def count_ids(concept_ids: Iterable[str]) -> int:
    """Distinct ids among entries whose ids may be joined with ``|``."""
    return len({part for cid in concept_ids for part in cid.split("|")})


def join_ids(ids: Iterable[str]) -> str:
    """Join ids (each possibly ``A|B`` already) with ``|``, first-seen order, no repeats."""
    parts: dict[str, None] = {}
    for cid in ids:
        parts.update(dict.fromkeys(cid.split("|")))
    return "|".join(parts)
