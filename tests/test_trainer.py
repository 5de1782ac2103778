import dataclasses
import json
import random

import numpy as np
import pytest
import torch

from entitylink import DataFormatError, Encoder, EntityLinkError, Ontology
from entitylink.model.augment import mask_random_span, set_dropout
from entitylink.model.trainer import MirrorTrainer, info_nce, read_pairs


def test_info_nce_is_low_for_matching_views_and_high_for_random_ones():
    torch.manual_seed(0)
    z = torch.randn(8, 16)
    aligned = info_nce(z, z + 0.01 * torch.randn(8, 16), temperature=0.2)
    shuffled = info_nce(z, torch.randn(8, 16), temperature=0.2)
    assert aligned < 0.5 < 2.0 < shuffled


def test_info_nce_uses_2b_minus_2_negatives():
    # Orthogonal views: every logit is 0 except the positives' 1/τ, so the loss is exact.
    n, tau = 4, 0.5
    z = torch.eye(2 * n)[:n]
    loss = info_nce(z, z.clone(), temperature=tau)
    expected = -np.log(np.exp(1 / tau) / (np.exp(1 / tau) + (2 * n - 2)))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_groups_remove_false_negatives():
    z1 = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    z2 = z1.clone()
    plain = info_nce(z1, z2, 0.2)
    grouped = info_nce(z1, z2, 0.2, groups=torch.tensor([0, 0, 1]))
    assert grouped < plain


def test_span_masking():
    rng = random.Random(0)
    assert mask_random_span("short", 0, "[MASK]", rng) == "short"
    assert mask_random_span("abc", 5, "[MASK]", rng) == "abc"
    masked = mask_random_span("myocardial infarction", 5, "[MASK]", rng)
    assert "[MASK]" in masked and len(masked) == len("myocardial infarction") - 5 + len("[MASK]")


def test_views_differ_with_dropout_and_agree_without(tiny_encoder):
    batch = tiny_encoder.tokenize(["heart attack", "fits"])
    set_dropout(tiny_encoder.model, 0.1)
    tiny_encoder.model.train()
    torch.manual_seed(0)
    assert not torch.allclose(tiny_encoder.forward(batch), tiny_encoder.forward(batch))
    tiny_encoder.model.eval()
    with torch.no_grad():
        assert torch.equal(tiny_encoder.forward(batch), tiny_encoder.forward(batch))
    set_dropout(tiny_encoder.model, 0.0)
    tiny_encoder.model.train()
    assert torch.allclose(tiny_encoder.forward(batch), tiny_encoder.forward(batch), atol=1e-6)
    with pytest.raises(ValueError, match="dropout"):
        set_dropout(tiny_encoder.model, 1.5)


def trainer(encoder, **kw):
    defaults = dict(mode="mirror", keep_base=0.0, batch_size=16, epochs=3, learning_rate=1e-3, n_names=None,
                    show_progress=False, precision="fp32")  # keep_base 0: the tuned weights themselves
    defaults.update(kw)
    return MirrorTrainer(encoder, **defaults)


def test_mirror_loss_decreases_on_a_tiny_model(tiny_encoder, medic_example):
    t = trainer(tiny_encoder, epochs=6).fit(medic_example)
    losses = [h["loss"] for h in t.history]
    assert np.mean(losses[-4:]) < 0.75 * np.mean(losses[:4])


def synonym_margin(encoder, ontology):
    """Mean cosine of same-concept name pairs minus that of different-concept pairs."""
    frame = ontology.frame
    vectors = encoder.encode(frame["name"].str.lower().tolist())
    sims = vectors @ vectors.T
    same = frame["concept_id"].to_numpy()[:, None] == frame["concept_id"].to_numpy()[None, :]
    off_diagonal = ~np.eye(len(frame), dtype=bool)
    return sims[same & off_diagonal].mean() - sims[~same].mean()


def test_synonym_mode_brings_synonyms_together(tiny_encoder, medic_example):
    before = synonym_margin(tiny_encoder, medic_example)
    trainer(tiny_encoder, mode="synonym", epochs=10, learning_rate=1e-3).fit(medic_example)
    after = synonym_margin(tiny_encoder, medic_example)
    assert after > before + 0.1


def test_same_seed_same_model(tiny_model, medic_example):
    runs = []
    for _ in range(2):
        enc = Encoder(tiny_model, precision="fp32")
        trainer(enc, epochs=1, seed=3, mode="both", span_mask_chars=3).fit(medic_example)
        runs.append(enc.encode(["heart attack", "asthma"]))
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-6)


