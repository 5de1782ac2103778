"""Exceptions raised by entitylink: each names what was wrong and where."""

from __future__ import annotations

from pathlib import Path


class EntityLinkError(Exception):
    """Base class of every error entitylink raises on purpose."""


class DataFormatError(EntityLinkError, ValueError):
    """A data file does not have the expected format.

    Carries the file, the 1-based line number (when known) and what was expected.
    """

    def __init__(self, path: str | Path, line: int | None, message: str):
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class IndexMismatchError(EntityLinkError):
    """An index is used with an encoder other than the one it was built with."""


class ModelLoadError(EntityLinkError):
    """A model could not be loaded from a local path or the Hugging Face hub."""


class MissingDependencyError(EntityLinkError, ImportError):
    """An optional dependency needed for the requested feature is not installed.

    The message names the feature, the missing package and the ``pip install`` command that adds it.
    """

    def __init__(self, feature: str, package: str, install: str, cause: BaseException | None = None):
        self.feature, self.package, self.install = feature, package, install
        detail = f" ({cause})" if cause is not None else ""
        super().__init__(f"{feature} needs {package}: {install}{detail}")


def require(module: str, feature: str, install: str) -> None:
    """Import ``module`` or raise :class:`MissingDependencyError` telling how to install it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(feature, module.split(".")[0], install, err) from err
