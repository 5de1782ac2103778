"""torch.distributed on CPU (gloo): two processes reproduce one process with the global batch."""

import json
import socket
import time

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from entitylink import Encoder

from . import dist_workers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_gloo_ranks_match_one_process_with_the_global_batch(tiny_model, tmp_path):
    from entitylink.model.trainer import MirrorTrainer

    single = Encoder(tiny_model, precision="fp32")
    expected = MirrorTrainer(single, **dist_workers.train_settings()).fit(dist_workers.NAMES)

    mp.spawn(dist_workers.train_worker, args=(2, free_port(), str(tiny_model), str(tmp_path)), nprocs=2, join=True)
    histories = [json.loads((tmp_path / f"history-{r}.json").read_text()) for r in range(2)]
    losses = [[h["loss"] for h in history] for history in histories]
    assert losses[0] == losses[1]  # every rank reports the mean loss over ranks
    assert losses[0] == pytest.approx([h["loss"] for h in expected.history], abs=1e-5)
    # same weights after training, hence same gradients at every step
    distributed = Encoder(tmp_path / "model", precision="fp32")
    compared = 0
    for (name, a), (_, b) in zip(sorted(single.model.state_dict().items()),
                                 sorted(distributed.model.state_dict().items())):
        if name.endswith("attention.self.key.bias"):
            # Its exact gradient is zero (a constant added to every attention score leaves the softmax
            # unchanged); Adam turns the float noise on it into lr-sized steps, differently in each run.
            continue
        assert torch.allclose(a, b, atol=1e-5), name
        compared += 1
    assert compared > 30
    assert list(tmp_path.glob("model/checkpoints")) == []  # only rank 0 wrote, and only the model


@pytest.mark.slow
def test_two_gloo_ranks_build_the_same_index(tiny_model, tmp_path):
    from entitylink import DictionaryIndex

    from .conftest import ONTOLOGIES

    spec = f"medic:{ONTOLOGIES / 'example_medic.txt'}"
    from entitylink.apps.cli import main

    assert main(["-q", "index", "--ontology", spec, "--model", str(tiny_model), "--precision", "fp32",
                 "--out", str(tmp_path / "single")]) == 0
    mp.spawn(dist_workers.index_worker, args=(2, free_port(), str(tiny_model), spec, str(tmp_path / "sharded")),
             nprocs=2, join=True)
    encoder = Encoder(tiny_model, precision="fp32")
    one = DictionaryIndex.load(tmp_path / "single", encoder=encoder)
    two = DictionaryIndex.load(tmp_path / "sharded", encoder=encoder)
    assert one.names == two.names and one.concept_ids == two.concept_ids
    ids = np.arange(len(one))
    np.testing.assert_allclose(one.vectors(ids), two.vectors(ids), atol=1e-5)
    assert not list(tmp_path.glob(".sharded*"))  # the shard parts were cleaned up


@pytest.mark.slow
def test_two_gloo_ranks_link_a_file_in_order(tiny_model, tmp_path):
    from entitylink.apps.cli import main

    from .conftest import ONTOLOGIES

    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model",
                 str(tiny_model), "--precision", "fp32", "--out", str(tmp_path / "idx")]) == 0
    mentions = tmp_path / "mentions.txt"
    mentions.write_text("\n".join(["heart attack", "fits", "asthma", "NIDDM", "lung cancer"]) + "\n")
    assert main(["-q", "link", "--index", str(tmp_path / "idx"), "--input", str(mentions), "--output",
                 str(tmp_path / "one.tsv"), "--precision", "fp32"]) == 0
    mp.spawn(dist_workers.link_worker, args=(2, free_port(), str(tmp_path / "idx"), str(mentions),
                                             str(tmp_path / "two.tsv")), nprocs=2, join=True)
    one, two = (tmp_path / "one.tsv").read_text().splitlines(), (tmp_path / "two.tsv").read_text().splitlines()
    assert [line.split("\t")[:3] for line in one] == [line.split("\t")[:3] for line in two]
    assert len(two) == 1 + 5 * 5 and not (tmp_path / "two.tsv.parts").exists()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["jsonl", "pubtator", "bioc"])