def test_keep_base_saves_the_weight_space_mix_of_start_and_tuned(tiny_model, medic_example, tmp_path):
    def weights(encoder):
        return {k: v.clone() for k, v in encoder.model.state_dict().items() if v.is_floating_point()}

    start = weights(Encoder(tiny_model, precision="fp32"))
    tuned = Encoder(tiny_model, precision="fp32")
    trainer(tuned, epochs=1, seed=3, keep_base=0.0).fit(medic_example)
    mixed = Encoder(tiny_model, precision="fp32")
    trainer(mixed, epochs=1, seed=3, keep_base=0.25, out=tmp_path / "mixed").fit(medic_example)
    tuned_w, mixed_w = weights(tuned), weights(mixed)
    assert any(not torch.equal(start[k], tuned_w[k]) for k in start)
    for name in start:
        torch.testing.assert_close(mixed_w[name], 0.25 * start[name] + 0.75 * tuned_w[name], atol=1e-6, rtol=1e-5)
    saved = json.loads((tmp_path / "mixed" / "entitylink_training.json").read_text())
    assert saved["keep_base"] == 0.25
    np.testing.assert_allclose(Encoder(tmp_path / "mixed", precision="fp32").encode(["asthma"]),
                               mixed.encode(["asthma"]), atol=1e-6)
    with pytest.raises(ValueError, match="keep_base"):
        MirrorTrainer(tiny_model, keep_base=1.0)


def test_saved_model_reloads_with_automodel_and_encoder(tiny_encoder, medic_example, tmp_path):
    from transformers import AutoModel

    out = tmp_path / "tuned"
    t = trainer(tiny_encoder, epochs=1, out=out).fit(medic_example)
    assert {"model.safetensors", "config.json", "entitylink_training.json", "loss.csv", "loss.png"} <= {
        p.name for p in out.iterdir()
    }
    record = json.loads((out / "entitylink_training.json").read_text())
    assert record["mode"] == "mirror" and record["precision"] == "fp32" and len(record["data_fingerprint"]) == 64
    assert record["steps"] == len(t.history) and "cpu" in record["machine"]
    texts = ["heart attack", "asthma", "NIDDM"]
    reloaded = Encoder(out, precision="fp32")
    np.testing.assert_allclose(reloaded.encode(texts), tiny_encoder.encode(texts), atol=1e-6)
    hf = AutoModel.from_pretrained(out)
    batch = tiny_encoder.tokenize(texts)
    with torch.no_grad():
        assert torch.allclose(hf(**batch).last_hidden_state[:, 0], tiny_encoder.forward(batch), atol=1e-5)
    assert (out / "loss.csv").read_text().splitlines()[0] == "step,epoch,loss,names_per_s"


def test_checkpoint_and_resume_reach_the_same_model(tiny_model, medic_example, tmp_path):
    full = Encoder(tiny_model, precision="fp32")
    trainer(full, epochs=2, seed=1).fit(medic_example)

    first = Encoder(tiny_model, precision="fp32")
    t1 = trainer(first, epochs=2, seed=1, checkpoint_every=5, out=tmp_path / "run")
    t1.fit(medic_example)
    n_steps = len(t1.history)
    # pretend the run died after step 5: keep only that checkpoint
    ckpt = tmp_path / "run" / "checkpoints"
    for folder in ckpt.glob("step-*"):
        if folder.name != "step-00000005":
            import shutil

            shutil.rmtree(folder)
    (ckpt / "latest").write_text("step-00000005\n")
    resumed = Encoder(tiny_model, precision="fp32")
    t2 = trainer(resumed, epochs=2, seed=1, checkpoint_every=5, out=tmp_path / "run")
    t2.fit(medic_example, resume=True)
    assert len(t2.history) == n_steps
    texts = ["heart attack", "asthma"]
    np.testing.assert_allclose(resumed.encode(texts), full.encode(texts), atol=1e-5)
    assert [h["loss"] for h in t2.history] == pytest.approx([h["loss"] for h in t1.history], abs=1e-5)


