"""Text: normalisation, abbreviations defined in a text, PubTator corpora and benchmark queries (no torch)."""

from .abbreviations import AbbreviationFinder, expand
from .normalize import Normalizer
from .pubtator import Document, Mention, read_pubtator

__all__ = ["AbbreviationFinder", "Document", "Mention", "Normalizer", "expand", "read_pubtator"]
