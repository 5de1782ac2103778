"""Bad input gives one clear error (file, line, what was expected) or a documented warning; interrupted
saves leave the previous artefact intact; properties of normalisation and evaluation hold for any input."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from entitylink import DataFormatError, DictionaryIndex, Linker, Normalizer, Ontology
from entitylink.link.evaluation import first_hit_rank, is_match, query_hit_rank
from entitylink.model.trainer import read_pairs
from entitylink.text.pubtator import read_pubtator

BAD = Path(__file__).parent / "data" / "bad"


def test_bom_and_crlf_load_cleanly():
    onto = Ontology.load(f"medic:{BAD / 'bom_crlf_medic.txt'}")
    assert onto.names == ["Flu", "Grippe", "Cold"] and onto.concept_ids == ["D1", "D2"]


def test_shared_names_and_names_that_normalise_to_nothing(tiny_encoder, caplog):
    onto = Ontology.load(f"tsv:{BAD / 'conflicting_and_empty.tsv'}")
    assert onto.concepts_of("Fever") == ["C1", "C2"]
    index = DictionaryIndex.build(onto, tiny_encoder)
    assert "2 name(s) normalise to nothing" in caplog.text
    assert sorted(index.concept_ids) == ["C1", "C1|C2"]


def test_bad_pubtator_and_pairs_files():
    with pytest.raises(DataFormatError, match=r"bad_offsets_pubtator.txt:3: offsets 3-9 select 'er in '"):
        read_pubtator(BAD / "bad_offsets_pubtator.txt")
    with pytest.raises(DataFormatError, match=r"bad_pairs.txt:2: expected 'name\|\|name'"):
        read_pairs(BAD / "bad_pairs.txt")


def test_odd_mentions(tiny_encoder, medic_example):
    linker = Linker(DictionaryIndex.build(medic_example, tiny_encoder))
    results = linker.link(["", "   ", "🙂🙂", "x" * 10_000, "heart attack"])
    assert results[0] == [] and results[1] == [] and results[2] == []  # emoji normalise to nothing
    assert len(results[3]) == 5 and results[4]
    assert linker.link([]) == []


@pytest.mark.slow
def test_killed_save_leaves_the_previous_index_intact(medic_example, tiny_encoder, tmp_path):
    target = tmp_path / "idx"
    DictionaryIndex.build(medic_example, tiny_encoder).save(target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    script = textwrap.dedent(f"""
        import time, faiss
        from entitylink import DictionaryIndex, Ontology
        index = DictionaryIndex.load({str(target)!r}, precision="fp32")
        index.add(Ontology.from_pairs([("NEW", "brand new disease")]))
        real = faiss.write_index
        def slow(faiss_index, filename):
            real(faiss_index, filename)
            print("writing", flush=True)
            time.sleep(120)
        faiss.write_index = slow
        index.save({str(target)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    reopened = DictionaryIndex.load(target, encoder=tiny_encoder)
    assert "NEW" not in reopened.concept_ids


# ------------------------------------------------------------------ properties
@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalisation_is_idempotent_and_tidy(text):
    norm = Normalizer()
    once = norm(text)
    assert norm(once) == once
    assert once == once.strip() and "  " not in once
    assert once.casefold() == once


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r"[A-Z][0-9]{1,3}", fullmatch=True), min_size=1, max_size=4),
       st.lists(st.from_regex(r"[A-Z][0-9]{1,3}", fullmatch=True), min_size=1, max_size=4))
def test_composite_id_rules(predicted_ids, gold_ids):
    predicted, gold = "|".join(predicted_ids), "|".join(gold_ids)
    assert is_match(predicted, gold) == is_match(gold, predicted) == bool(set(predicted_ids) & set(gold_ids))
    assert is_match(predicted, "+".join(gold_ids)) == is_match(predicted, gold)
    ranking = ["NOT-AN-ID", predicted]  # the strategy never generates this id
    assert first_hit_rank(ranking, gold) == (2 if set(predicted_ids) & set(gold_ids) else None)
    assert query_hit_rank([ranking, ranking], gold) == first_hit_rank(ranking, gold)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.from_regex(r"[A-Z]{1,3}:[0-9]{1,5}", fullmatch=True),
                          st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs", "Zl", "Zp"]),
                                  min_size=1, max_size=30).filter(lambda s: s.strip() and "||" not in s)),
                min_size=1, max_size=20))
def test_tsv_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("tsv") / "names.tsv"
    clean = [(cid, name.replace("\t", " ").strip()) for cid, name in rows]
    clean = [(c, n) for c, n in clean if n and not n.startswith("#")]
    if not clean:
        return
    path.write_text("concept_id\tname\n" + "".join(f"{c}\t{n}\n" for c, n in clean), encoding="utf-8")
    onto = Ontology.load(f"tsv:{path}")
    assert set(zip(onto.frame["concept_id"], onto.frame["name"])) == set(clean)


def test_meta_json_that_disagrees_with_the_files_is_rejected(medic_example, tiny_encoder, tmp_path):
    import json

    DictionaryIndex.build(medic_example, tiny_encoder).save(tmp_path / "idx")
    meta_path = tmp_path / "idx" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["count"] += 1
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(DataFormatError, match="disagree on the count"):
        DictionaryIndex.load(tmp_path / "idx", encoder=tiny_encoder)
    meta_path.write_text("{not json")
    with pytest.raises(DataFormatError, match="meta.json:1: invalid JSON"):
        DictionaryIndex.load(tmp_path / "idx", encoder=tiny_encoder)