def test_pairs_file(tmp_path, tiny_encoder, medic_example):
    good = tmp_path / "pairs.txt"
    good.write_text("heart attack||myocardial infarction\n# comment\nfits||seizures\n")
    assert read_pairs(good) == [("heart attack", "myocardial infarction"), ("fits", "seizures")]
    t = trainer(tiny_encoder, epochs=1, mode="synonym").fit(medic_example, pairs=good)
    synonym_pairs = sum(len(g) for g in t._synonym_groups(medic_example))
    assert len(t.history) == int(np.ceil((synonym_pairs + 2) / 16))  # the file's two pairs were trained on
    bad = tmp_path / "bad_pairs.txt"
    bad.write_text("heart attack||myocardial infarction\nfits seizures\n")
    with pytest.raises(DataFormatError, match=r"bad_pairs.txt:2: expected 'name\|\|name'"):
        read_pairs(bad)


def test_hard_negative_batches_gather_neighbours(tiny_encoder, medic_example):
    t = trainer(tiny_encoder, epochs=1, hard_negatives=True, batch_size=8)
    mirror = t._mirror_texts(medic_example)
    pairs = t._epoch_pairs(0, mirror, [], [])
    vectors = dict(zip([p[0] for p in pairs], tiny_encoder.encode([p[0] for p in pairs])))

    def within_batch_similarity(batches):
        sims = []
        for batch in batches:
            v = np.stack([vectors[p[0]] for p in batch])
            sims.append(float((v @ v.T)[np.triu_indices(len(v), 1)].mean()))
        return np.mean(sims)

    hard = t._batches(pairs)
    shuffled = [pairs[i : i + 8] for i in range(0, len(pairs), 8)]
    assert sorted(p[0] for b in hard for p in b) == sorted(p[0] for p in pairs)  # a reordering, nothing lost
    assert within_batch_similarity(hard) > within_batch_similarity(shuffled) + 0.02
    seed = hard[0][0][0]
    others = [p[0] for p in pairs if p[0] != seed]
    nearest = max(others, key=lambda text: float(vectors[text] @ vectors[seed]))
    assert nearest in {p[0] for p in hard[0]}  # the seed's nearest neighbour is its batch-mate
    t.fit(medic_example)
    assert len(t.history) == int(np.ceil(len(mirror) / 8))


def test_bad_settings(tiny_encoder):
    with pytest.raises(ValueError, match="mode must be one of"):
        MirrorTrainer(tiny_encoder, mode="simcse")
    with pytest.raises(ValueError, match="batch_size"):
        MirrorTrainer(tiny_encoder, batch_size=1)
    with pytest.raises(ValueError, match="needs an output directory"):
        MirrorTrainer(tiny_encoder, checkpoint_every=10)
    with pytest.raises(ValueError, match="needs an Ontology"):
        MirrorTrainer(tiny_encoder, mode="synonym", show_progress=False).fit(["a", "b"])
    plain = MirrorTrainer(tiny_encoder, show_progress=False)
    assert plain.fit(Ontology.from_pairs([("A", "fever"), ("B", "cough"), ("C", "rash")])).history


def test_drophead_makes_views_differ_only_while_training(tiny_encoder):
    from entitylink.model.augment import DropHead

    batch = tiny_encoder.tokenize(["heart attack", "fits"])
    set_dropout(tiny_encoder.model, 0.0)
    tiny_encoder.model.train()
    torch.manual_seed(0)
    with DropHead(tiny_encoder.model, 0.5) as drop:
        assert len(drop.handles) == 2  # one per layer of the tiny BERT
        assert not torch.allclose(tiny_encoder.forward(batch), tiny_encoder.forward(batch))
        tiny_encoder.model.eval()
        with torch.no_grad():
            assert torch.equal(tiny_encoder.forward(batch), tiny_encoder.forward(batch))
    tiny_encoder.model.train()
    assert torch.allclose(tiny_encoder.forward(batch), tiny_encoder.forward(batch), atol=1e-6)
    with pytest.raises(ValueError, match="drophead"):
        DropHead(tiny_encoder.model, 1.0)


def test_drophead_and_span_masking_make_the_views_differ(tiny_model, medic_example):
    """With no dropout, a name and itself are identical views (a low loss); drophead or masking part them."""
    def first_loss(**augment):
        encoder = Encoder(tiny_model, precision="fp32")
        t = trainer(encoder, epochs=1, dropout=0.0, learning_rate=0.0, **augment).fit(medic_example)
        return t.history[0]["loss"], t

    identical, _ = first_loss()
    dropped, t = first_loss(drophead=0.5)
    masked, _ = first_loss(span_mask_chars=3)
    assert dropped > identical + 0.01 and masked > identical + 0.01
    assert t.training_record()["drophead"] == 0.5


