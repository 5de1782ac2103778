"""Shared fixtures: a tiny randomly initialised BERT with a WordPiece vocabulary written here."""

from __future__ import annotations

import inspect
import shutil
import string
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
ONTOLOGIES = ROOT / "ontologies"
SHARED_DATA = ROOT.parent / "shared" / "data"

WORDS = """heart attack myocardial infarction failure blood pressure high low hypertension hypotension
diabetes mellitus type liver enlarged seizure fits short stature platelet count cancer breast ovarian
disease syndrome deficiency abnormal increased decreased acute chronic""".split()


def write_tiny_bert(path: Path, seed: int = 0) -> Path:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    pieces = list(string.ascii_lowercase) + list(string.digits) + list(string.punctuation)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS + pieces + [f"##{c}" for c in pieces]
    (path / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
    vocab_file = str(path / "vocab.txt")
    if "vocab_file" in inspect.signature(BertTokenizerFast.__init__).parameters:  # transformers 4
        tokenizer = BertTokenizerFast(vocab_file=vocab_file, do_lower_case=True)
    else:  # transformers 5 takes the vocabulary as `vocab`
        tokenizer = BertTokenizerFast(vocab=vocab_file, do_lower_case=True)
    assert tokenizer.tokenize("heart attack") == ["heart", "attack"]
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
        initializer_range=0.2,  # the default 0.02 maps every text to nearly one CLS vector
    )
    BertModel(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Exported int8 models go to a temporary cache, never the user's ~/.cache."""
    import os

    before = os.environ.get("ENTITYLINK_CACHE")
    os.environ["ENTITYLINK_CACHE"] = str(tmp_path_factory.mktemp("entitylink-cache"))
    yield
    if before is None:
        os.environ.pop("ENTITYLINK_CACHE", None)
    else:
        os.environ["ENTITYLINK_CACHE"] = before


@pytest.fixture(scope="session")
def tiny_model_session(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def tiny_model(tiny_model_session, tmp_path) -> Path:
    """A fresh copy per test, so a test may change or damage it."""
    return Path(shutil.copytree(tiny_model_session, tmp_path / "tiny-bert"))


@pytest.fixture
def tiny_encoder(tiny_model):
    from entitylink import Encoder

    return Encoder(tiny_model, precision="fp32")


@pytest.fixture
def medic_example():
    from entitylink import Ontology

    return Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}")


@pytest.fixture
def index_dir(tiny_model, tmp_path):
    """An index of the example MEDIC file built by ``entitylink index`` with the tiny model."""
    from entitylink.apps.cli import main

    out = tmp_path / "idx"
    code = main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}",
                 "--model", str(tiny_model), "--precision", "fp32", "--out", str(out)])
    assert code == 0
    return out
