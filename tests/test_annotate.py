"""Document annotation: span rules, detection, abbreviations, overlaps and the end-to-end counts."""

import re

import pytest

from entitylink import DictionaryIndex, Encoder, Linker, Ontology
from entitylink.link.annotate import Annotator, Entity, _resolve_overlaps
from entitylink.link.doc_evaluation import score_documents
from entitylink.text.spans import sentences, tokenize, windows

from .conftest import ONTOLOGIES


@pytest.fixture(scope="module")
def linker(tiny_model_session):
    medic = Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}")
    extra = Ontology.from_pairs([("D014927", "WAS"), ("D009136", "can syndrome")], name="extra")
    onto = Ontology.concat([medic, extra])
    return Linker(DictionaryIndex.build(onto, Encoder(tiny_model_session, precision="fp32"), show_progress=False))


def test_tokens_and_sentences_keep_offsets():
    text = "Heart-attack in 2 men. Type 2 diabetes (NIDDM)!"
    tokens = [(t.start, t.end, t.text) for t in tokenize(text)]
    assert tokens[:3] == [(0, 5, "Heart"), (6, 12, "attack"), (13, 15, "in")]
    assert [text[a:b] for a, b in sentences(text)] == ["Heart-attack in 2 men. ", "Type 2 diabetes (NIDDM)!"]


def test_windows_follow_the_boundary_rules():
    text = "The patients had a severe heart attack. Type 2 diabetes (NIDDM) in 12 cases."
    spans = {s.text for s in windows(text, 4)}
    assert {"heart attack", "severe heart attack", "patients", "Type 2 diabetes", "NIDDM"} <= spans
    assert not any(s.split()[0].lower() in {"the", "a", "had", "in"} for s in spans)  # stop-word starts
    assert not any(s.endswith(("a", " in", "12")) for s in spans)  # stop word or bare number at the end
    assert "attack. Type" not in " ".join(spans) and "diabetes (NIDDM" not in " ".join(spans)
    assert all(len(s.split()) <= 4 for s in spans)
    assert {s.text for s in windows("in of 12 to", 3)} == set()


def test_exact_matches_with_offsets_and_the_acronym_case_rule(linker):
    text = "He was seen for asthma and Heart Attack; WAS was excluded. She can walk."
    entities = Annotator(linker, detector="exact").annotate_one(text)
    found = [(e.text, e.concept_id, e.source) for e in entities]
    assert ("asthma", "D001249", "exact") in found and ("Heart Attack", "D009203", "exact") in found
    assert ("WAS", "D014927", "exact") in found  # the syndrome written as its acronym
    assert all(text[e.start:e.end] == e.text for e in entities)
    assert not any(e.text.lower() in ("was", "can") and e.text != "WAS" for e in entities)  # the verbs
    # an acronym that is no stop word is matched in its own case only ("CVA", not "cva")
    found = [(e.text, e.concept_id) for e in Annotator(linker, detector="exact").annotate_one("A CVA; no cva.")]
    assert found == [("CVA", "D020521")]


def test_short_forms_defined_in_the_document_are_linked_as_their_long_form(linker):
    text = "Patients with non-insulin-dependent diabetes mellitus (NIDDM) were seen. NIDDM is common; so is CVA."
    entities = Annotator(linker, detector="exact").annotate_one(text)
    niddm = [e for e in entities if e.text == "NIDDM"]
    assert len(niddm) == 2 and {e.concept_id for e in niddm} == {"D003924"}
    long_form = [e for e in entities if e.text == "non-insulin-dependent diabetes mellitus"]
    assert long_form and long_form[0].concept_id == "D003924"
    assert any(e.text == "CVA" and e.concept_id == "D020521" for e in entities)  # a dictionary acronym


def test_overlaps_keep_exact_then_higher_score_then_longer():
    e = lambda s, t, score, source="approximate": Entity(s, t, "x" * (t - s), "C", score, (), source)  # noqa: E731
    kept = _resolve_overlaps([e(0, 10, 0.9), e(0, 5, 0.99, "exact"), e(6, 12, 0.95), e(20, 30, 0.8), e(20, 25, 0.8)])
    assert [(k.start, k.end) for k in kept] == [(0, 5), (6, 12), (20, 30)]


