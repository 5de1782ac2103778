"""The mention tagger: labels from spans, decoding, training on a toy set, saving, and annotation with it."""

import pytest

from entitylink.model.tagger import LABELS, Tagger, TaggerTrainer, decode, sentence_examples, span_scores


def spans_of(text, *mentions):
    out, start = [], 0
    for mention in mentions:
        begin = text.index(mention, start)
        out.append((begin, begin + len(mention)))
        start = begin + len(mention)
    return text, out


TRAIN = [
    spans_of("The patient had a heart attack and asthma.", "heart attack", "asthma"),
    spans_of("Asthma was treated. Seizures followed.", "Asthma", "Seizures"),
    spans_of("No heart attack was seen in the patient.", "heart attack"),
    spans_of("She had seizures and a heart attack.", "seizures", "heart attack"),
    spans_of("The patient was well.",),
]


def test_labels_follow_words_and_decoding_inverts_them(tiny_model):
    tagger = Tagger(tiny_model, max_length=32, precision="fp32")
    trainer = TaggerTrainer(tagger)
    text, mentions = spans_of("a heart attack, then G6PD", "heart attack", "G6PD")
    _, _, offsets = tagger.encode_pieces([text])
    labels = trainer.labels(text, mentions, offsets[0])
    words = [(offset, label) for offset, label in zip(offsets[0], labels) if label != -100]
    assert [(text[a:z], LABELS[label]) for (a, z), label in words] == [
        ("a", "O"), ("heart", "B"), ("attack", "I"), (",", "O"), ("t", "O"), ("G", "B")]  # first pieces
    tokens = [(offset, label if label != -100 else 2) for offset, label in zip(offsets[0], labels)
              if offset[1] > offset[0]]
    assert decode(text, tokens) == mentions  # continuation pieces join their word


def test_sentences_keep_their_mentions_and_a_mention_across_a_break_stays_whole():
    text = "Asthma was seen. Heart attack followed."
    parts = sentence_examples([spans_of(text, "Asthma", "Heart attack")])
    assert [(t, [t[a:z] for a, z in m]) for t, m in parts] == [("Asthma was seen. ", ["Asthma"]),
                                                               ("Heart attack followed.", ["Heart attack"])]
    joined = sentence_examples([(text, [(7, 20)])])
    assert len(joined) == 1 and joined[0][1] == [(7, 20)]


@pytest.mark.slow
def test_training_learns_a_toy_set_and_the_saved_tagger_reopens(tiny_model, tmp_path):
    from transformers import AutoModelForTokenClassification

    tagger = Tagger(tiny_model, max_length=32, precision="fp32")
    before = span_scores(tagger, TRAIN)["f1"]
    TaggerTrainer(tagger, epochs=40, learning_rate=3e-3, batch_size=5, show_progress=False).fit(TRAIN, dev=TRAIN)
    after = span_scores(tagger, TRAIN)
    assert after["f1"] >= 0.9 > before
    found = tagger.spans("She had seizures and a heart attack.")  # a training sentence
    assert [s.text for s in found] == ["seizures", "heart attack"]
    tagger.save(tmp_path / "tagger")
    again = Tagger(tmp_path / "tagger", precision="fp32")
    assert [(s.start, s.end) for s in again.spans("She had seizures and a heart attack.")] == \
        [(s.start, s.end) for s in found]
    assert again.training["best_dev_f1"] == after["f1"] and again.max_length == 32
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "tagger").config.id2label[1] == "B"
    assert (tmp_path / "tagger" / "model.safetensors").is_file()


def test_bad_settings_are_clear_errors(tiny_model):
    tagger = Tagger(tiny_model, max_length=32, precision="fp32")
    with pytest.raises(ValueError, match="must be positive"):
        TaggerTrainer(tagger, epochs=0)
    with pytest.raises(ValueError, match="no text"):
        TaggerTrainer(tagger).fit([("   ", [])])
    with pytest.raises(ValueError, match="precision"):
        Tagger(tiny_model, precision="int8")


def test_crf_likelihoods_sum_to_one_and_viterbi_finds_the_best_sequence():
    import itertools

    import torch

    from entitylink.model.tagger import crf_log_likelihood, viterbi

    torch.manual_seed(1)
    emissions, transitions, start, end = torch.randn(1, 4, 3), torch.randn(3, 3), torch.randn(3), torch.randn(3)
    sequences = torch.tensor(list(itertools.product(range(3), repeat=4)))
    mask = torch.ones(len(sequences), 4, dtype=torch.bool)
    ll = crf_log_likelihood(emissions.expand(len(sequences), -1, -1), sequences, mask, transitions, start, end)
    assert torch.logsumexp(ll, 0).item() == pytest.approx(0.0, abs=1e-5)  # a distribution over every sequence
    assert viterbi(emissions[0], transitions, start, end) == sequences[ll.argmax()].tolist()
    # a masked tail is not part of the sequence: a row of 2 real positions scores as the 2-position chain
    short = crf_log_likelihood(emissions[:, :2], sequences[:1, :2], mask[:1, :2], transitions, start, end)
    padded = crf_log_likelihood(emissions, sequences[:1], torch.tensor([[True, True, False, False]]),
                                transitions, start, end)
    assert padded.item() == pytest.approx(short.item(), abs=1e-5)


@pytest.mark.slow
def test_a_crf_tagger_with_dictionary_features_trains_saves_and_reopens(tiny_model, tmp_path):
    import re

    from transformers import AutoModelForTokenClassification

    def dictionary(text):  # what the Annotator passes: the dictionary's name matches
        return [m.span() for m in re.finditer(r"heart attack|asthma|seizures", text, re.IGNORECASE)]

    tagger = Tagger(tiny_model, max_length=32, precision="fp32", crf=True, dictionary_features=True)
    with pytest.raises(ValueError, match="needs a dictionary"):
        TaggerTrainer(tagger).fit(TRAIN)
    TaggerTrainer(tagger, epochs=30, learning_rate=3e-3, batch_size=5, show_progress=False).fit(
        TRAIN, dev=TRAIN, dictionary=dictionary)
    assert span_scores(tagger, TRAIN, dictionary)["f1"] >= 0.9
    assert tagger.head.dictionary.weight.abs().sum() > 0 and tagger.head.transitions.abs().sum() > 0
    found = tagger.spans("She had seizures and a heart attack.", dictionary)
    assert [s.text for s in found] == ["seizures", "heart attack"]
    tagger.settings = {"detect_threshold": 0.8, "sparse_weight": 0.0}
    tagger.dictionary = [("D1", "heart attack"), ("D2", "asthma")]
    tagger.save(tmp_path / "tagger")
    again = Tagger(tmp_path / "tagger", precision="fp32")  # the saved CRF and features, whatever the defaults
    assert again.crf and again.dictionary_features and again.settings == tagger.settings
    assert again.dictionary == [("D1", "heart attack"), ("D2", "asthma")]
    assert [(s.start, s.end) for s in again.spans("She had seizures and a heart attack.", dictionary)] == \
        [(s.start, s.end) for s in found]
    assert AutoModelForTokenClassification.from_pretrained(tmp_path / "tagger").config.id2label[1] == "B"
    (tmp_path / "tagger" / "entitylink_tagger_head.safetensors").unlink()
    with pytest.raises(Exception, match="entitylink_tagger_head.safetensors is missing"):
        Tagger(tmp_path / "tagger")
