"""entitylink: biomedical entity linking with Mirror-BERT-tuned encoders and FAISS dictionaries.

The names below are imported on first use, so ``import entitylink`` (and ``entitylink --help``) does
not load torch. The code is split by stage, each layer importing only those before it:
``text`` → ``ontology`` → ``model`` → ``index`` → ``link`` → ``apps``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_names
from ._version import __version__
from .errors import DataFormatError, EntityLinkError, IndexMismatchError, MissingDependencyError, ModelLoadError

_LAZY = {
    "Candidate": "link.linker",
    "DictionaryIndex": "index.dense",
    "Encoder": "model.encoder",
    "Evaluation": "link.evaluation",
    "HybridIndex": "index.hybrid",
    "Linker": "link.linker",
    "LinkingPolicy": "link.policy",
    "Normalizer": "text.normalize",
    "Ontology": "ontology.table",
    "SparseIndex": "index.sparse",
    "accuracy_at_k": "link.evaluation",
    "evaluate": "link.evaluation",
}

__all__ = [
    "Candidate",
    "DataFormatError",
    "DictionaryIndex",
    "Encoder",
    "EntityLinkError",
    "Evaluation",
    "HybridIndex",
    "IndexMismatchError",
    "Linker",
    "LinkingPolicy",
    "MissingDependencyError",
    "ModelLoadError",
    "Normalizer",
    "Ontology",
    "SparseIndex",
    "__version__",
    "accuracy_at_k",
    "evaluate",
]

if TYPE_CHECKING:
    from .index.dense import DictionaryIndex
    from .index.hybrid import HybridIndex
    from .index.sparse import SparseIndex
    from .link.evaluation import Evaluation, accuracy_at_k, evaluate
    from .link.linker import Candidate, Linker
    from .link.policy import LinkingPolicy
    from .model.encoder import Encoder
    from .ontology.table import Ontology
    from .text.normalize import Normalizer


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
