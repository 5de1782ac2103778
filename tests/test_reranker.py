"""The cross-encoder reranker: listwise training moves the gold up, NIL is learnt, the Linker uses it."""

import json

import numpy as np
import pytest
import torch

from entitylink import DictionaryIndex, Linker, LinkingPolicy, Ontology
from entitylink.link.rerank import lists_from_mentions, lists_from_synonyms
from entitylink.model.cross_encoder import CrossEncoder
from entitylink.model.reranker import CandidateList, RerankerTrainer, rerank_lists


def fast_trainer(cross_encoder, **kw):
    settings = dict(epochs=40, lists_per_batch=8, learning_rate=2e-3, retriever_weight=0.0, max_candidates=8,
                    warmup_share=0.05, show_progress=False)
    settings.update(kw)
    return RerankerTrainer(cross_encoder, **settings)


@pytest.fixture(scope="module")
def linker(tiny_model_session):
    from entitylink import Encoder

    from .conftest import ONTOLOGIES

    medic = Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}")
    return Linker(DictionaryIndex.build(medic, Encoder(tiny_model_session, precision="fp32")))


@pytest.fixture(scope="module")
def trained(linker, tiny_model_session):
    """A reranker trained once on the toy lists (from the ontology alone), and those lists."""
    lists = [item for item in lists_from_synonyms(linker, k=8, seed=0) if item.gold < len(item.names)]
    return fast_trainer(CrossEncoder(tiny_model_session, precision="fp32")).fit(lists), lists


def test_synonym_lists_hide_the_query_own_entry(linker):
    lists = lists_from_synonyms(linker, k=8, seed=0)
    assert len(lists) > 20
    for item in lists:
        assert item.mention not in [linker.index.normalizer(n) for n in item.names]  # never its own entry
        assert len(item.names) == len(item.retriever_scores) == len(item.concept_ids) <= 8
        assert item.gold is not None and 0 <= item.gold <= len(item.names)


def test_training_moves_the_gold_up_on_a_toy_set(trained):
    trainer, lists = trained
    before = np.mean([item.gold == 0 for item in lists])  # the retriever's top 1
    after = trainer.accuracy(lists)
    assert after > before + 0.25, (before, after)
    losses = [h["loss"] for h in trainer.history]
    assert np.mean(losses[-5:]) < np.mean(losses[:5])


def test_none_of_these_is_learnt(linker, tiny_model):
    lists = lists_from_synonyms(linker, k=8, seed=0)
    nil = [CandidateList(item.mention, item.names, item.retriever_scores, len(item.names)) for item in lists[:10]]
    trainer = fast_trainer(CrossEncoder(tiny_model, precision="fp32"), epochs=25).fit(nil)
    probs = rerank_lists(trainer.cross_encoder, nil, 8)
    assert np.mean([int(np.argmax(p)) == len(p) - 1 for p in probs]) > 0.8  # "none of these" wins


def test_an_untrained_reranker_keeps_the_retriever_order_and_the_regulariser_counts_departures(linker, tiny_model):
    lists = [item for item in lists_from_synonyms(linker, k=8, seed=0)[:16] if len(item.names) == 8]
    fresh = CrossEncoder(tiny_model, precision="fp32")
    fresh.retriever_temperature = 0.05
    for probs in rerank_lists(fresh, lists, 8):
        assert list(np.argsort(-probs[:-1], kind="stable")) == list(range(8))  # the retriever's order
    free = fast_trainer(CrossEncoder(tiny_model, precision="fp32"), epochs=1)
    tied = fast_trainer(CrossEncoder(tiny_model, precision="fp32"), epochs=1, retriever_weight=5.0)
    with torch.no_grad():
        assert float(tied.loss(lists)) == pytest.approx(float(free.loss(lists)))  # no departure yet: KL = 0
        for trainer in (free, tied):
            head = [m for m in trainer.cross_encoder.model.modules() if isinstance(m, torch.nn.Linear)][-1]
            torch.manual_seed(0)
            head.weight.normal_(0, 1.0)
        assert float(tied.loss(lists)) > float(free.loss(lists)) > 0  # the KL term counts departures


