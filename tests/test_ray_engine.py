"""annotate --engine ray: the single process's output, in input order, even when a worker is killed."""

import os
import signal
import time

import pytest

from entitylink.apps.cli import build_parser, main

ray = pytest.importorskip("ray")

TEXTS = ["A heart attack.", "Fits and asthma.", "", "NIDDM again.", "Lung cancer.", "Nothing.",
         "Asthma after a myocardial infarction.", "High blood pressure and a stroke."] * 5


@pytest.mark.slow
def test_ray_workers_write_what_one_process_writes_even_when_one_is_killed(index_dir, tmp_path):
    from entitylink.apps.cli import _annotator
    from entitylink.apps.ray_engine import RayAnnotator

    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(TEXTS) + "\n")
    common = ["-q", "annotate", "--index", str(index_dir), "--input", str(documents), "--precision", "fp32"]
    assert main([*common, "--output", str(tmp_path / "one.jsonl")]) == 0
    assert main([*common, "--output", str(tmp_path / "ray.jsonl"), "--engine", "ray", "--workers", "2"]) == 0
    assert (tmp_path / "ray.jsonl").read_text() == (tmp_path / "one.jsonl").read_text()
    assert not ray.is_initialized()  # the run ended the Ray it started

    args = build_parser().parse_args([*common, "--output", str(tmp_path / "x.jsonl")])
    expected = list(_annotator(args).annotate(TEXTS))
    assert sum(map(len, expected)) >= 20
    engine = RayAnnotator(args, workers=2, block=4)
    try:
        pids = [ray.get(actor.pid.remote()) for actor in engine.actors]
        found = engine.annotate(TEXTS)
        got = [next(found)]
        os.kill(pids[1], signal.SIGKILL)  # a worker dies with blocks in flight
        got += list(found)
        assert ray.get(engine.actors[1].pid.remote()) != pids[1]  # Ray started another in its place
    finally:
        engine.close()
    assert got == expected  # nothing lost, nothing twice, in input order


@pytest.mark.slow
def test_a_busy_worker_holds_back_only_its_own_blocks(index_dir, tmp_path):
    from entitylink.apps.cli import _annotator
    from entitylink.apps.ray_engine import IN_FLIGHT, RayAnnotator

    documents = tmp_path / "docs.txt"
    documents.write_text("\n".join(TEXTS) + "\n")
    args = build_parser().parse_args(["-q", "annotate", "--index", str(index_dir), "--input", str(documents),
                                      "--output", str(tmp_path / "x.jsonl"), "--precision", "fp32"])
    expected = list(_annotator(args).annotate(TEXTS))
    engine = RayAnnotator(args, workers=2, block=2)
    try:
        ray.get([actor.pid.remote() for actor in engine.actors])
        engine.actors[0].__ray_call__.remote(lambda worker: time.sleep(4))  # busy with something else
        got = list(engine.annotate(TEXTS))
        counts = [ray.get(actor.__ray_call__.remote(lambda worker: worker.texts)) for actor in engine.actors]
    finally:
        engine.close()
    assert got == expected
    assert sum(counts) == len(TEXTS)
    # round robin gives the busy one half (20 texts); it gets its first IN_FLIGHT blocks, and a share of
    # those left when the output had to wait for its first block
    assert counts[0] <= 2 * IN_FLIGHT * 2 + 2


def test_ray_options_are_checked(index_dir, tmp_path, capsys):
    documents = tmp_path / "docs.txt"
    documents.write_text("A heart attack.\n")
    common = ["-q", "annotate", "--index", str(index_dir), "--input", str(documents), "--output",
              str(tmp_path / "out.jsonl")]
    assert main([*common, "--workers", "2"]) == 2
    assert "--address and --workers go with --engine ray" in capsys.readouterr().err
    assert main([*common[:3], str(tmp_path), *common[4:], "--engine", "ray"]) == 2
    assert "not an index directory" in capsys.readouterr().err