def test_the_threshold_drops_approximate_spans_only(linker):
    text = "A heart attack with a myocardial infarcted wall."  # "myocardial infarcted": no name, nor a variant
    keep_all = Annotator(linker, threshold=-1.0).annotate_one(text)
    strict = Annotator(linker, threshold=1.01).annotate_one(text)
    assert {e.source for e in strict} == {"exact"} and any(e.text == "heart attack" for e in strict)
    assert any(e.source == "approximate" for e in keep_all)


def test_approximate_windows_are_no_longer_than_max_tokens(linker):
    from entitylink.text.spans import tokenize

    text = "An asthmatic child had a congestive heart infarct and a myocardial infarcted wall."
    for limit, expected in ((1, {1}), (2, {1, 2}), (3, {1, 2, 3}), (4, {1, 2, 3, 4})):
        proposals = Annotator(linker, max_tokens=limit)._proposals(text)
        assert {len(tokenize(p.span.text)) for p in proposals if p.source == "approximate"} == expected, limit


def test_only_windows_that_match_a_name_partly_are_scored(linker):
    text = "An asthmatic child had a congestive heart infarct; the child had a walk in the park."
    proposals = Annotator(linker)._proposals(text)
    approximate = {p.span.text: p.entries for p in proposals if p.source == "approximate"}
    # a word that begins as a one-word name; three words, two of them in one name
    assert set(approximate) == {"asthmatic", "congestive heart infarct"}
    names = linker.index.names
    assert [names[i] for i in approximate["asthmatic"]] == ["Asthma"]
    assert all("Congestive" in names[i] for i in approximate["congestive heart infarct"])


def test_batches_stream_in_order_and_empty_documents_are_empty(linker):
    texts = ["asthma", "", "nothing here at all", "fits and seizures"]
    annotator = Annotator(linker, detector="exact", batch_size=2)
    out = list(annotator.annotate(iter(texts)))
    assert len(out) == 4 and out[1] == [] and [e.text for e in out[0]] == ["asthma"]
    assert [e.text for e in out[3]] == ["fits", "seizures"]


def test_bad_settings_are_clear_errors(linker):
    with pytest.raises(ValueError, match="detector must be one of"):
        Annotator(linker, detector="magic")
    with pytest.raises(ValueError, match="needs a tagger"):
        Annotator(linker, detector="tagger")


def test_document_and_mention_counts():
    gold = [[(0, 5, "D1"), (10, 20, "D2|D3"), (30, 35, "D1")], [(0, 4, "D9")]]
    predicted = [[(0, 5, "D1"), (11, 20, "D3"), (40, 45, "D4|D1"), (50, 55, "D7")], []]
    scores = score_documents(gold, predicted)
    # documents: gold ids {D1, D2, D3} and {D9}; predicted groups {D1}, {D3}, {D1, D4}, {D7}
    assert scores["document"] == {"p": 0.75, "r": 0.5, "f1": 0.6, "tp": 2, "fp": 1, "fn": 2}
    assert scores["mention_strict"]["tp"] == 1 and scores["mention_strict"]["fp"] == 3
    assert scores["mention_relaxed"]["tp"] == 2 and scores["mention_relaxed"]["fn"] == 2
    with pytest.raises(ValueError, match="predicted documents"):
        score_documents(gold, predicted[:1])


@pytest.mark.slow
def test_dense_detection_finds_what_string_matching_misses():
    """The issue's example, with the packaged MiniLM: "myocardial infarct" is no dictionary name."""
    medic = Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}").frame
    medic = medic[medic["name"] != "Myocardial Infarct"]
    linker = Linker(DictionaryIndex.build(Ontology(medic, name="medic"), Encoder(), show_progress=False))
    text = "The patient had a heart attack and diabetes mellitus type 2; also a myocardial infarct."
    exact = {e.text for e in Annotator(linker, detector="exact").annotate_one(text)}
    found = {e.text: e.concept_id for e in Annotator(linker).annotate_one(text)}
    assert "myocardial infarct" not in exact
    assert found.get("myocardial infarct") == "D009203" and found.get("heart attack") == "D009203"
    assert any("diabetes" in t for t in found)


