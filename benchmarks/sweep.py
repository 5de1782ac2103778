"""A dev-split sweep of training settings (issue 4): NCBI dev acc@1, never test.

    python -m benchmarks.sweep --param temperature --values 0.05 0.1 0.2 0.5 --mode both
    python -m benchmarks.sweep --param pooling --values cls mean
    python -m benchmarks.sweep --param hard_negatives --values false true
    python -m benchmarks.sweep --param learning_rate --values 2e-5 1e-4 2e-4 --fix temperature=0.1

Trains the packaged MiniLM on MEDIC (10,000 names, 1 epoch, seed 0 unless changed) once per value and
scores NCBI-disease *dev* with the standard dictionary (MEDIC + train mentions) and with MEDIC only.
``--fix NAME=VALUE`` (repeatable) holds another setting at a value for every row.
Prints and writes one row per value as it finishes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks._record import write_record
from benchmarks.ncbi_disease import Benchmark, dense, run_settings
from entitylink import Encoder
from entitylink.model.trainer import MirrorTrainer, TrainingConfig
from entitylink.text.preprocess import QueryPreprocessor, read_spelling


def _flag(text: str) -> bool:
    if text.lower() in {"true", "1", "yes", "on"}:
        return True
    if text.lower() in {"false", "0", "no", "off"}:
        return False
    raise ValueError(f"not true/false: {text!r}")


def _pooling(text: str) -> str:
    if text not in {"cls", "mean"}:
        raise ValueError(f"pooling is cls or mean, not {text!r}")
    return text


PARAMS = {"temperature": float, "learning_rate": float, "epochs": int, "dropout": float,
          "hard_negatives": _flag, "pooling": _pooling}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--param", required=True, choices=sorted(PARAMS))
    parser.add_argument("--values", nargs="+", required=True)
    parser.add_argument("--mode", default="both", choices=["mirror", "synonym", "both"])
    parser.add_argument("--train-names", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                        help=f"hold a setting ({', '.join(sorted(set(PARAMS) - {'pooling'}))}) at a value in every row")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/sweep_PARAM.json")
    args = parser.parse_args(argv)
    try:
        values = [PARAMS[args.param](v) for v in args.values]
    except ValueError as exc:
        parser.error(f"--values for {args.param}: {exc}")
    fixed = {}
    for item in args.fix:
        name, _, text = item.partition("=")
        if name not in PARAMS or name in ("pooling", args.param) or not text:
            parser.error(f"--fix {item!r}: expected NAME=VALUE with NAME one of "
                         f"{sorted(set(PARAMS) - {'pooling', args.param})}")
        try:
            fixed[name] = PARAMS[name](text)
        except ValueError as exc:
            parser.error(f"--fix {item!r}: {exc}")
    out = args.out or Path(f"benchmarks/results/sweep_{args.param}.json")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    spelling = read_spelling(args.data / "medic" / "ncbi-spell-check.txt")
    bench = Benchmark(args.data, QueryPreprocessor(spelling=spelling))
    rows = []
    for value in values:
        settings = {"mode": args.mode, "n_names": args.train_names, "epochs": args.epochs, "seed": args.seed,
                    "show_progress": False, "keep_base": 0.0, **fixed}  # tuned weights alone, as the recorded sweeps
        pooling = None
        if args.param == "pooling":
            pooling = value
        else:
            settings[args.param] = value
        encoder = Encoder("default", pooling=pooling)
        trainer = MirrorTrainer(encoder, **settings).fit(bench.medic)
        dev = {k: v for k, v in run_settings(dense(encoder), bench).items() if k.startswith("dev")}
        rows.append({args.param: value, "dev_acc@1": dev["dev"]["acc@1"], "dev_acc@5": dev["dev"]["acc@5"],
                     "dev_medic_acc@1": dev["dev-medic"]["acc@1"], "dev_medic_acc@5": dev["dev-medic"]["acc@5"],
                     "pooling": encoder.pooling, "training_seconds": round(trainer.seconds, 1)})
        print(json.dumps(rows[-1]), flush=True)
        write_record(out, {"param": args.param, "mode": args.mode, "fixed": fixed, "defaults": vars(TrainingConfig()),
                           "rows": rows},
                     argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