def test_the_linker_reranks_saves_and_reloads_the_reranker(linker, trained, tmp_path):
    trainer, lists = trained
    trainer.save(tmp_path / "reranker")
    record = json.loads((tmp_path / "reranker" / "entitylink_reranker_training.json").read_text())
    assert record["steps"] == len(trainer.history) and record["max_candidates"] == 8
    from transformers import AutoModelForSequenceClassification

    assert AutoModelForSequenceClassification.from_pretrained(tmp_path / "reranker").config.num_labels == 1
    reranked = Linker(linker.index, LinkingPolicy(k=3, rerank_k=8),
                      reranker=CrossEncoder(tmp_path / "reranker", precision="fp32"))
    texts = [item.mention for item in lists[:12]]
    results = reranked.link(texts)
    for cands in results:
        assert len(cands) == 3 and all(0.0 <= c.score <= 1.0 for c in cands)
        assert sum(c.score for c in cands) <= 1.0 + 1e-5  # probabilities; the rest is "none of these"
        assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
    plain = reranked.link(texts, rerank=False)
    assert plain == linker.link(texts, k=3)
    reranked.save(tmp_path / "index")
    assert LinkingPolicy.read(tmp_path / "index").reranker == "reranker"
    again = Linker.load(tmp_path / "index", precision="fp32")
    assert again.reranker is not None
    assert [[c.concept_id for c in r] for r in again.link(texts)] == [[c.concept_id for c in r] for r in results]


def test_lists_from_annotated_mentions_find_the_gold(linker):
    mentions, gold = ["heart attack", "hypertensoin", "zzzz"], ["D009203", "D006973", "D000001"]
    lists = lists_from_mentions(linker, mentions, gold, k=5)
    assert [item.mention for item in lists] == ["heart attack", "hypertensoin", "zzzz"]
    assert lists[0].gold == [i for i, c in enumerate(lists[0].concept_ids) if c == "D009203"][0]
    assert lists[2].gold == len(lists[2].names)  # an id the dictionary lacks: "none of these"


def test_hidden_entries_are_never_candidates(linker):
    index = linker.index
    own = index.texts.index("heart attack")
    free = lists_from_mentions(linker, ["heart attack"], ["D009203"], k=5)[0]
    assert free.names[0] == index.names[own]  # the exact name comes first when it may
    held = lists_from_mentions(linker, ["heart attack"], ["D009203"], k=5, hidden=[{own}])[0]
    assert index.names[own] not in held.names and len(held.names) == 5
    others = {i for i, cid in enumerate(index.concept_ids) if cid == "D009203"}
    alone = lists_from_mentions(linker, ["heart attack"], ["D009203"], k=5, hidden=[others])[0]
    assert "D009203" not in alone.concept_ids and alone.gold == len(alone.names)


def test_a_policy_naming_a_reranker_needs_one(linker):
    with pytest.raises(ValueError, match="names the reranker"):
        Linker(linker.index, LinkingPolicy(reranker="somewhere"))
    assert Ontology  # the module's imports are used


def test_leave_one_document_out_mining_hides_only_names_of_the_mention_own_document(tiny_model_session):
    from types import SimpleNamespace

    from benchmarks.reranker import training_lists
    from entitylink import Encoder, LinkingPolicy
    from entitylink.text.preprocess import Query

    from .conftest import ONTOLOGIES

    medic = Ontology.load(f"medic:{ONTOLOGIES / 'example_medic.txt'}")
    train = [Query("A", "heart attacks", ["heart attacks"], "X2"),  # also in B: stays findable
             Query("A", "cardiac infarctus", ["cardiac infarctus"], "X1"),  # only A's: hidden from A
             Query("B", "heart attacks", ["heart attacks"], "X2"),
             Query("B", "asthma", ["asthma"], "D001249")]  # a MEDIC name: never hidden
    bench = SimpleNamespace(medic=medic, queries={"train": train},
                            mention_names=lambda split: Ontology.from_pairs([(q.gold, q.parts[0]) for q in train]))
    encoder = Encoder(tiny_model_session, precision="fp32")
    lists = training_lists(bench, encoder, 0.5, LinkingPolicy(), k=200, mining="leave-one-document-out")
    ids = [set(item.concept_ids) for item in lists]  # k beyond the concept count: every findable concept
    assert "X1" not in ids[0] and "X1" not in ids[1]  # A's own name
    assert "X1" in ids[2] and "X1" in ids[3]  # B may find it
    assert all("X2" in i and "D001249" in i for i in ids)
    assert lists[1].gold == len(lists[1].names) and lists[2].gold < len(lists[2].names)
    alone = training_lists(bench, encoder, 0.5, LinkingPolicy(), k=200, mining="medic")
    assert not any({"X1", "X2"} & set(item.concept_ids) for item in alone)


