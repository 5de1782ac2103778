"""Mirror-BERT benchmark: the packaged MiniLM untuned, after Mirror, synonym and both, over seeds.

    python -m benchmarks.mirror_bert --data ../shared/data --out benchmarks/results/mirror_bert

Two benchmarks, each with its own training ontology (no test mention is ever trained on):
- HPO held-out synonyms (zero-shot): trained on the HPO dictionary left after holding out one synonym
  per concept; scored on the held-out synonyms.
- NCBI-disease test with MEDIC: trained on MEDIC names; scored on the 960 test queries with the
  MEDIC-only dictionary and with the standard MEDIC + train + dev mentions dictionary.

``--throughput`` also times the paper's recipe (10k names x 2 epochs, Mirror) in fp32 and, where the
CPU has AMX/AVX512-BF16, in bf16, and scores each model. Writes ``results.json`` and ``results.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

from benchmarks._record import write_record
from benchmarks.ncbi_disease import Benchmark, dense, run_settings
from entitylink import DictionaryIndex, Encoder, Linker, Ontology, evaluate
from entitylink._io import atomic_write_text
from entitylink.model.hardware import bf16_is_fast, resolve_device
from entitylink.model.trainer import MirrorTrainer
from entitylink.text.preprocess import QueryPreprocessor, read_spelling

logger = logging.getLogger("benchmarks.mirror_bert")

CONDITIONS = {"untuned": None, "mirror": "mirror", "synonym": "synonym", "both": "both"}


def hpo_score(encoder: Encoder, dictionary: Ontology, queries) -> dict:
    index = DictionaryIndex.build(dictionary, encoder, show_progress=False)
    result = evaluate(Linker(index), queries["mention"].tolist(), queries["concept_id"].tolist(), show_progress=False)
    return {k: round(v, 4) for k, v in result.metrics.items()}


def ncbi_score(encoder: Encoder, bench: Benchmark) -> dict:
    settings = run_settings(dense(encoder), bench)
    return {
        "test": {k: settings["test"][k] for k in ("acc@1", "acc@5")},
        "test-medic": {k: settings["test-medic"][k] for k in ("acc@1", "acc@5")},
        "dev": {k: settings["dev"][k] for k in ("acc@1", "acc@5")},
    }


def train(ontology: Ontology, mode: str, seed: int, args, precision: str = "auto") -> tuple[Encoder, MirrorTrainer]:
    encoder = Encoder(args.model, pooling=args.pooling, precision=precision)
    trainer = MirrorTrainer(encoder, mode=mode, n_names=args.train_names, epochs=args.epochs, seed=seed,
                            learning_rate=args.learning_rate, temperature=args.temperature, show_progress=False,
                            keep_base=0.0)  # the recorded rows are the tuned weights alone (before keep_base)
    trainer.fit(ontology)
    return encoder, trainer


def summarise(runs: list[dict]) -> dict:
    """Mean and standard deviation over seeds of every figure in nested result dicts."""
    out: dict = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = summarise([r[key] for r in runs])
        else:
            values = [r[key] for r in runs]
            out[key] = {"mean": round(statistics.mean(values), 4),
                        "sd": round(statistics.stdev(values), 4) if len(values) > 1 else 0.0}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mirror_bert"))
    parser.add_argument("--model", default="default")
    parser.add_argument("--pooling", default=None, choices=[None, "cls", "mean"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-names", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--conditions", nargs="*", default=list(CONDITIONS), choices=list(CONDITIONS),
                        help="conditions to score (none: with --throughput, only the timing)")
    parser.add_argument("--throughput", action="store_true", help="also time 10k names x 2 epochs, fp32 vs bf16")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()

    hpo_dictionary, hpo_queries = Ontology.load("hpo").hold_out_synonyms(seed=0) if args.conditions else (None, [])
    spelling = read_spelling(args.data / "medic" / "ncbi-spell-check.txt")
    bench = Benchmark(args.data, QueryPreprocessor(spelling=spelling))

    per_condition: dict[str, list[dict]] = {c: [] for c in args.conditions}
    for condition in args.conditions:
        mode = CONDITIONS[condition]
        for seed in (args.seeds if mode else args.seeds[:1]):
            run: dict = {"seed": seed}
            if mode is None:
                encoder = Encoder(args.model, pooling=args.pooling)
                run["hpo"] = hpo_score(encoder, hpo_dictionary, hpo_queries)
                run["ncbi"] = ncbi_score(encoder, bench)
            else:
                encoder, trainer = train(hpo_dictionary, mode, seed, args)
                run["hpo"] = hpo_score(encoder, hpo_dictionary, hpo_queries)
                run["hpo_training_seconds"] = round(trainer.seconds, 1)
                encoder, trainer = train(bench.medic, mode, seed, args)
                run["ncbi"] = ncbi_score(encoder, bench)
                run["ncbi_training_seconds"] = round(trainer.seconds, 1)
            logger.info("%s seed %d: %s", condition, seed, json.dumps(run))
            per_condition[condition].append(run)

    throughput = {}
    if args.throughput:
        device = resolve_device(None)
        precisions = ["fp32"] + (["bf16"] if bf16_is_fast(device) else [])
        for precision in precisions:
            encoder, trainer = train(bench.medic, "mirror", args.seeds[0], args, precision=precision)
            names = len(trainer._mirror_texts(bench.medic)) * args.epochs
            throughput[precision] = {
                "names": names, "seconds": round(trainer.seconds, 1),
                "names_per_second": round(names / trainer.seconds, 1),
                "ncbi": ncbi_score(encoder, bench),
            }
            logger.info("throughput %s: %s", precision, throughput[precision])

    summary = {c: summarise([{k: v for k, v in r.items() if k != "seed"} for r in runs])
               for c, runs in per_condition.items() if runs}
    record = {
        "summary": summary, "runs": per_condition, "throughput": throughput,
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "hpo_queries": len(hpo_queries), "ncbi_test_queries": len(bench.queries["test"]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    record = write_record(args.out / "results.json", record, argv)

    def cell(fig: dict) -> str:
        return f"{100 * fig['mean']:.1f} ± {100 * fig['sd']:.1f}"

    lines = ["| condition | seeds | HPO acc@1 | HPO acc@5 | NCBI test acc@1 | NCBI test acc@5 | "
             "NCBI test acc@1, MEDIC only | NCBI dev acc@1 |", "|---|---|---|---|---|---|---|---|"]
    for condition, s in summary.items():
        lines.append(
            f"| {condition} | {len(per_condition[condition])} | "
            f"{cell(s['hpo']['acc@1'])} | {cell(s['hpo']['acc@5'])} | "
            f"{cell(s['ncbi']['test']['acc@1'])} | {cell(s['ncbi']['test']['acc@5'])} | "
            f"{cell(s['ncbi']['test-medic']['acc@1'])} | {cell(s['ncbi']['dev']['acc@1'])} |"
        )
    if throughput:
        lines += ["", "| precision | names trained | seconds | names/s | NCBI test acc@1 | NCBI test acc@5 |",
                  "|---|---|---|---|---|---|"]
        for precision, t in throughput.items():
            lines.append(f"| {precision} | {t['names']} | {t['seconds']} | {t['names_per_second']} | "
                         f"{100 * t['ncbi']['test']['acc@1']:.1f} | {100 * t['ncbi']['test']['acc@5']:.1f} |")
    table = "\n".join(lines) + "\n"
    atomic_write_text(args.out / "results.md", table)
    print(table)
    print(f"wrote {args.out}/results.json and results.md in {record['seconds']:.0f} s on {record['machine']['cpu']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
