"""The linking policy: the settings that decide a linker's answer, saved with the index.

Python, ``entitylink link/evaluate``, the spaCy component and the HTTP service all link through a
:class:`~entitylink.link.linker.Linker`, which owns one policy; each face may override a setting per
call, and otherwise answers as the index was saved.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from ..errors import DataFormatError
from ..text.abbreviations import DETECTORS

POLICY_FILE = "policy.json"

# Document annotation (entitylink.link.annotate): how mentions are found before they are linked.
DetectorName = Literal["dictionary", "exact", "tagger"]
DETECTOR_NAMES = ("dictionary", "exact", "tagger")
DEFAULT_DETECT_THRESHOLD = 0.95  # NCBI-disease dev: 0.93-0.99 within 1 F1 point (benchmarks/README.md)
Overlaps = Literal["longest", "nested"]
OVERLAPS = ("longest", "nested")
Lexical = Literal["variants", "classes", "reordered"]
LEXICAL = ("variants", "classes", "reordered")
DEFAULT_MAX_TOKENS = 5  # the longest approximate window (QuickUMLS's)
MAX_EXACT_TOKENS = 12  # the longest window matched verbatim
DEFAULT_BATCH_SIZE = 32  # documents (or pieces) linked together
DEFAULT_MAX_CHARS = 20_000  # longer documents are cut at sentence ends
Abbreviations = Literal["schwartz-hearst", "scispacy", "off"]
ABBREVIATIONS = (*DETECTORS, "off")


# the policy's settings of document annotation (the faces override them per run)
ANNOTATION_SETTINGS = ("detect_threshold", "overlaps", "lexical", "entity_type")
# `entitylink index` sets the annotation policy by the ontology's entity type, as chosen on dev corpora
# (benchmarks/README.md: NCBI-disease dev with MEDIC for diseases, ID-68 with HPO for phenotypes); other
# entity types get LinkingPolicy's own defaults.
ANNOTATION_DEFAULTS: dict[str, dict[str, Any]] = {
    "Disease": {"lexical": "variants", "overlaps": "longest", "detect_threshold": 0.99},
    "Phenotype": {"lexical": "reordered", "overlaps": "longest", "detect_threshold": 0.9},
}


@dataclass(frozen=True)
class LinkingPolicy:
    """How mentions are linked.

    Args:
        k: concepts returned per mention, best first.
        threshold: candidates scoring below it are dropped; a mention left with none is NIL.
            The score is the index's (cosine for a dense index), so a threshold is only comparable
            between indexes of one model; ``0.0`` keeps every candidate.
        abbreviations: how a short form defined in the mention's context ("... diabetes (NIDDM) ...")
            is expanded before linking: ``"schwartz-hearst"`` (entitylink's detector),
            ``"scispacy"`` (scispacy's, needs ``entitylink[spacy]``) or ``"off"``. Mentions linked
            without a context are linked as written.
        sparse_weight: weight of the character TF-IDF cosine added to the dense one (BioSyn-style
            fusion); needs an index saved with its sparse half (``entitylink index --sparse-weight``).
            ``0.0`` links by the dense score alone.
        reranker: a cross-encoder directory (``entitylink train-reranker``) that re-scores the top
            ``rerank_k`` candidates; a relative path is relative to the index directory. With a
            reranker, a candidate's score is its probability of being right, so ``threshold`` is a
            probability. ``None``: no reranking.
        rerank_k: how many of the retriever's candidates the reranker reads.
        calibration: a :class:`~entitylink.link.calibration.Calibration` as a dict (``entitylink
            calibrate`` fits one on dev queries): scores become probabilities that the candidate is
            right, and ``threshold`` a probability. ``None``: raw scores. It holds the scorer it was
            fitted for (reranked or not, the sparse weight) and is applied to that scorer's scores only.
        detect_threshold: document annotation keeps a span linked by the encoder (an approximate
            window, a tagger span that is no dictionary name) when its top concept's retriever score is
            at least this (a probability when the calibration was fitted on the retriever's scores).
        overlaps: where names found in a document overlap, ``"longest"`` keeps the longest (exact and
            dictionary matches before approximate ones), ``"nested"`` also reports every dictionary
            name found inside a kept one ("mental retardation" in "severe mental retardation").
        lexical: how document annotation matches names without the encoder: ``"variants"`` (the
            normalised name, a plural or British spelling of it), ``"classes"`` (also words the
            ontology's synonyms swap: "renal"/"kidney"), ``"reordered"`` (also words in another order
            with only prepositions between, or split by a coordination).
        entity_type: the type written for each entity found in documents (PubTator's type column);
            ``entitylink index`` sets it from the ontology ("Disease", "Phenotype"). ``None``: "Entity".

    Example:
        >>> strict = LinkingPolicy(k=3).override(threshold=0.5)
        >>> strict.k, strict.threshold
        (3, 0.5)
    """

    k: int = 5
    threshold: float = 0.0
    abbreviations: Abbreviations = "schwartz-hearst"
    sparse_weight: float = 0.0
    reranker: str | None = None
    rerank_k: int = 16
    calibration: dict | None = None
    detect_threshold: float = DEFAULT_DETECT_THRESHOLD
    overlaps: Overlaps = "longest"
    lexical: Lexical = "variants"
    entity_type: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"k must be an integer of at least 1, not {self.k!r}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, (int, float)) \
                or math.isnan(self.threshold):
            raise ValueError(f"threshold must be a number, not {self.threshold!r}")
        if isinstance(self.sparse_weight, bool) or not isinstance(self.sparse_weight, (int, float)) \
                or self.sparse_weight < 0:
            raise ValueError(f"sparse_weight must be a number of at least 0, not {self.sparse_weight!r}")
        if isinstance(self.rerank_k, bool) or not isinstance(self.rerank_k, int) or self.rerank_k < 1:
            raise ValueError(f"rerank_k must be an integer of at least 1, not {self.rerank_k!r}")
        if self.reranker is not None and not isinstance(self.reranker, str):
            raise ValueError(f"reranker must be a directory name or None, not {self.reranker!r}")
        if self.calibration is not None:
            from .calibration import Calibration

            if not isinstance(self.calibration, dict):
                raise ValueError(f"calibration must be a dict (Calibration.to_dict()), not {self.calibration!r}")
            Calibration.from_dict(self.calibration)
        if isinstance(self.detect_threshold, bool) or not isinstance(self.detect_threshold, (int, float)) \
                or not math.isfinite(self.detect_threshold):
            raise ValueError(f"detect_threshold must be a finite number, not {self.detect_threshold!r}")
        if self.overlaps not in OVERLAPS:
            raise ValueError(f"overlaps must be one of {OVERLAPS}, not {self.overlaps!r}")
        if self.entity_type is not None and (not isinstance(self.entity_type, str) or not self.entity_type.strip()
                                             or any(c in self.entity_type for c in "\t\n\r|")):
            raise ValueError(f"entity_type must be a word without tabs, newlines or '|', not {self.entity_type!r}")
        if self.lexical not in LEXICAL:
            raise ValueError(f"lexical must be one of {LEXICAL}, not {self.lexical!r}")
        if self.abbreviations not in ABBREVIATIONS:
            raise ValueError(f"abbreviations must be one of {ABBREVIATIONS}, not {self.abbreviations!r}")

    def override(self, **settings: Any) -> LinkingPolicy:
        """This policy with the given settings changed; ``None`` values leave a setting as it is."""
        known = {f.name for f in fields(self)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(f"unknown linking settings {sorted(unknown)}; valid: {sorted(known)}")
        changes = {name: value for name, value in settings.items() if value is not None}
        return replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: dict[str, Any], source: str | Path = "policy") -> LinkingPolicy:
        """Rebuild from :meth:`to_dict` output; an unknown or bad setting names ``source``."""
        try:
            return cls().override(**settings)
        except (TypeError, ValueError) as err:
            raise DataFormatError(source, None, str(err)) from None

    @classmethod
    def read(cls, directory: str | Path) -> LinkingPolicy:
        """The policy saved in ``directory``; the defaults when it holds none (indexes saved before policies)."""
        path = Path(directory) / POLICY_FILE
        if not path.is_file():
            return cls()
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataFormatError(path, err.lineno, f"invalid JSON ({err.msg})") from None
        if not isinstance(settings, dict):
            raise DataFormatError(path, None, "expected a JSON object of linking settings")
        return cls.from_dict(settings, path)
