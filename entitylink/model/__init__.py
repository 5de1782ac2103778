"""Models: the encoder (transformer + pooling), its fast paths, and contrastive training.

``defaults`` holds every model and training default and needs no torch; the rest is imported on use.
"""

from typing import TYPE_CHECKING

from .._lazy import lazy_names
from .defaults import DEFAULT_MAX_LENGTH, DEFAULT_MODEL, DEFAULT_PRECISION, PRECISIONS, TrainingConfig

_LAZY = {"Encoder": "encoder", "MirrorTrainer": "trainer"}
__all__ = ["DEFAULT_MAX_LENGTH", "DEFAULT_MODEL", "DEFAULT_PRECISION", "PRECISIONS", "Encoder", "MirrorTrainer",
           "TrainingConfig"]

if TYPE_CHECKING:
    from .encoder import Encoder
    from .trainer import MirrorTrainer

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
