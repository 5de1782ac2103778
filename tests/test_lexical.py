"""The lexical index (names found at dictionary speed), the detection policy, and the inputs and outputs
around annotation: span folders, alternative ids, the PubTator writer, calibration scorers, bad input."""

import math

import numpy as np
import pytest

from entitylink import DictionaryIndex, Linker, LinkingPolicy, Ontology
from entitylink.index.lexical import LexicalIndex
from entitylink.link.annotate import Annotator

PHENOTYPES = [
    ("HP:1", "Kidney abnormality"), ("HP:1", "Renal abnormality"), ("HP:2", "Kidney cyst"), ("HP:2", "Renal cyst"),
    ("HP:3", "Aplastic nails"), ("HP:4", "Hypoplastic nails"), ("HP:5", "Liver failure"), ("HP:6", "Kidney failure"),
    ("HP:7", "Heart failure"), ("HP:8", "Liver disease"), ("HP:9", "Benign liver tumor"),
    ("HP:10", "Malignant liver tumor"), ("HP:11", "Benign kidney tumor"), ("HP:12", "Malignant kidney tumor"),
    ("HP:13", "Kidney stone"),
]


def lexicon(pairs=PHENOTYPES, **options) -> LexicalIndex:
    return LexicalIndex([n for _, n in pairs], [c for c, _ in pairs], **options)


def found(index: LexicalIndex, text: str, **options):
    return [(m.text, index.concept(m.name), m.kind) for m in index.find(text, **options)]


def test_names_variants_and_learnt_word_classes():
    index = lexicon()
    # "renal"/"kidney" swap in the synonyms of two concepts: a class; "benign"/"malignant" name different
    # concepts in otherwise equal names: no class
    assert index.classes.get("renal") == "kidney" or index.classes.get("kidney") == "renal"
    assert "benign" not in index.classes and "malignant" not in index.classes
    assert found(index, "A renal stone and kidney cysts.") == [
        ("renal stone", "HP:13", "variant"), ("kidney cysts", "HP:2", "variant")]
    assert found(lexicon(equivalences=False), "A renal stone.") == []
    # one word alone never matches through its class
    single = lexicon([("C1", "Kidney"), ("C1", "Renal organ"), ("C2", "Kidney stone"), ("C2", "Renal stone"),
                      ("C3", "Kidney cyst"), ("C3", "Renal cyst")])
    assert [m.text for m in single.find("The renal was seen.")] == []


def test_reordered_and_coordinated_names():
    index = lexicon()
    text = "Abnormalities of the kidney; aplastic or hypoplastic nails; liver and kidney failure."
    assert found(index, text) == [
        ("Abnormalities of the kidney", "HP:1", "reordered"), ("aplastic or hypoplastic nails", "HP:3", "coordinated"),
        ("hypoplastic nails", "HP:4", "exact"), ("liver and kidney failure", "HP:5", "coordinated"),
        ("kidney failure", "HP:6", "exact")]
    # a conjunction is no preposition to turn around: "failure and liver" is not "liver failure"
    assert found(index, "heart failure and liver disease") == [
        ("heart failure", "HP:7", "exact"), ("liver disease", "HP:8", "exact")]
    assert [m.kind for m in index.find(text, reordered=False)] == ["exact", "exact"]


def test_a_frequent_word_is_a_mention_alone_when_its_concept_has_another_one_word_name():
    names = [("S", "Seizure"), ("S", "Epilepsy"), ("D", "Disease")]
    names += [(f"C{i}", f"Focal seizure type {i}") for i in range(30)]
    names += [(f"X{i}", f"Rare disease number {i}") for i in range(30)] + [(f"N{i}", f"Name {i}") for i in range(1500)]
    index = lexicon(names)
    assert "disease" in index.generic and "seizure" not in index.generic
    assert found(index, "Seizures; a disease.") == [("Seizures", "S", "variant")]


def test_partial_windows_carry_the_names_they_share_words_with():
    index = lexicon()
    text = "A malignant hepatic tumor; no hepatic findings."
    spans = {s.text: sorted(PHENOTYPES[i][1] for i in entries)
             for s, entries in index.windows(text, index.tokens(text), 5)}
    # three words, two of them in one name (which has no more than twice as many): scored against it only
    assert spans == {"malignant hepatic tumor": ["Malignant kidney tumor", "Malignant liver tumor"]}