def test_a_long_document_is_cut_into_pieces_and_offsets_still_point_into_it(linker):
    from entitylink.text.spans import chunks

    sentence = "Asthma was seen with heart attack in one of the men. "
    text = sentence * 400  # ~21k characters
    pieces = chunks(text, 1000)
    assert "".join(p for _, p in pieces) == text and all(len(p) <= 1000 for _, p in pieces)
    assert all(text[o:o + len(p)] == p for o, p in pieces) and all(p.startswith("Asthma") for _, p in pieces)
    assert chunks("x" * 25, 10) == [(0, "x" * 10), (10, "x" * 10), (20, "x" * 5)] and chunks("", 10) == []
    whole = Annotator(linker, detector="exact").annotate_one(text)
    cut = Annotator(linker, detector="exact", max_chars=1000, batch_size=3).annotate_one(text)
    assert [(e.start, e.end, e.concept_id) for e in cut] == [(e.start, e.end, e.concept_id) for e in whole]
    assert len(cut) == 800 and all(text[e.start:e.end] == e.text for e in cut)


def test_name_matcher_from_an_ontology_gives_weak_labels_longest_first():
    from entitylink.link.annotate import NameMatcher

    medic = Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}")
    matcher = NameMatcher.from_ontology(medic)
    text = "Type 2 diabetes and heart failure; congestive heart failure. WAS was seen, then asthma."
    found = [s.text for s in matcher.find(text)]
    assert found == ["Type 2 diabetes", "heart failure", "congestive heart failure", "asthma"]


def test_synthetic_sentences_place_names_where_their_spans_say():
    from entitylink.link.annotate import synthetic_examples

    examples = synthetic_examples(Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}"), n=30, seed=1)
    placed = [(text[a:z], text) for text, spans in examples for a, z in spans]
    assert len(placed) >= 20 and any(not spans for _, spans in examples)  # sentences without names too
    names = {n.casefold() for n in Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}").names}
    assert all(name.casefold() in names for name, _ in placed)
    assert all("," not in name for name, _ in placed)  # inverted names ("Infarction, Myocardial") left out


def test_a_reranker_re_scores_only_the_spans_kept(linker, tiny_model_session):
    from entitylink.model.cross_encoder import CrossEncoder

    reranked = Linker(linker.index, linker.policy.override(reranker="rr"),
                      reranker=CrossEncoder(tiny_model_session, precision="fp32"))
    calls = []
    real = reranked.link

    def spy(texts, **kwargs):
        calls.append((list(texts), kwargs.get("rerank", True)))
        return real(texts, **kwargs)

    reranked.link = spy
    text = "Asthma and a heart attack; a myocardial infarcted wall; congestive heart infarct."
    entities = Annotator(reranked, threshold=-1.0).annotate_one(text)
    ((kept, rerank),) = calls  # partial windows are scored without a search; only the reranker is called
    dense = [e for e in entities if e.source not in ("exact", "reordered", "coordinated")]
    assert rerank is True and len(kept) == len(dense) == 2
    assert not {"Asthma", "heart attack"} & set(kept)  # names take the table's concept
    assert all(0.0 <= e.score <= 1.0 for e in entities)  # the reranker's probabilities, or 1 for a name
    expected = dict(zip(kept, real(kept, threshold=float("-inf"))))
    assert [(e.concept_id, e.score) for e in dense] == \
        [(expected[e.text][0].concept_id, expected[e.text][0].score) for e in dense]


