"""Worker functions for the torch.distributed tests (module-level so that spawned processes import them)."""

import json
import os
from pathlib import Path

NAMES = [f"{a} {b}" for a in ("heart", "liver", "kidney", "blood", "lung", "skin", "bone", "brain")
         for b in ("attack", "failure", "disease", "cancer", "pressure", "enlarged")]


def train_settings() -> dict:
    # dropout 0: the views of one name are then the same on one process and on two
    return dict(mode="mirror", n_names=None, epochs=2, batch_size=8, learning_rate=1e-3, dropout=0.0,
                precision="fp32", show_progress=False, seed=0)


def train_worker(rank: int, world: int, port: int, model_dir: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    import torch.distributed as dist

    from entitylink import Encoder
    from entitylink.model.trainer import MirrorTrainer

    encoder = Encoder(model_dir, precision="fp32")
    trainer = MirrorTrainer(encoder, out=Path(out_dir) / "model", **train_settings()).fit(NAMES)
    Path(out_dir, f"history-{rank}.json").write_text(json.dumps(trainer.history))
    dist.destroy_process_group()


def index_worker(rank: int, world: int, port: int, model_dir: str, ontology: str, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from entitylink.apps.cli import main

    code = main(["-q", "index", "--ontology", ontology, "--model", model_dir, "--precision", "fp32",
                 "--batch-size", "7", "--out", out_dir])
    assert code == 0


def link_worker(rank: int, world: int, port: int, index_dir: str, mentions: str, output: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from entitylink.apps.cli import main

    assert main(["-q", "link", "--index", index_dir, "--input", mentions, "--output", output,
                 "--precision", "fp32"]) == 0


def annotate_worker(rank: int, world: int, port: int, index_dir: str, documents: str, output: str, fmt: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from entitylink.apps.cli import main

    assert main(["-q", "annotate", "--index", index_dir, "--input", documents, "--output", output,
                 "--format", fmt, "--precision", "fp32"]) == 0


def annotate_failing_worker(rank: int, world: int, port: int, index_dir: str, documents: str, output: str) -> None:
    """Rank 1 fails in the middle of annotation; each rank writes its exit code to OUTPUT.code-RANK."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    from entitylink.apps.cli import main
    from entitylink.link import annotate

    if rank == 1:
        def broken(self, texts):
            raise RuntimeError("disk on fire")
            yield  # pragma: no cover

        annotate.Annotator.annotate = broken
    try:
        code = main(["-q", "annotate", "--index", index_dir, "--input", documents, "--output", output,
                     "--precision", "fp32"])
    except RuntimeError as err:  # an unexpected error ends the rank with its traceback
        code = f"raised {err}"
    with open(f"{output}.code-{rank}", "w") as handle:
        handle.write(str(code))
