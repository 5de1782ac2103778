"""Text normalisation shared by dictionary names and mentions."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

_PUNCT = re.compile(r"[^\w\s]|_")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Normalizer:
    """Normalises a surface form; the same settings must be used for names and mentions.

    Args:
        lowercase: fold case (``str.casefold``).
        punctuation: ``"space"`` replaces punctuation and symbols with a space,
            ``"remove"`` deletes them, ``"keep"`` leaves them.
        unicode_form: Unicode normal form applied first (``None`` to skip).
        strip_accents: remove combining marks (``"Sjögren"`` → ``"Sjogren"``).
        collapse_whitespace: squeeze runs of white space and trim the ends.

    Example:
        >>> Normalizer()("Heart-Attack,  acute")
        'heart attack acute'
    """

    lowercase: bool = True
    punctuation: Literal["space", "remove", "keep"] = "space"
    unicode_form: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = "NFKC"
    strip_accents: bool = False
    collapse_whitespace: bool = True

    def __post_init__(self) -> None:
        if self.punctuation not in ("space", "remove", "keep"):
            raise ValueError(
                f"punctuation must be 'space', 'remove' or 'keep', not {self.punctuation!r}"
            )
        if self.unicode_form not in (None, "NFC", "NFKC", "NFD", "NFKD"):
            raise ValueError(
                f"unicode_form must be None, 'NFC', 'NFKC', 'NFD' or 'NFKD', not {self.unicode_form!r}"
            )

    def __call__(self, text: str) -> str:
        if self.unicode_form:
            text = unicodedata.normalize(self.unicode_form, text)
        if self.strip_accents:
            text = "".join(
                c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)
            )
        if self.lowercase:
            text = text.casefold()
        if self.punctuation == "space":
            text = _PUNCT.sub(" ", text)
        elif self.punctuation == "remove":
            text = _PUNCT.sub("", text)
        if self.collapse_whitespace:
            text = _SPACE.sub(" ", text).strip()
        return text

    def normalize_all(self, texts: list[str]) -> list[str]:
        """Normalise each text of a list."""
        return [self(t) for t in texts]

    def to_dict(self) -> dict[str, Any]:
        """Settings as a JSON-serialisable dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> Normalizer:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(settings) - known
        if unknown:
            raise ValueError(
                f"unknown normalisation settings {sorted(unknown)}; valid: {sorted(known)}"
            )
        return cls(**settings)


IDENTITY = Normalizer(
    lowercase=False, punctuation="keep", unicode_form=None, collapse_whitespace=False
)
