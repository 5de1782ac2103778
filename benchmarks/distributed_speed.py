"""One process vs torchrun with two processes on this machine: training and index throughput (issue 9).

    python -m benchmarks.distributed_speed --data ../shared/data --names 2000

Runs ``entitylink train`` (Mirror, N names, 1 epoch) and ``entitylink index`` (the same names) once
as one process with all cores, and once under ``torchrun --nproc_per_node 2`` with the cores split
between the ranks (gloo). Reports names/s and the ratio. Writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks._record import write_record


def run(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--names", type=int, default=2000)
    parser.add_argument("--work", type=Path, default=Path("/tmp/entitylink-distributed-speed"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/distributed_speed.json"))
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    tsv = args.work / "names.tsv"
    from entitylink import Ontology

    medic = Ontology.load(f"medic:{args.data / 'medic' / 'medic_06Jul2012.txt'}").sample(args.names, seed=0)
    tsv.write_text("".join(f"{c}\t{n}\n" for c, n in zip(medic.frame["concept_id"], medic.frame["name"])))
    cores = os.cpu_count() or 2
    entry = [sys.executable, "-m", "entitylink", "-q"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                "entitylink", "-q"]
    train = ["train", "--ontology", f"tsv:{tsv}", "--n-names", str(args.names), "--epochs", "1", "--batch-size", "200"]
    index = ["index", "--ontology", f"tsv:{tsv}"]
    results = {}
    for label, prefix, threads in (("1 process", entry, cores), ("torchrun, 2 processes", torchrun, cores // 2)):
        env = dict(os.environ, OMP_NUM_THREADS=str(max(threads, 1)))
        train_s = run(prefix + train + ["--out", str(args.work / f"model-{threads}")], env)
        index_s = run(prefix + index + ["--out", str(args.work / f"index-{threads}")], env)
        results[label] = {"threads_per_process": max(threads, 1), "train_seconds": round(train_s, 1),
                          "train_names_per_s": round(args.names / train_s, 1), "index_seconds": round(index_s, 1),
                          "index_names_per_s": round(args.names / index_s, 1)}
        print(label, results[label], flush=True)
    one, two = results["1 process"], results["torchrun, 2 processes"]
    record = {"names": args.names, "results": results,
              "train_ratio_2_vs_1": round(two["train_names_per_s"] / one["train_names_per_s"], 2),
              "index_ratio_2_vs_1": round(two["index_names_per_s"] / one["index_names_per_s"], 2),
              "note": "wall time of whole commands, model loading included", "torch": torch.__version__}
    print(json.dumps(write_record(args.out, record, argv), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