def test_the_l2_rank_regulariser_counts_departures_from_the_retriever(linker, tiny_model):
    lists = [item for item in lists_from_synonyms(linker, k=8, seed=0)[:16] if len(item.names) == 8]
    free = fast_trainer(CrossEncoder(tiny_model, precision="fp32"), epochs=1)
    tied = fast_trainer(CrossEncoder(tiny_model, precision="fp32"), epochs=1, retriever_weight=5.0, regulariser="l2")
    with torch.no_grad():
        assert float(tied.loss(lists)) == pytest.approx(float(free.loss(lists)))  # zero residual: no penalty
        for trainer in (free, tied):
            head = [m for m in trainer.cross_encoder.model.modules() if isinstance(m, torch.nn.Linear)][-1]
            torch.manual_seed(0)
            head.weight.normal_(0, 1.0)
        assert float(tied.loss(lists)) > float(free.loss(lists)) > 0
    with pytest.raises(ValueError, match="regulariser"):
        fast_trainer(CrossEncoder(tiny_model, precision="fp32"), regulariser="l1")


def test_candidates_read_their_synonyms_but_never_a_hidden_entry(linker):
    index = linker.index
    by_concept: dict[str, list[int]] = {}
    for position, cid in enumerate(index.concept_ids):
        by_concept.setdefault(cid, []).append(position)
    cid, positions = next((c, p) for c, p in by_concept.items() if len(p) >= 3)
    from entitylink.link.linker import Candidate

    first = Candidate(cid, index.names[positions[0]], 1.0)
    text = linker.candidate_texts([first], synonyms=5)[0]
    assert text.split(" ; ")[0] == first.name and len(text.split(" ; ")) == len(positions)
    hidden = linker.candidate_texts([first], synonyms=5, hidden={positions[1]})[0]
    assert index.names[positions[1]] not in hidden.split(" ; ")[1:]
    assert linker.candidate_texts([first], synonyms=0) == [first.name]
    for item in lists_from_synonyms(linker, k=8, seed=0, synonyms=3):  # the query's own name is no synonym
        for name in item.names:
            assert item.mention not in [index.normalizer(part) for part in name.split(" ; ")]


@pytest.mark.slow
def test_a_reranker_that_reads_context_decides_an_ambiguous_mention_by_its_sentence(tiny_model, tmp_path):
    from entitylink import Encoder

    names = tmp_path / "ms.tsv"
    names.write_text("C1\tmultiple sclerosis\nC2\tmitral stenosis\n")
    retriever = Linker(DictionaryIndex.build(Ontology.load(f"tsv:{names}"), Encoder(tiny_model, precision="fp32")),
                       LinkingPolicy(rerank_k=2))
    contexts = {"C1": [("brain lesions and demyelination with", "relapses"), ("optic neuritis then", "plaques")],
                "C2": [("heart murmur and valve", "of the heart"), ("rheumatic fever with", "on echo")]}
    windows = [w for ws in contexts.values() for w in ws]
    gold = [cid for cid, ws in contexts.items() for _ in ws]
    lists = lists_from_mentions(retriever, ["ms"] * 4, gold, k=2, windows=windows) * 4
    assert all(item.context in windows for item in lists)
    reader = CrossEncoder(tiny_model, context_chars=64, precision="fp32")
    assert reader.mention_text("ms", ("left text", "right text")) == "left text [START] ms [END] right text"
    assert reader.tokenizer.convert_tokens_to_ids("[START]") != reader.tokenizer.unk_token_id
    blind = fast_trainer(CrossEncoder(tiny_model, precision="fp32"), epochs=30, max_candidates=2).fit(lists)
    seeing = fast_trainer(reader, epochs=60, max_candidates=2).fit(lists)
    assert blind.accuracy(lists) <= 0.5 < 0.9 <= seeing.accuracy(lists)  # the same mention, told apart by context
    reader.save(tmp_path / "reranker")
    again = CrossEncoder(tmp_path / "reranker", precision="fp32")
    assert again.context_chars == 64 and again.mention_text("ms", ("a", "b")) == "a [START] ms [END] b"
    linker = Linker(retriever.index, retriever.policy, reranker=again)
    found = linker.link(["ms", "ms"], windows=[contexts["C1"][0], contexts["C2"][0]])
    assert [f[0].concept_id for f in found] == ["C1", "C2"]
    assert len(linker.link(["ms"])) == 1  # without windows it still links