def test_the_detection_policy_is_saved_with_the_index_and_checked(tiny_encoder, tmp_path):
    policy = LinkingPolicy(detect_threshold=0.8, overlaps="nested", lexical="reordered", entity_type="Phenotype")
    index = DictionaryIndex.build(Ontology.from_pairs(PHENOTYPES), tiny_encoder, show_progress=False)
    Linker(index, policy).save(tmp_path / "idx")
    annotator = Annotator(Linker.load(tmp_path / "idx", precision="fp32"))
    assert (annotator.threshold, annotator.overlaps, annotator.lexical) == (0.8, "nested", "reordered")
    for bad in ({"detect_threshold": math.nan}, {"detect_threshold": math.inf}, {"overlaps": "all"},
                {"lexical": "fuzzy"}, {"entity_type": "a\tb"}):
        with pytest.raises(ValueError):
            LinkingPolicy(**bad)
    with pytest.raises(ValueError, match="threshold must be a number"):
        Annotator(Linker(index), threshold=math.nan)
    with pytest.raises(ValueError, match="overlaps must be one of"):
        Annotator(Linker(index), overlaps="all")
    with pytest.raises(ValueError, match="lexical must be one of"):
        Annotator(Linker(index), lexical="fuzzy")


def test_nested_overlaps_report_the_names_inside_a_longer_one(tiny_encoder):
    pairs = [("A", "Mental retardation"), ("B", "Severe mental retardation")]
    linker = Linker(DictionaryIndex.build(Ontology.from_pairs(pairs), tiny_encoder, show_progress=False))
    text = "She has severe mental retardation."
    longest = Annotator(linker, detector="exact").annotate_one(text)
    nested = Annotator(linker, detector="exact", overlaps="nested").annotate_one(text)
    assert [(e.text, e.concept_id) for e in longest] == [("severe mental retardation", "B")]
    assert [(e.text, e.concept_id) for e in nested] == [("severe mental retardation", "B"), ("mental retardation", "A")]


def test_a_hybrid_index_at_sparse_weight_zero_never_searches_its_sparse_half(tiny_encoder, monkeypatch):
    from entitylink.index.hybrid import HybridIndex

    dense = DictionaryIndex.build(Ontology.from_pairs(PHENOTYPES), tiny_encoder, show_progress=False)
    hybrid = HybridIndex(dense, sparse_weight=0.0)

    def refuse(*args, **kwargs):
        raise AssertionError("the sparse half was used")

    monkeypatch.setattr(hybrid.sparse, "search", refuse)
    monkeypatch.setattr(hybrid.sparse, "prepare", refuse)
    assert Linker(hybrid, LinkingPolicy(sparse_weight=0.0)).link("kidney cyst", k=1)[0].concept_id == \
        Linker(dense).link("kidney cyst", k=1)[0].concept_id


def test_a_calibration_applies_to_the_scorer_it_was_fitted_on(tiny_encoder):
    from entitylink import EntityLinkError
    from entitylink.index.hybrid import HybridIndex
    from entitylink.link.calibration import Calibration
    from entitylink.link.linker import fitted_calibration, scorer_of

    dense = DictionaryIndex.build(Ontology.from_pairs(PHENOTYPES), tiny_encoder, show_progress=False)
    fitted = Calibration.fit([0.1, 0.2, 0.8, 0.9], [False, False, True, True], kind="platt").to_dict()
    retriever = LinkingPolicy(calibration={**fitted, "scorer": scorer_of(LinkingPolicy(), reranked=False)})
    reranker = LinkingPolicy(calibration={**fitted, "scorer": {"reranked": True, "sparse_weight": 0.0}})
    assert fitted_calibration(retriever, reranked=False) is not None
    assert fitted_calibration(reranker, reranked=False) is None  # detection reads raw retriever scores then
    raw = Linker(dense).link("kidney cyst", k=1, threshold=-np.inf)[0].score
    assert Linker(dense, retriever).link("kidney cyst", k=1, threshold=-np.inf)[0].score != pytest.approx(raw)
    with pytest.raises(EntityLinkError, match="fitted on the scores of the reranker"):
        Linker(dense, reranker)  # a reranker's calibration on a linker without it
    with pytest.raises(EntityLinkError, match="calibration was fitted on the scores of the retriever"):
        Linker(HybridIndex(dense, sparse_weight=0.0), retriever, sparse_weight=0.5)


