"""HPO held-out synonyms (zero-shot linking): one training recipe, scored dense and hybrid (issue 18).

    python -m benchmarks.hpo_zero_shot --mode both --train-names all --epochs 1 \
        --out benchmarks/results/hpo_zero_shot/both_all_1.json

One synonym of every HPO concept with two or more names is held out (seed 0); the other names are the
dictionary and the only training data. The model is scored untuned (``--mode none``) or after tuning,
with the dense index and with dense + W x TF-IDF (``--sparse-weights``).

``--dev`` scores a development split instead, for choosing a recipe without the held-out synonyms: a
second synonym of each concept is held out of the dictionary (seed 1), and the model is trained on, and
scored against, what is left.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from benchmarks._record import write_record
from entitylink import DictionaryIndex, Encoder, Linker, Ontology, evaluate
from entitylink.index.hybrid import HybridIndex
from entitylink.model.defaults import MODES, TrainingConfig
from entitylink.model.trainer import MirrorTrainer


def _count_or_all(text: str) -> int | None:
    if text == "all":
        return None
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = TrainingConfig()
    parser.add_argument("--model", default="default")
    parser.add_argument("--mode", choices=["none", *MODES], default=default.mode)
    parser.add_argument("--train-names", type=_count_or_all, default=default.n_names,
                        help="names sampled for training, or 'all'")
    parser.add_argument("--epochs", type=int, default=default.epochs)
    parser.add_argument("--learning-rate", type=float, default=default.learning_rate)
    parser.add_argument("--temperature", type=float, default=default.temperature)
    parser.add_argument("--seed", type=int, default=default.seed)
    parser.add_argument("--keep-base", type=float, default=0.0,
                        help="share of the starting weights kept (default 0: the recorded rows predate keep_base)")
    parser.add_argument("--hard-negatives", action="store_true",
                        help="batches of similar names (the trainer's hard_negatives)")
    parser.add_argument("--dev", action="store_true",
                        help="score a development split held out of the dictionary (seed 1), not the test queries")
    parser.add_argument("--sparse-weights", type=float, nargs="*", default=[0.1])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/hpo_zero_shot/results.json"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    dictionary, queries = Ontology.load("hpo").hold_out_synonyms(seed=0)
    if args.dev:
        dictionary, queries = dictionary.hold_out_synonyms(seed=1)
    mentions, gold = queries["mention"].tolist(), queries["concept_id"].tolist()
    encoder = Encoder(args.model)
    record: dict = {"split": "dev" if args.dev else "test", "dictionary_names": len(dictionary),
                    "queries": len(mentions)}
    if args.mode != "none":
        trainer = MirrorTrainer(encoder, mode=args.mode, n_names=args.train_names, epochs=args.epochs,
                                learning_rate=args.learning_rate, temperature=args.temperature, seed=args.seed,
                                keep_base=args.keep_base, hard_negatives=args.hard_negatives)
        trainer.fit(dictionary)
        record["training_seconds"] = round(trainer.seconds, 1)
    started = time.perf_counter()
    dense = DictionaryIndex.build(dictionary, encoder, show_progress=False)
    scores = {"dense": evaluate(Linker(dense), mentions, gold, show_progress=False).metrics}
    for weight in args.sparse_weights:
        hybrid = Linker(HybridIndex(dense, sparse_weight=weight))
        scores[f"dense + {weight} x TF-IDF"] = evaluate(hybrid, mentions, gold, show_progress=False).metrics
    record["scores"] = {name: {k: round(v, 4) for k, v in s.items()} for name, s in scores.items()}
    record["scoring_seconds"] = round(time.perf_counter() - started, 1)
    record["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = write_record(args.out, record, argv)
    print(json.dumps(record["scores"], indent=2))
    print(f"wrote {args.out} ({record['machine']['cpu']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
