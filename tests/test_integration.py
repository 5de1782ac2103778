"""Slow tests: the real packaged all-MiniLM-L6-v2 on a few hundred HPO names, and the real MEDIC file."""

import numpy as np
import pytest

from entitylink import DictionaryIndex, Encoder, Linker, Ontology, evaluate

from .conftest import SHARED_DATA

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    return Encoder("default", precision="fp32")


@pytest.fixture(scope="module")
def small_hpo():
    hpo = Ontology.load("hpo").dedupe()
    counts = hpo.frame.groupby("concept_id").size()
    concepts = counts[counts >= 2].sample(n=250, random_state=0).index
    return hpo.subset(concepts)


def test_minilm_links_held_out_hpo_synonyms(minilm, small_hpo, tmp_path):
    dictionary, queries = small_hpo.hold_out_synonyms(seed=0)
    assert len(queries) == 250 and 250 < len(dictionary) < 1000
    DictionaryIndex.build(dictionary, minilm).save(tmp_path / "idx")
    linker = Linker.load(tmp_path / "idx", precision="fp32")
    result = evaluate(linker, queries["mention"].tolist(), queries["concept_id"].tolist())
    # 250 candidates: chance is 0.4% @1; the untuned model gets well over half right @5
    assert result.metrics["acc@1"] > 0.4 and result.metrics["acc@5"] > 0.6
    in_memory = Linker(DictionaryIndex.build(dictionary, minilm))
    assert in_memory.link(queries["mention"].tolist()[:20]) == linker.link(queries["mention"].tolist()[:20])


def test_minilm_uses_its_own_mean_pooling_and_bf16_agrees(minilm, small_hpo):
    assert minilm.pooling == "mean" and minilm.dim == 384
    names = small_hpo.names[:200]
    bf16 = Encoder("default", precision="bf16").encode(names)
    assert float((minilm.encode(names) * bf16).sum(1).min()) > 0.99


def test_minilm_knows_lay_terms(minilm):
    onto = Ontology.from_pairs([
        ("HP:0001658", "Myocardial infarction"), ("HP:0000822", "Hypertension"),
        ("HP:0002240", "Hepatomegaly"), ("HP:0001250", "Seizure"), ("HP:0001945", "Fever"),
    ])
    linker = Linker(DictionaryIndex.build(onto, minilm))
    top = [c[0].concept_id for c in linker.link(["high blood pressure", "convulsions", "high temperature"])]
    assert top == ["HP:0000822", "HP:0001250", "HP:0001945"]


@pytest.mark.skipif(not (SHARED_DATA / "medic").is_dir(), reason="../shared/data/medic not present")
def test_real_medic_file():
    medic = Ontology.load(f"medic:{SHARED_DATA / 'medic' / 'medic_06Jul2012.txt'}")
    assert medic.n_concepts == 11915
    composite = [c for c in medic.concept_ids if "|OMIM:" in c]
    assert composite and all(not part.isdigit() for c in composite for part in c.split("|"))
    assert np.mean([len(medic.names_of(c)) for c in medic.concept_ids[:50]]) > 1