def test_pubtator_output_keeps_its_columns_and_writes_the_entity_type():
    from entitylink.text.pubtator import format_pubtator

    block = format_pubtator("7", "Line one\nline\ttwo", [(9, 13, "li\tne", "HP:1")], "Phenotype")
    lines = block.split("\n")
    assert lines[0] == "7|t|Line one line two" and lines[1] == "7|a|"
    assert lines[2].split("\t") == ["7", "9", "13", "li ne", "Phenotype", "HP:1"] and block.endswith("\n\n")
    with pytest.raises(ValueError, match="document id"):
        format_pubtator("a\tb", "text", [])


def test_default_entity_types():
    from entitylink.ontology.table import default_entity_type

    assert default_entity_type("medic:x.txt", Ontology.from_pairs(PHENOTYPES)) == "Disease"
    assert default_entity_type("hpo", Ontology.from_pairs(PHENOTYPES)) == "Phenotype"
    assert default_entity_type("tsv:x.tsv", Ontology.from_pairs(PHENOTYPES)) == "Entity"


def test_span_folders_with_byte_offsets_discontinuous_and_shifted_mentions(tmp_path):
    from entitylink.text.pubtator import read_span_folder

    corpus, ann = tmp_path / "corpus", tmp_path / "ann"
    corpus.mkdir()
    ann.mkdir()
    text = "Café patient. Periventricular, thalamic white matter changes. Self-mutilating behavior seen."
    (corpus / "n1").write_text(text, encoding="utf-8")
    start = len(text.encode()[: text.encode().find(b"Periventricular")])  # counted in UTF-8 bytes
    lines = [f"{start}\t{start + len('Periventricular, thalamic white matter changes')}\tperiventricular white matter "
             "changes\tHP:2", f"{text.index('Self') + 3}\t{text.index('Self') + 27}\tself mutilating behavior\tHP:3"]
    (ann / "n1").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (doc,) = read_span_folder(corpus, ann)
    assert [(text[m.start:m.end], m.ids) for m in doc.mentions] == [
        ("Periventricular, thalamic white matter changes", "HP:2"), ("Self-mutilating behavior", "HP:3")]
    (ann / "n1").write_text("5\t500\tx\tHP:1\n", encoding="utf-8")
    from entitylink import DataFormatError

    with pytest.raises(DataFormatError, match=r"n1:1: offsets 5-500 fall outside"):
        read_span_folder(corpus, ann)


def test_alternative_ids_map_to_their_terms(tmp_path):
    from entitylink.ontology.obo import read_alt_ids

    (tmp_path / "x.obo").write_text("format-version: 1.2\n\n[Term]\nid: HP:1\nname: A\nalt_id: HP:9\n"
                                    "alt_id: HP:8 ! old\n\n[Term]\nid: HP:2\nname: B\n")
    assert read_alt_ids(tmp_path / "x.obo") == {"HP:9": "HP:1", "HP:8": "HP:1"}


def test_bad_annotation_arguments_name_the_argument(tiny_model, tmp_path, capsys):
    from entitylink.apps.cli import main

    from .conftest import ONTOLOGIES

    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model",
                 str(tiny_model), "--precision", "fp32", "--out", str(tmp_path / "idx")]) == 0
    docs = tmp_path / "docs.txt"
    docs.write_text("Asthma.\n")
    base = ["annotate", "--index", str(tmp_path / "idx"), "--output", str(tmp_path / "out.jsonl")]
    with pytest.raises(SystemExit):
        main([*base, "--input", str(docs), "--detect-threshold", "nan"])
    assert "--detect-threshold: expected a finite number, not 'nan'" in capsys.readouterr().err
    for args, message in (
        (["--input", str(tmp_path)], f"--input {tmp_path} is a directory"),
        (["--input", str(tmp_path / "none.txt")], "no such file"),
        (["--input", str(docs), "--tagger", str(tmp_path / "missing")], "--tagger"),
        (["--input", str(docs), "--tagger", str(tmp_path / "idx")], "not a tagger directory"),
    ):
        assert main([*base, *args]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    weightless = tmp_path / "weightless"
    weightless.mkdir()
    (weightless / "entitylink_tagger.json").write_text("{}")
    assert main([*base, "--input", str(docs), "--tagger", str(weightless)]) != 0
    assert "holds no model weights" in capsys.readouterr().err


def test_a_name_after_a_negating_prefix_is_not_that_name():
    index = lexicon([("T1", "Insulin-dependent diabetes mellitus"), ("T2", "Non-insulin dependent diabetes")])
    assert found(index, "Non-insulin-dependent diabetes mellitus; insulin-dependent diabetes mellitus.") == [
        ("Non-insulin-dependent diabetes", "T2", "exact"), ("insulin-dependent diabetes mellitus", "T1", "exact")]


def test_index_takes_a_corpus_s_mentions_beside_the_ontology(tiny_model, tmp_path):
    from entitylink.apps.cli import main

    from .conftest import ONTOLOGIES
    from .test_cli import _pubtator

    corpus = tmp_path / "train.txt"
    _pubtator(corpus, [("1", "A hart attack.", "Then fits and a renal thing.",
                        [("hart attack", "D009203"), ("fits", "D012640"), ("renal thing", "D1|D2")])])
    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model", str(tiny_model),
                 "--precision", "fp32", "--mentions", f"pubtator:{corpus}", "--out", str(tmp_path / "idx")]) == 0
    index = Linker.load(tmp_path / "idx", precision="fp32").index
    names = dict(zip(index.names, index.concept_ids))
    assert names["hart attack"] == "D009203" and "renal thing" not in names  # a composite mention is left out
    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model", str(tiny_model),
                 "--mentions", str(corpus), "--out", str(tmp_path / "bad")]) != 0  # must be pubtator:FILE


