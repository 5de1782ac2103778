"""End-to-end annotation of NCBI-disease abstracts: find the disease mentions, link them, count (issue 19).

    python -m benchmarks.annotate --data ../shared/data --out benchmarks/results/annotate

writes ``OUT/results.json``:
``{system: {"document": {"p","r","f1"}, "mention_strict": {...}, "mention_relaxed": {...}, "docs_per_s": ...}}``
on the NCBI-disease test split (every setting chosen on dev: lexical matching, overlaps, sparse weight and
detection threshold), and ``OUT/results_full.json`` (the dev
sweeps, counts, provenance); with ``--no-tagger``, ``OUT/results_ontology_only.json`` and
``OUT/results_ontology_only_full.json`` instead, so a run without the taggers keeps the full run's files.
The ontology-only rows use MEDIC alone and no annotated text at all (the
weak tagger's labels are MEDIC names found in the train abstracts' text); the NCBI-trained tagger is
also scored with the linking literature's standard dictionary (MEDIC + train mentions for dev, + dev
mentions for test). Published rows are marked "[published]". The indexes are saved under
``OUT/index-*`` and the taggers under ``OUT/taggers/`` (git-ignored), so that each row can be
reproduced with ``entitylink evaluate-docs``.

Counting (see ``entitylink.link.doc_evaluation``): document = micro P/R/F1 over each abstract's set of
concept ids (DNorm/TaggerOne); mention_strict = same span and id; mention_relaxed = overlap and id.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from pathlib import Path

from benchmarks._record import markdown_table, write_record
from benchmarks.ncbi_disease import SPLITS, EncodingCache
from entitylink import DictionaryIndex, Encoder, Linker, LinkingPolicy, Ontology
from entitylink._io import atomic_write_text
from entitylink.index.hybrid import HybridIndex
from entitylink.link.annotate import Annotator, NameMatcher
from entitylink.link.doc_evaluation import score_annotations
from entitylink.link.policy import LEXICAL, OVERLAPS
from entitylink.model.defaults import DEFAULT_PRECISION, TaggerConfig
from entitylink.model.tagger import Tagger, TaggerTrainer
from entitylink.text.pubtator import read_pubtator

logger = logging.getLogger("benchmarks.annotate")

PUBLISHED = {
    "DNorm (Leaman et al., 2013) [published]": {"document": {"p": 0.803, "r": 0.763, "f1": 0.782}},
    "TaggerOne (Leaman & Lu, 2016) [published]": {"document": {"f1": 0.807}},
    "TaggerOne, PubTator Central table (Wei et al., 2019) [published]": {"document": {"f1": 0.837}},
    "MetaMap (DNorm's baseline) [published]": {"document": {"p": 0.502, "r": 0.665, "f1": 0.572}},
}
THRESHOLDS = (0.85, 0.9, 0.93, 0.95, 0.97, 0.99)
TAGGER_THRESHOLDS = (float("-inf"), 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


class CachedLinker:
    """A linker whose answers are remembered, so a threshold sweep links each window once."""

    def __init__(self, linker: Linker):
        self._linker, self._memo = linker, {}
        self.index, self.policy, self.reranker = linker.index, linker.policy, linker.reranker

    def __getattr__(self, name: str):
        return getattr(self._linker, name)  # link_within and the rest: the linker's own

    def link(self, texts, **kwargs):
        memo = self._memo.setdefault(json.dumps(kwargs, sort_keys=True, default=str), {})
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        if missing:
            memo.update(zip(missing, self._linker.link(missing, **kwargs)))
        return [memo[t] for t in texts]


def mention_names(documents) -> Ontology:
    """A corpus's single-concept mentions as extra dictionary names (the linking literature's standard
    dictionary adds the train mentions for dev, train + dev for test)."""
    return Ontology.from_mentions(documents)


def run(annotator: Annotator, documents) -> tuple[dict, float, list]:
    start = time.perf_counter()
    entities = list(annotator.annotate([d.text for d in documents]))
    seconds = time.perf_counter() - start
    return score_annotations(documents, entities), seconds, entities


def trained_tagger(args, label: str, examples, dev_examples) -> tuple[Tagger, float]:
    """Train a tagger (or, with --reuse, reopen the one an earlier run saved under OUT/taggers/)."""
    folder = args.out / "taggers" / label
    if args.reuse and (folder / "entitylink_tagger.json").is_file():
        tagger = Tagger(folder, precision=args.tagger_precision)
        return tagger, tagger.training["seconds"]
    tagger = Tagger(args.model, precision=args.tagger_precision)
    trainer = TaggerTrainer(tagger, epochs=args.tagger_epochs, show_progress=False)
    trainer.fit(examples, dev_examples)
    tagger.save(folder)
    logger.info("tagger %s: %s", label, trainer.history)
    return tagger, trainer.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/annotate"))
    parser.add_argument("--model", default="default", help="encoder of the MEDIC index (default: packaged MiniLM)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep and reuse encodings under OUT/cache and taggers under OUT/taggers")
    parser.add_argument("--no-tagger", action="store_true", help="leave out the two tagger rows")
    parser.add_argument("--tagger-epochs", type=int, default=TaggerConfig().epochs)
    parser.add_argument("--tagger-precision", default=DEFAULT_PRECISION,
                        help="of tagger training and tagging (bf16 trains slower than fp32 on CPUs without AMX)")
    parser.add_argument("--sparse-weights", type=float, nargs="+", default=[0.0, 0.1],
                        help="weights of the TF-IDF cosine (hybrid linking) tried on dev with each threshold; the "
                             "indexes are saved with their sparse half when one is above 0")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    started = time.perf_counter()
    documents = {split: read_pubtator(args.data / "ncbi-disease" / name) for split, name in SPLITS.items()}
    medic = Ontology.load(f"medic:{args.data / 'medic' / 'medic_06Jul2012.txt'}")
    cache = EncodingCache(args.out / "cache" if args.reuse else None)
    encoder = cache.attach(Encoder(args.model))
    dictionaries = {  # name: (dev dictionary, test dictionary)
        "MEDIC": (medic, medic),
        "MEDIC + corpus mentions": (Ontology.concat([medic, mention_names(documents["train"])]),
                                    Ontology.concat([medic, mention_names(documents["train"]),
                                                     mention_names(documents["dev"])])),
    }
    folders = {"MEDIC": ("index-medic", "index-medic"),
               "MEDIC + corpus mentions": ("index-medic-train", "index-medic-train-dev")}
    linkers: dict[str, tuple[Linker, Linker]] = {}
    hybrid = max(args.sparse_weights) > 0

    def build(ontology: Ontology, folder: Path) -> None:
        dense_index = DictionaryIndex.build(ontology, encoder, show_progress=False)
        Linker(HybridIndex(dense_index, sparse_weight=0.0) if hybrid else dense_index, LinkingPolicy()).save(folder)

    for name, (dev_onto, test_onto) in dictionaries.items():
        dev_dir, test_dir = (args.out / f for f in folders[name])
        build(dev_onto, dev_dir)
        if test_dir != dev_dir:
            build(test_onto, test_dir)
        linkers[name] = (Linker.load(dev_dir), Linker.load(test_dir))  # fresh encoders: their seconds are a user's
    cache.save()

    results: dict[str, dict] = {}
    full: dict[str, object] = {"dev_sweep": {}, "choices_on_dev": {}, "dictionaries": folders}
    systems = {"exact dictionary matching (baseline)": (dict(detector="exact"), "MEDIC"),
               "ontology only: exact + approximate matching": (dict(detector="dictionary"), "MEDIC")}
    if not args.no_tagger:
        def spans(split):
            return [(d.text, [(m.start, m.end) for m in d.mentions]) for d in documents[split]]

        matcher = NameMatcher.from_ontology(medic, linkers["MEDIC"][0].index.normalizer)
        weak = [(d.text, [(s.start, s.end) for s in matcher.find(d.text)]) for d in documents["train"]]
        for label, examples in (("weak", weak), ("ncbi-train", spans("train"))):
            tagger, seconds = trained_tagger(args, label, examples, spans("dev"))
            full["choices_on_dev"][f"tagger {label}: training"] = {"seconds": round(seconds, 1),
                                                                  "history": tagger.training["history"]}
            if label == "weak":
                systems["ontology only: tagger from weak labels (MEDIC names in NCBI train texts)"] = (
                    dict(detector="tagger", tagger=tagger), "MEDIC")
            else:
                systems["tagger trained on NCBI train, MEDIC dictionary"] = (dict(detector="tagger", tagger=tagger),
                                                                             "MEDIC")
                systems["tagger trained on NCBI train, MEDIC + corpus mentions dictionary"] = (
                    dict(detector="tagger", tagger=tagger), "MEDIC + corpus mentions")
    for label, (options, dictionary) in systems.items():
        dev_linker, test_linker = linkers[dictionary]
        weight = 0.0
        grid = THRESHOLDS if options["detector"] == "dictionary" else TAGGER_THRESHOLDS \
            if options["detector"] == "tagger" else (None,)
        lexicals = LEXICAL if options["detector"] != "tagger" else (LinkingPolicy.lexical,)
        overlaps = OVERLAPS if options["detector"] != "tagger" else (LinkingPolicy.overlaps,)
        weights = args.sparse_weights if options["detector"] != "exact" else (0.0,)
        sweep = {}
        for w in weights:
            tuned = CachedLinker(Linker(dev_linker.index, dev_linker.policy.override(sparse_weight=w)))
            for lexical in lexicals:
                annotator = Annotator(tuned, lexical=lexical, **options)
                for overlap, t in itertools.product(overlaps, grid):
                    annotator.overlaps = overlap
                    annotator.threshold = annotator.threshold if t is None else t
                    sweep[(w, lexical, overlap, t)] = run(annotator, documents["dev"])[0]
        full["dev_sweep"][label] = {f"sparse {w}, lexical {lx}, overlaps {ov}, threshold {t}": s
                                    for (w, lx, ov, t), s in sweep.items()}
        weight, lexical, overlap, threshold = max(sweep, key=lambda key: sweep[key]["document"]["f1"])
        options = {**options, "lexical": lexical, "overlaps": overlap,
                   **({"threshold": threshold} if threshold is not None else {})}
        chosen = sweep[(weight, lexical, overlap, threshold)]["document"]["f1"]
        full["choices_on_dev"][label] = {**{k: v for k, v in options.items() if k != "tagger"},
                                         "sparse_weight": weight, "dev_document_f1": chosen}
        logger.info("%s: dev choice %s", label, full["choices_on_dev"][label])
        scores, seconds, _ = run(Annotator(Linker(test_linker.index, test_linker.policy.override(sparse_weight=weight)),
                                           **options), documents["test"])
        settings = {k: (str(v.model_id) if k == "tagger" else v) for k, v in options.items()}
        settings["sparse_weight"] = weight
        results[label] = {**scores, "docs_per_s": round(len(documents["test"]) / seconds, 2),
                          "settings": {**settings, "dictionary": dictionary}}
        logger.info("%s: test %s", label, results[label])
    results.update(PUBLISHED)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "results_ontology_only" if args.no_tagger else "results"
    atomic_write_text(args.out / f"{stem}.json", json.dumps(results, indent=2))
    full = write_record(args.out / f"{stem}_full.json", {
        **full, "results": results, "documents": {s: len(d) for s, d in documents.items()},
        "seconds": round(time.perf_counter() - started, 1)}, argv)

    def cell(scores: dict | None, key: str) -> str:
        return f"{scores[key]:.3f}" if scores and key in scores else ""

    rows = [[label, cell(r.get("document"), "p"), cell(r.get("document"), "r"), cell(r.get("document"), "f1"),
             cell(r.get("mention_strict"), "f1"), cell(r.get("mention_relaxed"), "f1"), r.get("docs_per_s", "")]
            for label, r in results.items()]
    print(markdown_table(["system", "doc P", "doc R", "doc F1", "mention strict F1", "mention relaxed F1",
                          "abstracts/s"], rows))
    print(f"wrote {args.out}/{stem}.json in {full['seconds']:.0f} s ({full['machine']['cpu']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
