"""The NCBI-disease tagger row as a new user makes it: every step an ``entitylink`` command (issue 28).

    python -m benchmarks.tagger --data ../shared/data --out benchmarks/results/tagger

runs, for each tagger variant (plain; CRF; CRF + dictionary features):

    entitylink index --ontology medic:MEDIC --mentions pubtator:TRAIN [--mentions pubtator:DEV] --sparse-weight 0.1
    entitylink train-tagger --corpus pubtator:TRAIN --dev pubtator:DEV --index INDEX-TRAIN \
        [--crf] [--dictionary medic:MEDIC]
    entitylink evaluate-docs --index INDEX-TRAIN-DEV --tagger TAGGER --corpus pubtator:TEST

(``--refit``: ``train-tagger ... --refit``, which then trains the tagger again on train + dev for the epochs,
and with the settings, that dev chose; its taggers go to ``taggers/NAME-refit``.)
(``--reuse --retune``: reused taggers get ``entitylink tune-tagger --tagger TAGGER --index INDEX-TRAIN --dev
pubtator:DEV`` instead of training: their settings chosen again by today's code.)

The tagger chooses its detection threshold, sparse weight, training mentions and composites on dev
with the index of MEDIC + train mentions and saves them; the test row uses them with MEDIC + train + dev mentions
(the NCBI protocol's dictionary), counted as DNorm/TaggerOne count (document-level micro P/R/F1 over concept
ids). Writes ``OUT/results.json`` (``results-seedS-refit.json`` with those options); indexes and taggers stay
under ``OUT`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks._record import markdown_table, write_record
from entitylink.apps.cli import main as entitylink

VARIANTS = {
    "plain": ["--no-crf"],
    "crf": ["--crf"],
    "crf + dictionary features": ["--crf", "--dictionary", "{medic}"],
}


def run(*argv: str) -> float:
    started = time.perf_counter()
    print("entitylink", " ".join(argv), file=sys.stderr, flush=True)
    if entitylink(list(argv)) != 0:
        raise SystemExit(f"entitylink {argv[0]} failed")
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tagger"))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument("--epochs", default=None, help="passed to train-tagger (default: its own)")
    parser.add_argument("--seed", default=None, help="passed to train-tagger (default: its own); taggers go to "
                                                     "taggers/NAME-seedS")
    parser.add_argument("--refit", action="store_true",
                        help="train-tagger --refit: train again on train + dev with what dev chose")
    parser.add_argument("--reuse", action="store_true", help="keep indexes and taggers an earlier run saved")
    parser.add_argument("--retune", action="store_true",
                        help="with --reuse: choose a reused tagger's settings again (entitylink tune-tagger)")
    args = parser.parse_args(argv)
    corpus = args.data / "ncbi-disease"
    train, dev, test = (f"pubtator:{corpus / name}" for name in
                        ("NCBItrainset_corpus.txt", "NCBIdevelopset_corpus.txt", "NCBItestset_corpus.txt"))
    medic = f"medic:{args.data / 'medic' / 'medic_06Jul2012.txt'}"
    args.out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    indexes = {"train": args.out / "index-medic-train", "train-dev": args.out / "index-medic-train-dev"}
    for label, mentions in (("train", [train]), ("train-dev", [train, dev])):
        if not (args.reuse and (indexes[label] / "policy.json").is_file()):
            extra = [x for m in mentions for x in ("--mentions", m)]
            seconds[f"index {label}"] = run("-q", "index", "--ontology", medic, *extra, "--sparse-weight", "0.1",
                                            "--out", str(indexes[label]))
    results: dict[str, dict] = {}
    suffix = (f"-seed{args.seed}" if args.seed else "") + ("-refit" if args.refit else "")
    for name in args.variants:
        folder = args.out / "taggers" / (name.replace(" + ", "-").replace(" ", "-") + suffix)
        if not (args.reuse and (folder / "entitylink_tagger.json").is_file()):
            options = [x.format(medic=medic) for x in VARIANTS[name]]
            epochs = (["--epochs", args.epochs] if args.epochs else []) + (["--seed", args.seed] if args.seed else []) \
                + (["--refit"] if args.refit else [])
            seconds[f"train-tagger {name}"] = run("-q", "train-tagger", "--corpus", train, "--dev", dev, "--index",
                                                  str(indexes["train"]), *options, *epochs, "--out", str(folder))
        elif args.retune:
            seconds[f"tune-tagger {name}"] = run("-q", "tune-tagger", "--tagger", str(folder), "--index",
                                                 str(indexes["train"]), "--dev", dev)
        saved = json.loads((folder / "entitylink_tagger.json").read_text())
        scores_file = args.out / f"test-{folder.name}.json"
        started = time.perf_counter()
        run("-q", "evaluate-docs", "--index", str(indexes["train-dev"]), "--tagger", str(folder), "--corpus", test,
            "--json", str(scores_file))
        scores = json.loads(scores_file.read_text())
        results[name] = {**{level: scores[level] for level in ("document", "mention_strict", "mention_relaxed")},
                         "settings": saved["settings"], "training": {
                             k: saved["training"].get(k) for k in ("epochs", "seconds", "best_dev_f1", "history",
                                                                   "refit")},
                         "test_seconds": round(time.perf_counter() - started, 1)}
    rows = [[name, r["settings"].get("dev_document_f1"), r["document"]["p"], r["document"]["r"], r["document"]["f1"],
             r["mention_strict"]["f1"],
             (r["training"].get("refit") or {}).get("held_out", r["training"])["best_dev_f1"], r["training"]["seconds"]]
            for name, r in results.items()]
    print(markdown_table(["tagger", "dev doc F1", "test doc P", "R", "F1", "mention strict F1", "dev span F1",
                          "training s"], rows))
    write_record(args.out / f"results{suffix}.json", {"results": results, "seconds": seconds}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
