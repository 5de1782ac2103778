import json

import numpy as np
import pytest

from entitylink import DataFormatError, DictionaryIndex, Encoder, IndexMismatchError, Normalizer, Ontology
from entitylink.index.search import SearchSpec


@pytest.fixture
def shared_names():
    return Ontology.from_pairs([
        ("MESH:D1", "Aniridia"), ("OMIM:106210", "aniridia"), ("OMIM:106210", "AN2"),
        ("MESH:D2", "Fever"), ("MESH:D2", "Pyrexia"),
    ])


def test_shared_names_are_merged_with_joined_ids(shared_names):
    entries = shared_names.entries(Normalizer())
    row = entries[entries.text == "aniridia"]
    assert len(row) == 1 and row.concept_id.iloc[0] == "MESH:D1|OMIM:106210"
    assert row.name.iloc[0] == "Aniridia"  # display keeps the first spelling
    separate = shared_names.entries(Normalizer(), merge_shared_names=False)
    assert sorted(separate[separate.text == "aniridia"].concept_id) == ["MESH:D1", "OMIM:106210"]


def test_build_search_finds_each_name_itself(medic_example, tiny_encoder):
    index = DictionaryIndex.build(medic_example, tiny_encoder)
    vectors = tiny_encoder.encode(index.texts)
    scores, positions = index.search(vectors, k=1)
    # every entry is its own nearest neighbour (or an exact duplicate vector)
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)
    assert len(index) == len(set(index.texts)) and index.meta["count"] == len(index)


def test_built_and_loaded_flat_index_search_the_same_way(medic_example, tiny_encoder, tmp_path, monkeypatch):
    import entitylink.index.dense as dense

    calls = []
    exact = dense._exact_search
    monkeypatch.setattr(dense, "_exact_search", lambda *args: calls.append(1) or exact(*args))
    built = DictionaryIndex.build(medic_example, tiny_encoder)
    loaded = DictionaryIndex.load(built.save(tmp_path / "idx"), tiny_encoder)
    queries = tiny_encoder.encode(["fever", "aniridia type 2", "colon cancer"])
    first, second = built.search(queries, 4), loaded.search(queries, 4)
    assert len(calls) == 2  # both through the exact search, whichever FAISS class holds the vectors
    assert np.array_equal(first[0], second[0]) and np.array_equal(first[1], second[1])


