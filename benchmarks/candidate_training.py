"""BioSyn-style candidate training on NCBI-disease train mentions, judged on dev (issue 28).

    python -m benchmarks.candidate_training --data ../shared/data --out benchmarks/results/candidate_training

Trains the packaged model on the train split's mentions against MEDIC (each mention with its top-k names
under the current model, refreshed each epoch, synonym marginalisation) for every setting given, and
reports dev acc@1 / acc@5 with the standard dictionary (MEDIC + train mentions) and with MEDIC alone, dense
and fused with 0.1 x TF-IDF. ``--test`` also scores the test split: run it once, with the setting dev chose.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import time
from pathlib import Path

from benchmarks._record import write_record
from benchmarks.ncbi_disease import DETECTORS, Benchmark, score
from entitylink import DictionaryIndex, Encoder, Linker
from entitylink.index import HybridIndex
from entitylink.model.candidates import CandidateTrainer
from entitylink.model.defaults import CandidateConfig
from entitylink.model.trainer import interpolate_weights
from entitylink.text.preprocess import QueryPreprocessor, read_spelling

logger = logging.getLogger("benchmarks.candidate_training")


def training_mentions(bench: Benchmark, split: str = "train") -> list[tuple[str, str]]:
    """(preprocessed mention, gold id) of a split's queries that are not composites."""
    return [(q.parts[0], q.gold) for q in bench.queries[split] if not q.is_composite and "+" not in q.gold]


def evaluate_dev(bench: Benchmark, encoder: Encoder, test: bool = False) -> dict:
    """acc@1/@5 on dev (and test) with MEDIC alone and with the standard dictionary, dense and hybrid 0.1."""
    out: dict = {}
    index = DictionaryIndex.build(bench.medic, encoder, show_progress=False)
    splits = ["dev"] + (["test"] if test else [])

    def run(setting: str, split: str) -> None:
        for label, linker in (("dense", Linker(index)), ("hybrid 0.1", Linker(HybridIndex(index, sparse_weight=0.1)))):
            figures = score(linker, bench.queries[split])
            out[f"{setting}, {label}"] = {k: v for k, v in figures.items() if not k.startswith("_")}

    for split in splits:
        run(f"{split} MEDIC only", split)
    index.add(bench.mention_names("train"))
    run("dev standard", "dev")
    if test:
        index.add(bench.mention_names("dev"))
        run("test standard", "test")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/candidate_training"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--abbreviations", choices=DETECTORS, default="scispacy",
                        help="the detector the NCBI benchmark chose on dev (default scispacy)")
    cfg = CandidateConfig()
    parser.add_argument("--top-k", type=int, nargs="+", default=[cfg.top_k])
    parser.add_argument("--epochs", type=int, nargs="+", default=[cfg.epochs])
    parser.add_argument("--learning-rate", type=float, nargs="+", default=[cfg.learning_rate])
    parser.add_argument("--temperature", type=float, nargs="+", default=[cfg.temperature])
    parser.add_argument("--keep-base", type=float, nargs="+", default=[cfg.keep_base])
    parser.add_argument("--seed", type=int, default=cfg.seed)
    parser.add_argument("--own-candidates-only", action="store_true",
                        help="score each mention against its own top-k only (no negatives from the rest of the batch)")
    parser.add_argument("--untuned", action="store_true", help="also score the untuned model")
    parser.add_argument("--no-training", action="store_true",
                        help="train nothing: with --untuned, score --model as it is (e.g. an 'entitylink train' model)")
    parser.add_argument("--test", action="store_true", help="also score the test split (once, with dev's choice)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spelling = read_spelling(args.data / "medic" / "ncbi-spell-check.txt")
    bench = Benchmark(args.data, QueryPreprocessor(abbreviations=args.abbreviations, spelling=spelling))
    mentions = training_mentions(bench)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    if args.untuned:
        label = "untuned" if args.model == "default" else f"as given: {args.model}"
        rows.append({"setting": label, **evaluate_dev(bench, Encoder(args.model, pooling="cls"), args.test)})
        print(json.dumps(rows[-1]), flush=True)
    grid = [] if args.no_training else itertools.product(args.top_k, args.epochs, args.learning_rate,
                                                         args.temperature)
    for top_k, epochs, lr, temperature in grid:
        encoder = Encoder(args.model, pooling="cls")
        trainer = CandidateTrainer(encoder, top_k=top_k, epochs=epochs, learning_rate=lr, temperature=temperature,
                                   seed=args.seed, batch_negatives=not args.own_candidates_only,
                                   show_progress=False)
        started = time.perf_counter()
        start = {k: v.detach().clone() for k, v in encoder.model.state_dict().items()}
        trainer.fit(bench.medic, mentions)
        tuned = {k: v.detach().clone() for k, v in encoder.model.state_dict().items()}
        for keep in args.keep_base:
            encoder.model.load_state_dict(tuned)
            interpolate_weights(encoder.model, start, keep)
            setting = {"batch_negatives": not args.own_candidates_only, "top_k": top_k, "epochs": epochs,
                       "learning_rate": lr, "temperature": temperature,
                       "keep_base": keep, "train_seconds": round(trainer.seconds, 1),
                       "recall_by_epoch": sorted({h["epoch"]: round(h["recall"], 4) for h in trainer.history}.items())}
            rows.append({"setting": setting, **evaluate_dev(bench, encoder, args.test)})
            print(json.dumps(rows[-1]), flush=True)
        logger.info("setting done in %.0f s", time.perf_counter() - started)
    record = {"model": args.model, "mentions": len(mentions), "abbreviations": args.abbreviations, "rows": rows,
              "test_scored": args.test}
    name = "results_test.json" if args.test else "results.json"
    write_record(args.out / name, record, argv)
    print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