def test_a_reranker_that_reads_context_gets_each_occurrence_in_its_sentence(linker, tiny_model_session):
    from entitylink.model.cross_encoder import CrossEncoder

    reader = CrossEncoder(tiny_model_session, context_chars=20, precision="fp32")
    reranked = Linker(linker.index, linker.policy.override(reranker="rr"), reranker=reader)
    seen = []
    real = reader.score

    def spy(mentions, names, **kwargs):
        seen.extend(mentions)
        return real(mentions, names, **kwargs)

    reader.score = spy
    text = "One myocardial infarcted wall here. Later a myocardial infarcted wall again."
    entities = Annotator(reranked, threshold=-1.0).annotate_one(text)
    dense = [e for e in entities if e.source not in ("exact", "reordered", "coordinated")]
    assert len(dense) == 2 and dense[0].text == dense[1].text  # one phrase, twice
    read = list(dict.fromkeys(seen))
    from entitylink.text.spans import context_window

    assert read == [reader.mention_text(e.text, context_window(text, e.start, e.end)) for e in dense]
    assert read[0].startswith("One [START]") and "Later a [START]" in read[1]  # each in its own sentence


def test_phrases_seen_in_earlier_batches_are_not_linked_again(linker, monkeypatch):
    annotator = Annotator(linker, batch_size=1, threshold=-1.0)
    calls = []
    real = linker.link_within

    def spy(texts, entries):
        calls.append(list(texts))
        return real(texts, entries)

    monkeypatch.setattr(linker, "link_within", spy)
    first, second = annotator.annotate(["A myocardial infarcted wall.", "Then asthma and a myocardial infarcted wall."])
    assert calls == [["myocardial infarcted"]]  # the second document brings no new phrase
    one = [e for e in first if e.text == "myocardial infarcted"]
    two = [e for e in second if e.text == "myocardial infarcted"]
    assert one and two and one[0].candidates == two[0].candidates  # the remembered candidates are the same


def test_a_partial_window_is_scored_as_the_retriever_scores_it(linker):
    from entitylink.link.linker import Linker

    entities = Annotator(linker, threshold=-1.0).annotate_one("A myocardial infarcted wall.")
    (found,) = [e for e in entities if e.source == "approximate"]
    full = Linker(linker.index, linker.policy).link("myocardial infarcted", k=1, threshold=float("-inf"))[0]
    assert found.concept_id == full.concept_id and found.score == pytest.approx(full.score, abs=1e-5)


