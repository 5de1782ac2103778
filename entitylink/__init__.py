"""entitylink: biomedical entity linking with Mirror-BERT-tuned encoders and FAISS dictionaries."""

__version__ = "0.1.0"

from .encoder import Encoder  # noqa: E402
from .errors import DataFormatError, EntityLinkError, IndexMismatchError, ModelLoadError  # noqa: E402
from .evaluation import Evaluation, accuracy_at_k, evaluate  # noqa: E402
from .index import DictionaryIndex  # noqa: E402
from .linker import Candidate, Linker  # noqa: E402
from .normalize import Normalizer  # noqa: E402
from .ontology import Ontology  # noqa: E402

__all__ = [
    "Candidate",
    "DataFormatError",
    "DictionaryIndex",
    "Encoder",
    "EntityLinkError",
    "Evaluation",
    "IndexMismatchError",
    "Linker",
    "ModelLoadError",
    "Normalizer",
    "Ontology",
    "__version__",
    "accuracy_at_k",
    "evaluate",
]
