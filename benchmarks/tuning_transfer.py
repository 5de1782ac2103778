"""Does `entitylink train` on an ontology help on text it never saw? Dev splits only (issue 28).

    python -m benchmarks.tuning_transfer --data ../shared/data --out benchmarks/results/tuning_transfer

For each ontology → corpus pair, the model is tuned with ``entitylink train --ontology SPEC --keep-base
0 --out M`` (today's other defaults, no corpus text; ``--train`` adds options), then a dictionary of the
ontology alone is encoded by the untuned model, the tuned one and weight-space mixes of the two
(``keep_base`` A: A × untuned + (1 − A) × tuned, what ``entitylink train --keep-base A`` saves), and the
corpus's gold mentions are linked:

- MEDIC → NCBI-disease dev (BioSyn's preprocessing: abbreviations, spell-check list, composite
  mentions split, mentions of concepts MEDIC lacks dropped);
- HPO → ID-68 (the phenotype dev corpus: 68 clinical notes, gold HPO spans, alternative ids mapped).

Writes ``OUT/results.json`` (acc@1 / acc@5 per pair and keep_base); models stay under ``OUT/models``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from benchmarks._record import markdown_table, write_record
from entitylink import DictionaryIndex, Encoder, Linker, Ontology, evaluate
from entitylink.apps.cli import main as entitylink
from entitylink.model.trainer import interpolate_weights
from entitylink.ontology.obo import INDEX_SYNONYM_SCOPES, hpo_obo_path, read_alt_ids
from entitylink.text.preprocess import QueryPreprocessor, drop_unknown, read_spelling
from entitylink.text.pubtator import read_pubtator, read_span_folder

logger = logging.getLogger("benchmarks.tuning_transfer")
KEEP = (0.0, 0.25, 0.5, 0.75)


def ncbi_queries(data: Path, ontology: Ontology) -> tuple[list, list[str]]:
    documents = read_pubtator(data / "ncbi-disease" / "NCBIdevelopset_corpus.txt")
    preprocessor = QueryPreprocessor(spelling=read_spelling(data / "medic" / "ncbi-spell-check.txt"))
    known = {i for cid in set(ontology.frame["concept_id"]) for i in cid.split("|")}
    queries, _ = drop_unknown(preprocessor.queries(documents), known)
    return [q.text for q in queries], [q.gold for q in queries]


def id68_queries(data: Path, ontology: Ontology) -> tuple[list, list[str]]:
    alt = read_alt_ids(hpo_obo_path())
    known = set(ontology.frame["concept_id"])
    documents = read_span_folder(data / "id68" / "corpus", data / "id68" / "ann")
    pairs = [(m.text, alt.get(m.ids, m.ids)) for doc in documents for m in doc.mentions]
    pairs = [(text, gold) for text, gold in pairs if gold in known]
    return [t for t, _ in pairs], [g for _, g in pairs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tuning_transfer"))
    parser.add_argument("--model", default="default", help="the model to tune (default: packaged MiniLM)")
    parser.add_argument("--pairs", nargs="+", choices=["medic-ncbi", "hpo-id68"], default=["medic-ncbi", "hpo-id68"])
    parser.add_argument("--train", action="append", default=[], metavar="OPTION",
                        help="an extra option for entitylink train, as --train=--seed=1 (repeatable)")
    parser.add_argument("--reuse", action="store_true", help="keep the models an earlier run tuned")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    specs = {"medic-ncbi": f"medic:{args.data / 'medic' / 'medic_06Jul2012.txt'}", "hpo-id68": "hpo"}
    base = {k: v.clone() for k, v in Encoder(args.model).model.state_dict().items()}
    results: dict[str, dict] = {}
    for pair in args.pairs:
        spec = specs[pair]
        model_dir = args.out / "models" / pair
        train_seconds = None
        if not (args.reuse and (model_dir / "config.json").is_file()):
            started = time.perf_counter()
            if entitylink(["-q", "train", "--ontology", spec, "--model", args.model, "--keep-base", "0", *args.train,
                           "--out", str(model_dir)]) != 0:
                raise SystemExit(f"entitylink train --ontology {spec} failed")
            train_seconds = round(time.perf_counter() - started, 1)
        scopes = {"synonym_scopes": list(INDEX_SYNONYM_SCOPES)} if spec == "hpo" else {}
        ontology = Ontology.load(spec, **scopes)  # the dictionary `entitylink index` would build
        mentions, gold = (ncbi_queries if pair == "medic-ncbi" else id68_queries)(args.data, ontology)
        rows: dict[str, dict] = {}
        for keep in (1.0, *KEEP):  # 1.0: the untuned model
            encoder = Encoder(model_dir)
            interpolate_weights(encoder.model, base, keep)
            linker = Linker(DictionaryIndex.build(ontology, encoder, show_progress=False))
            result = evaluate(linker, mentions, gold, show_progress=False)
            label = "untuned" if keep == 1.0 else f"keep_base {keep}"
            rows[label] = {k: round(100 * v, 2) for k, v in result.metrics.items()}
            logger.info("%s, %s: %s", pair, label, rows[label])
        results[pair] = {"ontology": spec, "queries": len(mentions), "train_seconds": train_seconds, "rows": rows}
    table = [[pair, label, r["acc@1"], r["acc@5"]] for pair, res in results.items() for label, r in res["rows"].items()]
    print(markdown_table(["pair (dev)", "model", "acc@1", "acc@5"], table))
    write_record(args.out / "results.json", {"results": results}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