def test_index_of_a_tuned_model_reopens_with_that_model(tiny_model, medic_example, tmp_path):
    from entitylink import DictionaryIndex, IndexMismatchError, Linker

    encoder = Encoder(tiny_model, precision="fp32")
    t = trainer(encoder, epochs=1).fit(medic_example)
    assert encoder.unsaved and encoder.model_id == str(tiny_model)
    unsaved = DictionaryIndex.build(medic_example, encoder)
    assert unsaved.meta["model_saved"] is False
    unsaved.save(tmp_path / "lost")
    with pytest.raises(IndexMismatchError, match="never saved"):  # the weights are nowhere on disk: say so
        Linker.load(tmp_path / "lost", precision="fp32")
    t.save(tmp_path / "tuned")
    assert not encoder.unsaved
    assert encoder.model_id == str((tmp_path / "tuned").resolve())
    DictionaryIndex.build(medic_example, encoder).save(tmp_path / "idx")
    linker = Linker.load(tmp_path / "idx", precision="fp32")  # loads the tuned model, fingerprint matches
    assert linker.link("NIDDM")[0].concept_id == "D003924"
    with pytest.raises(IndexMismatchError):
        DictionaryIndex.load(tmp_path / "idx", encoder=Encoder(tiny_model, precision="fp32"))


def test_anchor_slices_average_to_the_full_loss():
    torch.manual_seed(1)
    z1, z2 = torch.randn(8, 16), torch.randn(8, 16)
    groups = torch.tensor([0, 1, 1, 2, 3, 4, 4, 5])
    full = info_nce(z1, z2, 0.2, groups)
    halves = [info_nce(z1, z2, 0.2, groups, anchors=slice(0, 4)), info_nce(z1, z2, 0.2, groups, anchors=slice(4, 8))]
    assert float(sum(halves) / 2) == pytest.approx(float(full), rel=1e-6)


def test_the_trainer_leaves_the_encoder_settings_as_given(tiny_model, medic_example):
    """Dropout is the trainer's only while it trains: before fit and after it, the model has its own."""
    encoder = Encoder(tiny_model, precision="fp32")
    before = sorted({m.p for m in encoder.model.modules() if isinstance(m, torch.nn.Dropout)})
    config_before = encoder.model.config.hidden_dropout_prob
    t = trainer(encoder, epochs=1, dropout=0.3)
    assert sorted({m.p for m in encoder.model.modules() if isinstance(m, torch.nn.Dropout)}) == before
    seen = []
    real_forward = encoder.forward

    def spy(batch, model=None):
        seen.append(sorted({m.p for m in encoder.model.modules() if isinstance(m, torch.nn.Dropout)}))
        return real_forward(batch, model)

    encoder.forward = spy
    t.fit(medic_example)
    assert seen and all(ps == [0.3] for ps in seen)  # the views differ by the trainer's dropout
    assert sorted({m.p for m in encoder.model.modules() if isinstance(m, torch.nn.Dropout)}) == before
    assert encoder.model.config.hidden_dropout_prob == config_before
    assert not encoder.model.training


def test_trainer_defaults_are_read_from_the_config():
    """One home: change a TrainingConfig default and the trainer's signature follows (no copy to keep in step)."""
    import inspect

    from entitylink.model.defaults import TrainingConfig

    signature = inspect.signature(MirrorTrainer.__init__).parameters
    source = inspect.getsource(MirrorTrainer.__init__)
    for field in dataclasses.fields(TrainingConfig):
        assert f"{field.name}: " in source and f"= _DEFAULT.{field.name}" in source, field.name
        assert signature[field.name].default == getattr(TrainingConfig(), field.name)


@pytest.mark.skipif(not __import__("entitylink.model.hardware", fromlist=["bf16_is_fast"]).bf16_is_fast(
    torch.device("cpu")), reason="bf16 is not fast on this CPU (no AMX / AVX512-BF16, or measured slower than fp32)")