def test_exact_detection_makes_no_encoder_call(linker, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the encoder was called")

    monkeypatch.setattr(linker, "link", refuse)
    entities = Annotator(linker, detector="exact").annotate_one("Asthma and fits; a heart attack.")
    assert [(e.text, e.concept_id, e.score) for e in entities] == [
        ("Asthma", "D001249", 1.0), ("fits", "D012640", 1.0), ("heart attack", "D009203", 1.0)]


def test_a_word_in_many_names_is_no_mention_on_its_own():
    from entitylink import Normalizer
    from entitylink.link.annotate import NameMatcher

    names = ["Syndrome"] + [f"Type {chr(97 + i)}{chr(97 + j)} syndrome" for i in range(5) for j in range(5)] + \
        [f"Name {i}" for i in range(2000)]  # "syndrome" is in 26 of 2,026 names: over 1%
    matcher = NameMatcher(names, [f"C{i}" for i in range(len(names))], Normalizer())
    assert [s.text for s in matcher.find("A syndrome, then type ab syndrome.")] == ["type ab syndrome"]
    # the plural of a generic word is generic too; the plural of a name is a name
    assert [s.text for s in matcher.find("Syndromes, then type ab syndromes.")] == ["type ab syndromes"]
    few = ["Syndrome", "Type ab syndrome"] + [f"Name {i}" for i in range(2000)]  # now in 2 names only
    rare = NameMatcher(few, [f"C{i}" for i in range(len(few))], Normalizer())
    assert [s.text for s in rare.find("A syndrome, then type ab syndrome.")] == ["syndrome", "type ab syndrome"]


def test_a_defined_short_form_takes_the_concept_found_in_its_long_form(linker):
    text = "Children with severe asthma attacks (SAA) were seen. SAA recurred in winter."
    entities = Annotator(linker, threshold=-1.0).annotate_one(text)
    saa = [e for e in entities if e.text == "SAA"]
    # "severe asthma attacks" is no dictionary name; the entity inside it ("asthma") names the short form
    assert [(e.start, e.concept_id, e.source) for e in saa] == [
        (text.index("SAA"), "D001249", "abbreviation"), (text.rindex("SAA"), "D001249", "abbreviation")]
    assert any(e.text == "asthma" and e.concept_id == "D001249" for e in entities)
    # linked below the threshold (or not linked: string matching only), a short form takes an inner entity
    # only if that covers half its long form
    assert [e.text for e in Annotator(linker, threshold=1.01).annotate_one(text)] == ["asthma"]
    assert [e.text for e in Annotator(linker, detector="exact").annotate_one(text)] == ["asthma"]
    text = "Patients with type 2 diabetes mellitus (T2DM) were seen. T2DM is common."
    strict = Annotator(linker, detector="exact", threshold=1.01).annotate_one(text)
    assert [(e.text, e.concept_id) for e in strict if e.source == "abbreviation"] == [("T2DM", "D003924")] * 2


def test_with_a_reranker_a_defined_short_form_is_reranked_as_its_long_form_entity(linker, tiny_model_session):
    from entitylink.model.cross_encoder import CrossEncoder

    reranked = Linker(linker.index, linker.policy.override(reranker="rr"),
                      reranker=CrossEncoder(tiny_model_session, precision="fp32"))
    text = "Children with severe asthma attacks (SAA) were seen. SAA recurred in winter."
    entities = Annotator(reranked, threshold=-1.0).annotate_one(text)
    asthma = [e for e in entities if e.text == "asthma"]
    saa = [e for e in entities if e.text == "SAA"]
    assert len(asthma) == 1 and len(saa) == 2
    assert {(e.concept_id, e.score, e.source) for e in saa} == {(asthma[0].concept_id, asthma[0].score, "abbreviation")}


def test_plurals_and_british_spellings_fold_onto_one_key():
    from entitylink.text.variants import fold_word, variant_key

    same = [("tumours", "tumor"), ("haemorrhages", "hemorrhage"), ("oedema", "edema"), ("diarrhoea", "diarrhea"),
            ("fibres", "fiber"), ("anomalies", "anomaly"), ("abscesses", "abscess"), ("vertebrae", "vertebra"),
            ("dysplasias", "dysplasia"), ("coeliac diseases", "celiac disease")]
    for variant, name in same:
        assert variant_key(variant) == variant_key(name), (variant, name)
    for word in ("stenosis", "virus", "toes", "aids", "severe", "abscess", "type2"):  # short, Latin, digits
        assert fold_word(word) == word


def test_a_lexical_variant_of_a_name_is_an_exact_match(linker):
    text = "Breast tumours and a myocardial infarcts cluster were seen; heart diseases too."
    entities = Annotator(linker, detector="exact").annotate_one(text)
    found = {(e.text, e.concept_id, e.source) for e in entities}
    assert ("Breast tumours", "D001943", "exact") in found  # "Breast Tumor"
    assert ("myocardial infarcts", "D009203", "exact") in found  # "Myocardial Infarct"
    assert ("heart diseases", "D006331", "exact") in found


def test_weak_labels_include_lexical_variants():
    from entitylink import Normalizer
    from entitylink.link.annotate import NameMatcher

    names = ["Ovarian Tumor", "Anemia"]
    matcher = NameMatcher(names, ["C1", "C2"], Normalizer())
    assert [s.text for s in matcher.find("Ovarian tumours with anaemia.")] == ["Ovarian tumours", "anaemia"]


def test_a_tagger_adds_the_names_its_training_corpus_annotated_where_it_tagged_nothing(linker):
    from entitylink.link.annotate import choose_tagger_settings
    from entitylink.text.pubtator import Document, Mention
    from entitylink.text.spans import Span

    text = "Asthma with a Heart Attack; hypertension and heart attacks later."

    class Tagger:  # tags "Asthma" only; trained on a corpus whose mentions were these
        settings = {"detect_threshold": 0.95, "sparse_weight": 0.0}
        dictionary = None
        mentions = ["asthma", "heart  attack"]

        def spans_batch(self, texts, dictionary=None):
            return [[Span(0, 6, "Asthma")] for _ in texts]

    def found(annotator):
        return [(e.text, e.concept_id, e.source) for e in annotator.annotate_one(text)]

    tagger = Tagger()
    assert found(Annotator(linker, detector="tagger", tagger=tagger)) == [("Asthma", "D001249", "tagger")]
    # names verbatim (and their variants) that were training mentions; "hypertension" is a name, never annotated
    assert found(Annotator(linker, detector="tagger", tagger=tagger, training_mentions=True)) == [
        ("Asthma", "D001249", "tagger"), ("Heart Attack", "D009203", "exact"), ("heart attacks", "D009203", "exact")]

    class Wider(Tagger):  # also tags "with a Heart Attack", which the encoder links under the threshold
        settings = {"detect_threshold": 2.0, "sparse_weight": 0.0}

        def spans_batch(self, texts, dictionary=None):
            return [[Span(0, 6, "Asthma"), Span(7, 26, "with a Heart Attack")] for _ in texts]

    assert [e[0] for e in found(Annotator(linker, detector="tagger", tagger=Wider(), training_mentions=True))] == \
        ["Asthma", "Heart Attack", "heart attacks"]  # a tagged span that was dropped does not hide a mention
    kept = found(Annotator(linker, detector="tagger", tagger=Wider(), threshold=-1.0, training_mentions=True))
    assert [e[0] for e in kept] == ["Asthma", "with a Heart Attack", "heart attacks"]
    gold = [Document("1", text, "", [Mention("1", 14, 26, "Heart Attack", "Disease", "D009203"),
                                     Mention("1", 0, 6, "Asthma", "Disease", "D001249")])]
    best = choose_tagger_settings(linker, tagger, gold)
    assert best["training_mentions"] is True and best["dev_document_f1"] == 1.0
    tagger.settings = best
    assert len(found(Annotator(linker, detector="tagger", tagger=tagger))) == 3  # the tagger's own setting
    tagger.mentions = None
    assert choose_tagger_settings(linker, tagger, gold)["training_mentions"] is False
    assert len(found(Annotator(linker, detector="tagger", tagger=tagger))) == 1  # nothing to add
    with pytest.raises(ValueError, match="tagger trained on an annotated corpus"):
        Annotator(linker, detector="tagger", tagger=tagger, training_mentions=True)


def test_tagger_settings_are_chosen_with_the_tagger_own_dictionary(linker):
    from entitylink.link.annotate import choose_tagger_settings
    from entitylink.text.pubtator import Document, Mention
    from entitylink.text.spans import Span

    text = "A zebra fever and a heart attack."

    class Tagger:  # a tagger whose dictionary has a name the index lacks
        settings = {"detect_threshold": 0.95, "sparse_weight": 0.1}
        dictionary = [("X1", "zebra fever")]
        seen: list = []

        def spans_batch(self, texts, dictionary=None):
            self.seen += [dictionary(t) for t in texts]
            return [[Span(20, 32, "heart attack")] for _ in texts]

    tagger = Tagger()
    gold = [Document("1", text, "", [Mention("1", 20, 32, "heart attack", "Disease", "D009203")])]
    best = choose_tagger_settings(linker, tagger, gold)
    assert tagger.seen and tagger.seen[0] == [(2, 13)]  # its own dictionary's name, not the index's names
    assert best["dev_document_f1"] == 1.0


def test_a_coordinated_tagger_span_is_one_entity_of_its_parts_concepts(linker):
    from entitylink.link.annotate import choose_tagger_settings
    from entitylink.text.pubtator import Document, Mention
    from entitylink.text.spans import Span

    text = "Breast and ovarian cancer in one family; lung, colon, and liver cancers in another; breast, and colon."

    class Tagger:  # tags one coordinated span whole, the other as the pieces a tagger often gives
        settings = {"detect_threshold": 0.9, "sparse_weight": 0.0}
        dictionary = mentions = None

        def spans_batch(self, texts, dictionary=None):
            return [[Span(0, 25, "Breast and ovarian cancer"), Span(41, 45, "lung"), Span(47, 52, "colon"),
                     Span(58, 71, "liver cancers"), Span(84, 90, "breast"), Span(96, 101, "colon")] for _ in texts]

    def found(annotator):
        return [(e.text, e.concept_id, e.source) for e in annotator.annotate_one(text)]

    off = found(Annotator(linker, detector="tagger", tagger=Tagger()))
    # "liver cancers" is a name's variant (concept from the table, score 1.0): it outranks the composite, whose
    # score is its weakest part's (under 1.0), unless the pieces of a composite that holds give way to it
    assert ("liver cancers", "D006529", "tagger") in off and not any(e[2] == "composite" for e in off)
    on = found(Annotator(linker, detector="tagger", tagger=Tagger(), composites=True))
    assert on[:2] == [("Breast and ovarian cancer", "D001943+D010051", "composite"),
                      ("lung, colon, and liver cancers", "D008175+D003110+D006529", "composite")]
    assert len(on) == 4 and [e[0] for e in on[2:]] == ["breast", "colon"]  # the pieces give way to the whole
    # "breast, and colon" names no mention (no rule splits it): its pieces stay as they are
    # a composite's ids count one by one: right where each is gold
    gold = [Document("1", text, "", [Mention("1", 0, 25, "Breast and ovarian cancer", "Disease", "D001943|D010051"),
                                     Mention("1", 41, 71, "lung, colon, and liver cancers", "Disease",
                                             "D008175|D003110|D006529")])]
    best = choose_tagger_settings(linker, Tagger(), gold)
    assert best["composites"] is True
    scores = score_documents([[(0, 25, "D001943|D010051")]], [[(0, 25, "D001943+D009369")]])["document"]
    assert (scores["tp"], scores["fp"], scores["fn"]) == (1, 1, 1)


def test_the_settings_grid_counts_each_document_as_the_document_scores_do(linker):
    from entitylink.link.annotate import document_f1, tagger_settings_grid
    from entitylink.link.doc_evaluation import score_annotations
    from entitylink.text.pubtator import Document, Mention
    from entitylink.text.spans import Span

    texts = ["A heart attack and asthma.", "Asthma only.", "Nothing here."]

    class Tagger:
        settings = {"detect_threshold": 0.9, "sparse_weight": 0.0}
        dictionary = mentions = None

        def spans_batch(self, texts, dictionary=None):
            return [[Span(m.start(), m.end(), m.group()) for m in re.finditer(r"heart attack|[Aa]sthma", t)]
                    for t in texts]

    gold = [Document("1", texts[0], "", [Mention("1", 2, 14, "heart attack", "Disease", "D009203")]),
            Document("2", texts[1], "", [Mention("2", 0, 6, "Asthma", "Disease", "D001249")]),
            Document("3", texts[2], "", [])]
    settings, counts = tagger_settings_grid(linker, Tagger(), gold)
    assert counts.shape == (len(settings), 3, 4) and len(settings) == 9 * 2  # thresholds × composites off/on
    for i in (0, len(settings) - 1):
        s = settings[i]
        annotator = Annotator(linker, detector="tagger", tagger=Tagger(), threshold=s["detect_threshold"],
                              composites=s["composites"])
        expected = score_annotations(gold, list(annotator.annotate(texts)))["document"]
        assert round(float(document_f1(counts[i])), 4) == expected["f1"]
        assert counts[i, :, 3].tolist() == [1, 1, 0]  # gold ids per document
    assert counts[0, 0].tolist() == [1, 2, 1, 1]  # document 1: asthma is predicted too, not gold there