@pytest.mark.parametrize("float16", [False, True])
def test_trained_index_encodes_each_name_once(medic_example, tiny_encoder, monkeypatch, float16):
    seen = []
    encode = tiny_encoder.encode
    monkeypatch.setattr(tiny_encoder, "encode", lambda texts, **kw: seen.extend(texts) or encode(texts, **kw))
    # some names outside the sample
    monkeypatch.setattr("entitylink.index.dense.training_size", lambda index, n: n // 2)
    spec = SearchSpec(kind="ivf", nlist=2, nprobe=2, float16=float16)
    index = DictionaryIndex.build(medic_example, tiny_encoder, search=spec, chunk_size=7)
    assert sorted(seen) == sorted(index.texts)  # the training sample is not encoded a second time
    stored = np.stack([index.faiss_index.reconstruct(i) for i in range(len(index))])
    np.testing.assert_allclose(stored, encode(index.texts), atol=2e-3 if float16 else 1e-5)


def test_save_load_round_trip(medic_example, tiny_encoder, tmp_path):
    index = DictionaryIndex.build(medic_example, tiny_encoder)
    index.save(tmp_path / "idx")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["entries.json", "index.faiss", "meta.json"]
    loaded = DictionaryIndex.load(tmp_path / "idx", precision="fp32")
    assert loaded.names == index.names and loaded.concept_ids == index.concept_ids
    assert loaded.normalizer == index.normalizer
    query = tiny_encoder.encode(["heart attack"])
    assert (loaded.search(query, 5)[1] == index.search(query, 5)[1]).all()
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["encoder"]["pooling"] == "cls" and meta["dim"] == 32 and len(meta["encoder_fingerprint"]) == 64


def test_save_replaces_atomically_and_leaves_no_temp(medic_example, tiny_encoder, tmp_path):
    index = DictionaryIndex.build(medic_example, tiny_encoder)
    out = tmp_path / "out"
    out.mkdir()
    index.save(out / "idx")
    index.save(out / "idx")
    assert [p.name for p in out.iterdir()] == ["idx"]


def test_failed_save_keeps_previous_index(medic_example, tiny_encoder, tmp_path, monkeypatch):
    import faiss

    index = DictionaryIndex.build(medic_example, tiny_encoder)
    out = tmp_path / "out"
    index.save(out / "idx")
    before = (out / "idx" / "meta.json").read_text()

    def boom(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(faiss, "write_index", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        index.save(out / "idx")
    assert (out / "idx" / "meta.json").read_text() == before
    assert [p.name for p in out.iterdir()] == ["idx"]


def test_loading_with_another_model_is_a_clear_error(medic_example, tiny_encoder, tmp_path):
    from .conftest import write_tiny_bert

    DictionaryIndex.build(medic_example, tiny_encoder).save(tmp_path / "idx")
    other = Encoder(write_tiny_bert(tmp_path / "other", seed=1), precision="fp32")
    with pytest.raises(IndexMismatchError, match="other weights"):
        DictionaryIndex.load(tmp_path / "idx", encoder=other)
    mean = Encoder(tiny_encoder.model_id, pooling="mean")
    with pytest.raises(IndexMismatchError, match="pooling='cls'"):
        DictionaryIndex.load(tmp_path / "idx", encoder=mean)


def test_tampered_or_missing_files_are_rejected(medic_example, tiny_encoder, tmp_path):
    DictionaryIndex.build(medic_example, tiny_encoder).save(tmp_path / "idx")
    entries = tmp_path / "idx" / "entries.json"
    entries.write_text(entries.read_text().replace("Heart Attack", "Heart Atack"))
    with pytest.raises(DataFormatError, match="checksum differs"):
        DictionaryIndex.load(tmp_path / "idx", encoder=tiny_encoder)
    with pytest.raises(FileNotFoundError, match="no index directory"):
        DictionaryIndex.load(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataFormatError, match="not an entitylink index"):
        DictionaryIndex.load(tmp_path / "plain")


def test_add_appends_new_names_and_joins_shared_ones(shared_names, tiny_encoder):
    index = DictionaryIndex.build(shared_names, tiny_encoder)
    n = len(index)
    added = index.add(Ontology.from_pairs([("MESH:D2", "high temperature"), ("MESH:D3", "FEVER")]))
    assert added == 1 and len(index) == n + 1 == index.faiss_index.ntotal
    assert index.concept_ids[index.texts.index("fever")] == "MESH:D2|MESH:D3"


def test_empty_after_normalisation_is_an_error(tiny_encoder):
    from entitylink import EntityLinkError

    with pytest.raises(EntityLinkError, match="no names left"):
        DictionaryIndex.build(Ontology.from_pairs([("A", "---"), ("B", "!!")]), tiny_encoder)


def test_exact_search_is_faiss_flat_search_in_blocks(monkeypatch):
    import faiss

    import entitylink.index.dense as dense

    rng = np.random.default_rng(0)
    stored = rng.standard_normal((500, 16)).astype(np.float32)
    queries = rng.standard_normal((37, 16)).astype(np.float32)
    flat = faiss.IndexFlatIP(16)
    flat.add(stored)
    expected_scores, expected_positions = flat.search(queries, 12)
    for block in (1 << 25, 500 * 5, 1):  # every query at once; 5 queries a block; one
        monkeypatch.setattr(dense, "EXACT_SEARCH_BLOCK", block)
        scores, positions = dense._exact_search(flat, queries, 12)
        assert positions.dtype == np.int64 and (positions == expected_positions).all()
        assert np.allclose(scores, expected_scores, atol=1e-5)
    flat.add(rng.standard_normal((3, 16)).astype(np.float32))  # the storage moves: read it anew
    assert (dense._exact_search(flat, queries, 12)[1] == flat.search(queries, 12)[1]).all()
