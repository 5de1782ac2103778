import pytest

spacy = pytest.importorskip("spacy")

from entitylink import DictionaryIndex, Linker, Ontology  # noqa: E402

ABSTRACT = (
    "Ankylosing spondylitis (AS) is a chronic inflammatory disease. We studied 120 patients with AS, "
    "of whom 14 had a heart attack and 30 had high blood pressure. Fits were rare."
)
ONTOLOGY = Ontology.from_pairs([
    ("D013167", "Ankylosing spondylitis"), ("D013167", "Bechterew disease"),
    ("D009203", "Heart attack"), ("D009203", "Myocardial infarction"),
    ("D006973", "High blood pressure"), ("D006973", "Hypertension"),
    ("D012640", "Seizures"), ("D012640", "Fits"),
    ("D001172", "Rheumatoid arthritis"),
])
TERMS = ["Ankylosing spondylitis", "AS", "heart attack", "high blood pressure", "Fits", "chronic inflammatory disease"]
PATTERNS = [{"label": "DISEASE", "pattern": term} for term in TERMS]


@pytest.fixture
def index_dir(tiny_encoder, tmp_path):
    DictionaryIndex.build(ONTOLOGY, tiny_encoder).save(tmp_path / "index")
    return tmp_path / "index"


def make_nlp(index_dir, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.add_pipe("entitylink", config={"index": str(index_dir), "precision": "fp32", **config})
    return nlp


def links(doc):
    return [(e.text, e.kb_id_, [cid for cid, _ in e._.kb_ents]) for e in doc.ents]


def test_links_entities_and_sets_kb_ids(index_dir):
    doc = make_nlp(index_dir, threshold=0.99)(ABSTRACT)
    found = {text: kb_id for text, kb_id, _ in links(doc)}
    assert found["Ankylosing spondylitis"] == "D013167"
    assert found["heart attack"] == "D009203" and found["high blood pressure"] == "D006973"
    assert found["Fits"] == "D012640"
    ent = doc.ents[0]
    assert ent._.kb_ents[0][0] == "D013167" and ent._.kb_ents[0][1] == pytest.approx(1.0, abs=1e-4)


def test_abbreviation_links_as_its_long_form(index_dir):
    doc = make_nlp(index_dir, threshold=0.99)(ABSTRACT)
    short_forms = [e for e in doc.ents if e.text == "AS"]
    assert len(short_forms) == 2 and all(e.kb_id_ == "D013167" for e in short_forms)
    plain = make_nlp(index_dir, threshold=0.99, abbreviations="off")(ABSTRACT)
    assert all(e.kb_id_ == "" for e in plain.ents if e.text == "AS")


def test_threshold_is_a_nil_decision(index_dir):
    doc = make_nlp(index_dir, threshold=0.99)(ABSTRACT)
    vague = [e for e in doc.ents if e.text == "chronic inflammatory disease"][0]
    assert vague.kb_id_ == "" and vague._.kb_ents == []
    everything = make_nlp(index_dir, threshold=-1.0, k=3)(ABSTRACT)
    vague = [e for e in everything.ents if e.text == "chronic inflammatory disease"][0]
    assert vague.kb_id_ != "" and len(vague._.kb_ents) == 3


def test_empty_docs_docs_without_entities_and_long_docs(index_dir):
    nlp = make_nlp(index_dir)
    assert list(nlp("").ents) == []
    assert list(nlp("Nothing to see here.").ents) == []
    long_doc = nlp(" ".join([ABSTRACT] * 200))
    assert len(long_doc.ents) == 200 * 7
    assert long_doc.ents[-1].kb_id_ == long_doc.ents[6].kb_id_


def test_pipe_batches_all_docs_into_one_linker_call(index_dir, monkeypatch):
    nlp = make_nlp(index_dir, threshold=0.99)
    component = nlp.get_pipe("entitylink")
    calls = []
    real = component.linker.link

    def counting(mentions, **kw):
        calls.append(len(mentions))
        return real(mentions, **kw)

    monkeypatch.setattr(component.linker, "link", counting)
    docs = list(nlp.pipe([ABSTRACT, "A heart attack.", "No entities."], batch_size=8))
    assert calls == [7 + 1]  # one call for all entities of the three docs
    assert [e.kb_id_ for e in docs[1].ents] == ["D009203"]


def test_round_trip_through_nlp_to_disk_and_spacy_load(index_dir, tmp_path):
    nlp = make_nlp(index_dir, threshold=0.5, k=2)
    expected = links(nlp(ABSTRACT))
    nlp.to_disk(tmp_path / "pipeline")
    index_dir.rename(tmp_path / "moved-away")  # the saved pipeline must not need the original index
    loaded = spacy.load(tmp_path / "pipeline")
    component = loaded.get_pipe("entitylink")
    assert component.k == 2 and component.threshold == 0.5
    assert links(loaded(ABSTRACT)) == expected


@pytest.mark.slow
def test_int8_precision_reaches_the_encoder_and_survives_to_disk(index_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    nlp = make_nlp(index_dir, precision="int8", threshold=0.9)
    assert nlp.get_pipe("entitylink").linker.index.encoder.precision == "int8"
    found = {text: kb_id for text, kb_id, _ in links(nlp(ABSTRACT))}
    assert found["heart attack"] == "D009203" and found["Fits"] == "D012640"
    nlp.to_disk(tmp_path / "pipeline")
    assert spacy.load(tmp_path / "pipeline").get_pipe("entitylink").linker.index.encoder.precision == "int8"


def test_batch_size_reaches_the_encoder(index_dir):
    nlp = make_nlp(index_dir, batch_size=7)
    assert nlp.get_pipe("entitylink").linker.index.encoder.batch_size == 7


def test_default_batch_size_is_the_encoders_own(index_dir):
    """Without a batch_size the component pins none: the encoder keeps its device's default (256 on a CPU)."""
    assert make_nlp(index_dir).get_pipe("entitylink").linker.index.encoder.batch_size == 256


def test_config_overrides_the_saved_policy(index_dir):
    linker = Linker.load(index_dir, precision="fp32", k=3, threshold=0.25)
    linker.save(index_dir)
    component = make_nlp(index_dir).get_pipe("entitylink")
    assert (component.linker.policy.k, component.linker.policy.threshold) == (3, 0.25)  # the saved policy
    component = make_nlp(index_dir, threshold=0.9).get_pipe("entitylink")
    assert (component.linker.policy.k, component.linker.policy.threshold) == (3, 0.9)  # one setting overridden


def test_to_disk_honours_exclude(index_dir, tmp_path):
    nlp = make_nlp(index_dir, threshold=0.5)
    component = nlp.get_pipe("entitylink")
    component.to_disk(tmp_path / "no-index", exclude=["index"])
    assert (tmp_path / "no-index" / "entitylink_component.json").is_file()
    assert not (tmp_path / "no-index" / "index").exists() and not (tmp_path / "no-index" / "model").exists()
    component.to_disk(tmp_path / "no-cfg", exclude=["cfg"])
    assert (tmp_path / "no-cfg" / "index").is_dir() and not (tmp_path / "no-cfg" / "entitylink_component.json").exists()


def test_to_bytes_and_from_bytes_round_trip(index_dir, tmp_path):
    nlp = make_nlp(index_dir, threshold=0.5, k=2)
    expected = links(nlp(ABSTRACT))
    data = nlp.get_pipe("entitylink").to_bytes()
    index_dir.rename(tmp_path / "moved-away")
    fresh = spacy.blank("en")
    fresh.add_pipe("entity_ruler").add_patterns(PATTERNS)
    component = fresh.add_pipe("entitylink", config={"precision": "fp32"})
    component.from_bytes(data)
    assert (component.k, component.threshold) == (2, 0.5)
    assert links(fresh(ABSTRACT)) == expected
    assert "entitylink-component-" not in component.linker.index.encoder.model_id  # no deleted temporary folder
    component.to_disk(tmp_path / "again")  # the model in memory is written out again
    assert (tmp_path / "again" / "model" / "model.safetensors").is_file()


def test_missing_index_is_a_clear_error():
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.add_pipe("entitylink")
    with pytest.raises(ValueError, match="has no index"):
        nlp("A heart attack.")


def test_uses_scispacy_abbreviation_detector_when_present(index_dir):
    pytest.importorskip("scispacy")
    from scispacy.abbreviation import AbbreviationDetector  # noqa: F401

    nlp = spacy.blank("en")
    nlp.add_pipe("abbreviation_detector")
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.add_pipe("entitylink", config={"index": str(index_dir), "precision": "fp32", "threshold": 0.99})
    doc = nlp(ABSTRACT)
    assert doc._.abbreviations
    assert all(e.kb_id_ == "D013167" for e in doc.ents if e.text == "AS")


def test_a_blank_pipeline_finds_the_mentions_itself(index_dir, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("entitylink", config={"index": str(index_dir), "precision": "fp32", "detect": "exact"})
    doc = nlp(ABSTRACT)
    found = [(e.text, e.label_, e.kb_id_) for e in doc.ents]
    assert ("Ankylosing spondylitis", "ENTITY", "D013167") in found and ("heart attack", "ENTITY", "D009203") in found
    assert ("AS", "ENTITY", "D013167") in found  # a short form defined in the text, linked as its long form
    assert all(e._.kb_ents and e._.kb_ents[0][0] == e.kb_id_ for e in doc.ents)
    nlp.to_disk(tmp_path / "pipeline")  # the detect setting is saved with the component
    again = spacy.load(tmp_path / "pipeline")
    assert [(e.text, e.kb_id_) for e in again(ABSTRACT).ents] == [(t, k) for t, _, k in found]


def test_detection_adds_to_an_upstream_ner_without_overlapping_it(index_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "DISEASE", "pattern": "a heart attack"}])
    nlp.add_pipe("entitylink", config={"index": str(index_dir), "precision": "fp32", "detect": "exact"})
    doc = nlp(ABSTRACT)
    labels = {e.text: e.label_ for e in doc.ents}
    assert labels["a heart attack"] == "DISEASE" and "heart attack" not in labels  # the upstream span stays
    assert labels["high blood pressure"] == "ENTITY"
    with pytest.raises(ValueError, match="detect must be one of"):
        make_nlp(index_dir, detect="magic")


@pytest.mark.slow
def test_detect_with_a_tagger_and_save_it_with_the_pipeline(index_dir, tiny_model, tmp_path):
    from entitylink.model.tagger import Tagger, TaggerTrainer

    text = "Fits were rare. We saw a heart attack and high blood pressure."
    spans = [(text.index(m), text.index(m) + len(m)) for m in ("Fits", "heart attack", "high blood pressure")]
    tagger = Tagger(tiny_model, max_length=32, precision="fp32")
    TaggerTrainer(tagger, epochs=40, learning_rate=3e-3, batch_size=2, show_progress=False).fit([(text, spans)] * 4)
    tagger.save(tmp_path / "tagger")
    nlp = spacy.blank("en")
    nlp.add_pipe("entitylink", config={"index": str(index_dir), "precision": "fp32", "detect": "tagger",
                                       "tagger": str(tmp_path / "tagger"), "detect_threshold": -1.0})
    found = [e.text for e in nlp(text).ents]
    assert found == ["Fits", "heart attack", "high blood pressure"]
    nlp.to_disk(tmp_path / "pipeline")
    assert (tmp_path / "pipeline" / "entitylink" / "tagger" / "model.safetensors").is_file()
    assert [e.text for e in spacy.load(tmp_path / "pipeline")(text).ents] == found
    again = spacy.blank("en").add_pipe("entitylink", config={"detect": "tagger", "tagger": "x"})
    again.from_bytes(nlp.get_pipe("entitylink").to_bytes())
    assert [e.text for e in again(nlp.make_doc(text)).ents] == found
    with pytest.raises(ValueError, match="needs config"):
        make_nlp(index_dir, detect="tagger")
