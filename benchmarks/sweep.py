"""A dev-split sweep of training settings (issue 4): NCBI dev acc@1, never test.

    python -m benchmarks.sweep --param temperature --values 0.05 0.1 0.2 0.5 --mode both

Trains the packaged MiniLM on MEDIC (10,000 names, 1 epoch, seed 0 unless changed) once per value and
scores NCBI-disease *dev* with the standard dictionary (MEDIC + train mentions) and with MEDIC only.
Prints and writes one row per value as it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.ncbi_disease import Benchmark, dense, run_settings
from entitylink import Encoder
from entitylink._atomic import atomic_write_text
from entitylink.hardware import describe_cpu
from entitylink.preprocess import QueryPreprocessor, read_spelling
from entitylink.trainer import MirrorTrainer, TrainingConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--param", required=True, choices=["temperature", "learning_rate", "epochs", "dropout"])
    parser.add_argument("--values", type=float, nargs="+", required=True)
    parser.add_argument("--mode", default="both", choices=["mirror", "synonym", "both"])
    parser.add_argument("--train-names", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sweep.json"))
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spelling = read_spelling(args.data / "medic" / "ncbi-spell-check.txt")
    bench = Benchmark(args.data, QueryPreprocessor(spelling=spelling))
    rows = []
    for value in args.values:
        settings = {"mode": args.mode, "n_names": args.train_names, "epochs": args.epochs, "seed": args.seed,
                    "show_progress": False}
        settings[args.param] = int(value) if args.param == "epochs" else value
        encoder = Encoder("default")
        trainer = MirrorTrainer(encoder, **settings).fit(bench.medic)
        dev = {k: v for k, v in run_settings(dense(encoder), bench).items() if k.startswith("dev")}
        rows.append({args.param: value, "dev_acc@1": dev["dev"]["acc@1"], "dev_acc@5": dev["dev"]["acc@5"],
                     "dev_medic_acc@1": dev["dev-medic"]["acc@1"], "dev_medic_acc@5": dev["dev-medic"]["acc@5"],
                     "training_seconds": round(trainer.seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
        record = {"param": args.param, "mode": args.mode, "defaults": vars(TrainingConfig()), "rows": rows,
                  "machine": describe_cpu(), "date": time.strftime("%Y-%m-%d")}
        atomic_write_text(args.out, json.dumps(record, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