def test_a_linker_calibrates_itself_for_its_own_scorer(tiny_encoder, tmp_path):
    dense = DictionaryIndex.build(Ontology.from_pairs(PHENOTYPES), tiny_encoder, show_progress=False)
    linker = Linker(dense)
    mentions = ["kidney cyst", "renal cysts", "liver failure", "heart failure", "kidney stones", "liver tumor"]
    gold = ["HP:2", "HP:2", "HP:5", "HP:7", "HP:13", "HP:9|HP:10"]
    calibration = linker.calibrate(mentions, gold, kind="platt")
    assert linker.policy.calibration["scorer"] == {"reranked": False, "sparse_weight": 0.0}
    expected = float(calibration(Linker(dense).link("kidney cyst", k=1)[0].score))
    assert linker.link("kidney cyst", k=1)[0].score == pytest.approx(expected)
    linker.save(tmp_path / "idx")
    assert Linker.load(tmp_path / "idx", precision="fp32").link("kidney cyst", k=1)[0].score == pytest.approx(expected)
    with pytest.raises(ValueError, match="6 mentions for 1 gold"):
        linker.calibrate(mentions, gold[:1])


def test_names_in_another_order_and_without_accents(tiny_encoder):
    index = lexicon([("ID", "Intellectual disability"), ("IDS", "Intellectual disability, severe"),
                     ("CAL", "Cafe-au-lait spot")])
    assert found(lexicon([("CH", "Chorea"), ("CA", "Cafe")]), "A café.") == [("café", "CA", "variant")]
    assert found(index, "Severe intellectual disability and café au lait spots.") == [
        ("Severe intellectual disability", "IDS", "reordered"), ("intellectual disability", "ID", "exact"),
        ("café au lait spots", "CAL", "variant")]
    # the reordered name is as specific as the text: it wins the overlap with the shorter name inside it
    pairs = [("ID", "Intellectual disability"), ("IDS", "Intellectual disability, severe")]
    linker = Linker(DictionaryIndex.build(Ontology.from_pairs(pairs), tiny_encoder, show_progress=False))
    entities = Annotator(linker, detector="exact", lexical="reordered").annotate_one("Severe intellectual disability.")
    assert [(e.text, e.concept_id, e.source) for e in entities] == [
        ("Severe intellectual disability", "IDS", "reordered")]


def test_linking_within_entries_scores_as_the_hybrid_retriever(tiny_encoder):
    from entitylink.index.hybrid import HybridIndex

    dense = DictionaryIndex.build(Ontology.from_pairs(PHENOTYPES), tiny_encoder, show_progress=False)
    linker = Linker(HybridIndex(dense, sparse_weight=0.5), k=3)
    everything = list(range(len(dense)))
    for mention in ("kidney cysts", "liver failing"):
        within = linker.link_within([mention], [everything])[0]
        full = linker.link(mention, threshold=-np.inf)
        assert [c.concept_id for c in within] == [c.concept_id for c in full]
        assert [c.score for c in within] == pytest.approx([c.score for c in full], abs=1e-5)
    assert linker.link_within(["kidney cyst", ""], [[], everything]) == [[], []]