def test_bf16_training_where_the_cpu_runs_it(tiny_model, medic_example):
    """precision='auto' trains under bf16 autocast on such a CPU; the weights stay fp32 and the loss falls."""
    encoder = Encoder(tiny_model)
    assert encoder.precision == "bf16"
    seen = []
    real_forward = encoder.forward

    def spy(batch, model=None):
        seen.append((torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu")))
        return real_forward(batch, model)

    encoder.forward = spy
    t = trainer(encoder, epochs=3, precision="auto").fit(medic_example)
    assert t.precision == "bf16" and seen and all(s == (True, torch.bfloat16) for s in seen)
    assert all(p.dtype == torch.float32 for p in encoder.model.parameters())
    losses = [h["loss"] for h in t.history]
    assert np.isfinite(losses).all() and np.mean(losses[-3:]) < np.mean(losses[:3])


def test_the_default_recipe_is_mirror_keeping_most_of_the_start_and_both_adds_synonym_pairs(tiny_encoder,
                                                                                            medic_example):
    t = MirrorTrainer(tiny_encoder, batch_size=16, n_names=None, show_progress=False, precision="fp32")
    assert (t.config.mode, t.config.epochs, t.config.keep_base) == ("mirror", 1, 0.75)
    t.fit(medic_example)
    assert len(t.history) == int(np.ceil(len(t._mirror_texts(medic_example)) / 16))  # Mirror-BERT pairs only
    both = MirrorTrainer(tiny_encoder, mode="both", batch_size=16, n_names=None, show_progress=False, precision="fp32")
    both.fit(medic_example)
    pairs = len(both._mirror_texts(medic_example)) + sum(len(g) for g in both._synonym_groups(medic_example))
    assert len(both.history) == int(np.ceil(pairs / 16)) > len(t.history)  # and synonym pairs
    names = MirrorTrainer(tiny_encoder, mode="both", batch_size=16, n_names=None, show_progress=False,
                          precision="fp32")
    names.fit(["heart attack", "fits", "cancer", "diabetes"])  # no concepts: Mirror-BERT alone
    assert len(names.history) == 1


def test_marginal_nll_is_minus_the_log_of_the_gold_mass():
    from entitylink.model.candidates import marginal_nll

    logits = torch.tensor([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    positive = torch.tensor([[True, True, False], [False, True, False]])
    expected = (-np.log(2 / 3) - np.log(1 / (np.exp(2) + 2))) / 2
    assert float(marginal_nll(logits, positive)) == pytest.approx(expected, rel=1e-6)


def test_candidate_training_ranks_the_gold_concept_higher(tiny_model, medic_example):
    from entitylink.model.candidates import CandidateTrainer

    mentions = [("heart attacks", "D009203"), ("attack of the heart", "D009203"), ("failure of the heart", "D006333"),
                ("high pressure of blood", "D006973"), ("type two diabetes", "D003924"), ("lung cancers", "D008175"),
                ("cancer of the breast", "D001943"), ("asthmatic bronchi", "D001249"), ("unknown", "D999999")]
    known = mentions[:-1]
    frame = medic_example.frame
    gold = np.array([[g in str(c).split("|") for c in frame["concept_id"]] for _, g in known])

    def accuracy(encoder):
        """Share of the mentions whose nearest dictionary name is one of the gold concept's."""
        sims = encoder.encode([t for t, _ in known]) @ encoder.encode(frame["name"].str.lower().tolist()).T
        return float(gold[np.arange(len(known)), sims.argmax(1)].mean())

    encoder = Encoder(tiny_model, precision="fp32")
    before = accuracy(encoder)
    trainer = CandidateTrainer(encoder, top_k=4, epochs=20, batch_size=4, learning_rate=1e-3, temperature=0.05,
                               show_progress=False).fit(medic_example, mentions)
    assert accuracy(encoder) >= before + 0.25
    assert len(trainer.history) == 20 * 2 and encoder.unsaved  # the mention of no known concept is left out
    first, last = (np.mean([h["loss"] for h in trainer.history if h["epoch"] == e]) for e in (0, 19))
    assert last < first
    first_losses = []
    for batch_negatives in (True, False):  # its own top-k alone: fewer negatives, a smaller loss at the start
        plain = Encoder(tiny_model, precision="fp32")
        run = CandidateTrainer(plain, top_k=4, epochs=1, batch_size=4, batch_negatives=batch_negatives,
                               show_progress=False).fit(medic_example, mentions)
        first_losses.append(run.history[0]["loss"])
    assert first_losses[1] < first_losses[0]
    with pytest.raises(ValueError, match="top_k"):
        CandidateTrainer(encoder, top_k=1)
    for bad, match in (({"epochs": 0}, "epochs"), ({"temperature": 0.0}, "temperature"),
                       ({"keep_base": 1.0}, "keep_base"), ({"precision": "int8"}, "for encoding only")):
        with pytest.raises(ValueError, match=match):  # the checks MirrorTrainer makes too
            CandidateTrainer(encoder, **bad)
    with pytest.raises(EntityLinkError, match="no training mention"):
        CandidateTrainer(encoder, show_progress=False).fit(medic_example, [("x", "D999999")])
