"""Indexes: the dense dictionary (FAISS), its search kinds, the sparse TF-IDF dictionary and their fusion."""

from typing import TYPE_CHECKING

from .._lazy import lazy_names

_LAZY = {"DictionaryIndex": "dense", "HybridIndex": "hybrid", "SearchSpec": "search", "SparseIndex": "sparse"}
__all__ = ["DictionaryIndex", "HybridIndex", "SearchSpec", "SparseIndex"]

if TYPE_CHECKING:
    from .dense import DictionaryIndex
    from .hybrid import HybridIndex
    from .search import SearchSpec
    from .sparse import SparseIndex

__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())
