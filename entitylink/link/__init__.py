"""Linking: the linker and its policy, and accuracy@k evaluation."""

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from .policy import LinkingPolicy

_LAZY = {"Candidate": "linker", "Evaluation": "evaluation", "Linker": "linker", "accuracy_at_k": "evaluation",
         "evaluate": "evaluation"}
__all__ = ["Candidate", "Evaluation", "Linker", "LinkingPolicy", "accuracy_at_k", "evaluate"]

if TYPE_CHECKING:
    from .evaluation import Evaluation, accuracy_at_k, evaluate
    from .linker import Candidate, Linker

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