def test_two_gloo_ranks_annotate_documents_into_one_output_in_order(tiny_model, tmp_path, fmt):
    from entitylink.apps.cli import main

    from .conftest import ONTOLOGIES

    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model",
                 str(tiny_model), "--precision", "fp32", "--out", str(tmp_path / "idx")]) == 0
    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(["A heart attack.", "Fits and asthma.", "", "NIDDM again.", "Lung cancer.",
                                     "Nothing."]) + "\n")
    assert main(["-q", "annotate", "--index", str(tmp_path / "idx"), "--input", str(documents), "--output",
                 str(tmp_path / "one.out"), "--format", fmt, "--precision", "fp32"]) == 0
    mp.spawn(dist_workers.annotate_worker, args=(2, free_port(), str(tmp_path / "idx"), str(documents),
                                                 str(tmp_path / "two.out"), fmt), nprocs=2, join=True)
    one, two = (tmp_path / "one.out").read_text(), (tmp_path / "two.out").read_text()
    assert one == two
    documents_written = {"pubtator": one.count("|t|"), "bioc": one.count("<document>")}.get(fmt, len(one.splitlines()))
    assert documents_written == 6
    assert not list(tmp_path.glob("two.out.part-*"))


@pytest.mark.slow
def test_a_failed_rank_fails_every_rank_instead_of_hanging(tiny_model, tmp_path):
    from entitylink.apps.cli import main

    from .conftest import ONTOLOGIES

    assert main(["-q", "index", "--ontology", f"medic:{ONTOLOGIES / 'example_medic.txt'}", "--model",
                 str(tiny_model), "--precision", "fp32", "--out", str(tmp_path / "idx")]) == 0
    documents = tmp_path / "docs.txt"
    documents.write_text("A heart attack.\nFits and asthma.\nNIDDM again.\n")
    context = mp.start_processes(dist_workers.annotate_failing_worker, nprocs=2, join=False, start_method="spawn",
                                 args=(2, free_port(), str(tmp_path / "idx"), str(documents), str(tmp_path / "out")))
    deadline = time.monotonic() + 120
    while not context.join(timeout=5):
        assert time.monotonic() < deadline, "a rank is still waiting for the failed one"
    codes = [(tmp_path / f"out.code-{rank}").read_text() for rank in (0, 1)]
    assert codes == ["2", "raised disk on fire"]  # the failed rank raises; the other fails too, and neither waits
    assert not (tmp_path / "out").exists()


def test_progress_bars_on_rank_zero_only():
    from entitylink.model.distributed import Context

    main_rank, other = Context(rank=0, world=2), Context(rank=1, world=2)
    assert [main_rank.progress(s) for s in (None, True, False)] == [None, True, False]  # None stays "automatic"
    assert [other.progress(s) for s in (None, True, False)] == [False, False, False]


def test_gpu_ranks_use_nccl_on_their_own_device(monkeypatch):
    """Under torchrun on GPUs: NCCL, the rank's own cuda:LOCAL_RANK, and collectives with tensors there."""
    import torch.distributed as dist

    from entitylink.model import distributed

    started = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: started.append(backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    ctx = distributed.context(torch.device("cuda"))
    assert started == ["nccl"] and ctx.device == torch.device("cuda", 1) and ctx.local_rank == 1
    assert distributed.context(torch.device("cpu")).device == torch.device("cpu") and started[-1] == "gloo"

    seen = []

    class Reduced(Exception):
        pass

    def all_reduce(tensor):
        seen.append(tensor.device)
        raise Reduced

    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    with pytest.raises(Reduced):  # a "meta" device stands in for the GPU this machine lacks
        distributed.mean_over_ranks(1.0, distributed.Context(rank=1, world=2, device=torch.device("meta")))
    assert seen == [torch.device("meta")]