@pytest.mark.slow
def test_training_killed_mid_run_resumes_to_the_same_loss_curve(tiny_model, tmp_path):
    import csv
    import time

    from .conftest import ONTOLOGIES

    def command(out, *extra):
        return [sys.executable, "-m", "entitylink", "-q", "train", "--ontology",
                f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model", str(tiny_model), "--precision", "fp32",
                "--batch-size", "8", "--epochs", "3", "--learning-rate", "1e-3", "--out", str(out), *extra]

    def losses(out):
        with open(out / "loss.csv") as handle:
            return [float(row["loss"]) for row in csv.DictReader(handle)]

    subprocess.run(command(tmp_path / "full"), check=True, capture_output=True)
    expected = losses(tmp_path / "full")

    run = tmp_path / "killed"
    proc = subprocess.Popen(command(run, "--checkpoint-every", "5"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (run / "checkpoints" / "step-00000010").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.kill()
    assert proc.wait() != 0, "training finished before it could be killed"
    assert (run / "checkpoints" / "latest").exists() and not (run / "loss.csv").exists()
    subprocess.run(command(run, "--checkpoint-every", "5", "--resume"), check=True, capture_output=True)
    assert losses(run) == pytest.approx(expected, abs=1e-4)


def test_duplicate_ids_are_merged_with_a_warning(caplog):
    obo = Ontology.load(f"obo:{BAD / 'duplicate_ids.obo'}")
    assert obo.names_of("EX:1") == ["Fever", "Pyrexia"]
    assert "1 [Term] id(s) defined more than once, their names merged: EX:1 (lines 3 and 7)" in caplog.text
    medic = Ontology.load(f"medic:{BAD / 'duplicate_ids_medic.txt'}")
    assert medic.names_of("D1") == ["Fever", "Pyrexia", "High temperature"]
    assert "1 concept(s) listed on more than one line, their names merged: D1 (lines 1 and 3)" in caplog.text


KILL_SCRIPT = """
import os, shutil, sys
from pathlib import Path
from entitylink import _io

target, mode, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "two-renames":
    _io._exchange = lambda a, b: False
replaced, real_replace, real_exchange = [], os.replace, _io._exchange
real_fsync_tree, real_rmtree = _io._fsync_tree, shutil.rmtree

def replace(a, b):
    real_replace(a, b)
    replaced.append(b)
    if point == f"after-rename-{len(replaced)}":
        os._exit(9)

def exchange(a, b):
    done = real_exchange(a, b)
    if done and point == "after-swap":
        os._exit(9)
    return done

def fsync_tree(root):
    real_fsync_tree(root)
    if point == "before-swap":
        os._exit(9)

os.replace, _io._exchange, _io._fsync_tree = replace, exchange, fsync_tree
with _io.atomic_directory(target) as tmp:
    (tmp / "version").write_text("new")
    if point == "while-writing":
        os._exit(9)
    (tmp / "payload").write_text("new" * 1000)
"""


def _exchange_works(tmp_path):
    from entitylink import _io

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    return _io._exchange(tmp_path / "a", tmp_path / "b")


@pytest.mark.slow
@pytest.mark.parametrize("mode, point, survivor", [
    ("swap", "while-writing", "old"),
    ("swap", "before-swap", "old"),
    ("swap", "after-swap", "new"),
    ("two-renames", "while-writing", "old"),
    ("two-renames", "before-swap", "old"),
    ("two-renames", "after-rename-1", "old"),  # the old version is aside, the new not yet in place
    ("two-renames", "after-rename-2", "new"),  # the new one is in place, the old not yet removed
])
def test_a_kill_at_any_point_of_a_replace_leaves_a_whole_directory(tmp_path, mode, point, survivor):
    """Killed at each step of atomic_directory, the target is the old or the new version, whole."""
    from entitylink._io import recover_directory

    if mode == "swap" and not _exchange_works(tmp_path):
        pytest.skip("this file system cannot swap two directories in one step")
    target = tmp_path / "artefact"
    target.mkdir()
    (target / "version").write_text("old")
    (target / "payload").write_text("old" * 1000)
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(target), mode, point], capture_output=True, text=True)
    assert done.returncode == 9, done.stderr
    recover_directory(target)
    assert (target / "version").read_text() == survivor
    assert (target / "payload").read_text() == survivor * 1000
    recover_directory(target)  # idempotent
    from entitylink._io import atomic_directory

    with atomic_directory(target) as tmp:  # and the next replace works over whatever was left
        (tmp / "version").write_text("next")
    assert (target / "version").read_text() == "next"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".artefact")) == \
        [p.name for p in tmp_path.iterdir() if p.name.startswith(".artefact.tmp-")]  # no old copy is kept


@pytest.mark.slow
def test_an_index_interrupted_between_its_renames_is_recovered_on_load(medic_example, tiny_encoder, tmp_path):
    target = tmp_path / "idx"
    Linker(DictionaryIndex.build(medic_example, tiny_encoder), k=2).save(target)
    expected = Linker.load(target, precision="fp32").link("NIDDM")
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(target), "two-renames", "after-rename-1"],
                          capture_output=True, text=True)
    assert done.returncode == 9 and not target.exists()
    assert Linker.load(target, precision="fp32").link("NIDDM") == expected  # put back by the loader
