"""NCBI-disease benchmark with the BioSyn/SapBERT protocol, beside the published systems.

    python -m benchmarks.ncbi_disease --data ../shared/data --out results/ncbi

writes ``results.json`` (``{"system": {"acc@1", "acc@5", "n"}}`` on the test split with the standard
dictionary), ``results_full.json`` (every setting, the ablation, the dev-set choices and the error
analysis) and ``results.md`` (the tables). Settings are chosen on the dev split; the test split is
only reported. ``--quick`` runs the TF-IDF and untuned rows only.

Every text is encoded once per model: encodings are kept in memory for the run and, with ``--reuse``,
under ``OUT/cache/`` (one ``.npy`` + ``.json`` pair per model fingerprint) for the next run, as are the
tuned models (``OUT/models/``, reused when their training settings match).

Data layout under ``--data`` (see benchmarks/README.md for where to download it):
``ncbi-disease/NCBI{train,develop,test}set_corpus.txt`` and ``medic/medic_06Jul2012.txt``,
``medic/ncbi-spell-check.txt``.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._record import write_record
from entitylink import DictionaryIndex, Encoder, Linker, LinkingPolicy, Ontology, evaluate
from entitylink._io import atomic_write_text
from entitylink.index import HybridIndex, SparseIndex
from entitylink.model.trainer import MirrorTrainer
from entitylink.text.preprocess import Query, QueryPreprocessor, drop_unknown, read_spelling
from entitylink.text.pubtator import read_pubtator

logger = logging.getLogger("benchmarks.ncbi_disease")

SPLITS = {"train": "NCBItrainset_corpus.txt", "dev": "NCBIdevelopset_corpus.txt", "test": "NCBItestset_corpus.txt"}
PUBLISHED = {
    "BioSyn (Sung et al., ACL 2020; BioBERT, GPU) [published]": {"acc@1": 0.911, "acc@5": 0.939, "n": 960},
    "SapBERT (Liu et al., NAACL 2021; PubMedBERT, GPU) [published]": {"acc@1": 0.923, "acc@5": 0.955, "n": 960},
}


class Benchmark:
    """The corpus, the MEDIC dictionary and the queries of each split under one preprocessing."""

    def __init__(self, data: Path, preprocessor: QueryPreprocessor):
        self.data = Path(data)
        for name in SPLITS.values():
            if not (self.data / "ncbi-disease" / name).is_file():
                raise SystemExit(f"missing {self.data / 'ncbi-disease' / name}: see benchmarks/README.md for the data")
        self.medic = Ontology.load(f"medic:{self.data / 'medic' / 'medic_06Jul2012.txt'}")
        self.known_ids = {i for cid in self.medic.concept_ids for i in cid.split("|")}
        self.documents = {s: read_pubtator(self.data / "ncbi-disease" / f) for s, f in SPLITS.items()}
        self.preprocessor = preprocessor
        self.queries: dict[str, list[Query]] = {}
        self.dropped: dict[str, int] = {}
        for split, docs in self.documents.items():
            self.queries[split], self.dropped[split] = drop_unknown(preprocessor.queries(docs), self.known_ids)

    def mention_names(self, split: str) -> Ontology:
        """A split's (unsplit) mentions as extra dictionary names of their gold concept."""
        pairs = [(q.gold, q.parts[0]) for q in self.queries[split] if not q.is_composite and q.parts[0]]
        return Ontology.from_pairs(pairs, name=f"NCBI {split} mentions")

    def synonym_pairs(self, split: str = "train") -> list[tuple[str, str]]:
        """(mention, dictionary name of its gold concept) pairs for synonym-supervised training."""
        names = self.medic.frame.groupby("concept_id")["name"].apply(list).to_dict()
        by_id = {}
        for cid, concept_names in names.items():
            for part in cid.split("|"):
                by_id.setdefault(part, concept_names)
        pairs = []
        for q in self.queries[split]:
            if q.is_composite or "|" in q.gold or "+" in q.gold:
                continue
            for name in by_id.get(q.gold, [])[:3]:
                pairs.append((q.parts[0], name))
        return pairs


def score(linker: Linker, queries: list[Query]) -> dict:
    result = evaluate(linker, [q.text for q in queries], [q.gold for q in queries], ks=(1, 5), show_progress=False,
                      windows=[q.context for q in queries])
    return {**{k: round(v, 4) for k, v in result.metrics.items()}, "n": result.n, "_details": result.details}


def run_settings(make_index, bench: Benchmark, weights: tuple[float | None, ...] = (None,)) -> dict:
    """Evaluate one system in the four dictionary settings, growing one index step by step.

    dev: MEDIC + train mentions; test: MEDIC + train + dev mentions (the standard protocol);
    dev-medic / test-medic: MEDIC alone. With ``weights``, a dense index is also fused with
    TF-IDF at each weight (``None`` = dense alone); the result is then keyed by weight.
    """
    index = make_index(bench.medic)
    out: dict = {w: {} for w in weights}

    def evaluate_all(setting: str, split: str) -> None:
        for w in weights:
            linker = Linker(index if w is None else HybridIndex(index, sparse_weight=w))
            out[w][setting] = score(linker, bench.queries[split])

    evaluate_all("dev-medic", "dev")
    evaluate_all("test-medic", "test")
    if isinstance(index, SparseIndex):
        index = make_index(Ontology.concat([bench.medic, bench.mention_names("train")]))
    else:
        index.add(bench.mention_names("train"))
    evaluate_all("dev", "dev")
    if isinstance(index, SparseIndex):
        index = make_index(Ontology.concat([bench.medic, bench.mention_names("train"), bench.mention_names("dev")]))
    else:
        index.add(bench.mention_names("dev"))
    evaluate_all("test", "test")
    return out if weights != (None,) else out[None]


def dense(encoder: Encoder):
    return lambda onto: DictionaryIndex.build(onto, encoder, show_progress=False)


class EncodingCache:
    """Every text encoded once per model fingerprint; kept on disk under ``folder`` when it is given."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder
        self.tables: dict[str, dict[str, np.ndarray]] = {}

    def attach(self, encoder: Encoder) -> Encoder:
        """Make ``encoder.encode`` look texts up first (and remember the new ones)."""
        fingerprint = encoder.fingerprint()
        table = self.tables.setdefault(fingerprint, self._read(fingerprint))
        real = encoder.encode

        def encode(texts, batch_size=None, show_progress=None):
            single = isinstance(texts, str)
            items = [texts] if single else list(texts)
            missing = list(dict.fromkeys(t for t in items if t not in table))
            if missing:
                for text, vector in zip(missing, real(missing, batch_size=batch_size, show_progress=show_progress)):
                    table[text] = vector
            out = np.stack([table[t] for t in items]) if items else np.empty((0, encoder.dim), np.float32)
            return out[0] if single else out

        encoder.encode = encode  # type: ignore[method-assign]
        encoder.cache_fingerprint = fingerprint  # type: ignore[attr-defined]
        return encoder

    def save(self) -> None:
        if self.folder is None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        for fingerprint, table in self.tables.items():
            if not table:
                continue
            texts = list(table)
            np.save(self.folder / f"{fingerprint[:24]}.npy", np.stack([table[t] for t in texts]), allow_pickle=False)
            atomic_write_text(self.folder / f"{fingerprint[:24]}.json", json.dumps(texts, ensure_ascii=False))

    def _read(self, fingerprint: str) -> dict[str, np.ndarray]:
        if self.folder is None:
            return {}
        vectors, texts = self.folder / f"{fingerprint[:24]}.npy", self.folder / f"{fingerprint[:24]}.json"
        if not (vectors.is_file() and texts.is_file()):
            return {}
        names = json.loads(texts.read_text(encoding="utf-8"))
        matrix = np.load(vectors, allow_pickle=False)
        if len(names) != len(matrix):
            return {}
        logger.info("reusing %d cached encodings (%s)", len(names), vectors.name)
        return dict(zip(names, matrix))


def sparse(onto: Ontology) -> SparseIndex:
    return SparseIndex.build(onto)


def error_kind(row, query: Query, abbreviated: bool) -> str:
    """A coarse label of why a query failed (for the error table)."""
    mention = query.mention
    if query.is_composite or "|" in query.gold and re.search(r"\b(and|or)\b|,|/", mention):
        return "composite / coordination"
    if re.fullmatch(r"[A-Z0-9][A-Za-z0-9-]{0,7}s?", mention) and sum(c.isupper() for c in mention) >= 2:
        return "abbreviation not resolved" if not abbreviated else "abbreviation resolved, still wrong"
    if abbreviated:
        return "abbreviation resolved, still wrong"
    if not pd.isna(row["rank"]) and row["rank"] <= 5:
        return "gold in top 5, not first"
    predicted = str(row["predicted_name"] or "").lower()
    if predicted and predicted == query.parts[0]:
        return "exact name of another concept"
    if query.type == "Modifier":
        return "modifier (adjectival use)"
    if query.type == "DiseaseClass":
        return "disease class (too general / specific)"
    words = set(query.parts[0].split())
    if words & set(predicted.split()):
        return "wrong sibling (shares words)"
    return "synonym / paraphrase missing"


def error_analysis(details, queries: list[Query], preprocessor: QueryPreprocessor) -> list[tuple[str, int, list[str]]]:
    kinds: Counter = Counter()
    examples: dict[str, list[str]] = {}
    for (_, row), query in zip(details.iterrows(), queries):
        if row["hit@1"]:
            continue
        abbreviated = preprocessor.clean(query.mention) != " ".join(query.parts) and not query.is_composite
        kind = error_kind(row, query, abbreviated)
        kinds[kind] += 1
        examples.setdefault(kind, [])
        if len(examples[kind]) < 3:
            examples[kind].append(f"{query.mention} → {row['predicted_name']} ({row['predicted']}; gold {query.gold})")
    return [(k, n, examples[k]) for k, n in kinds.most_common(20)]


def ablation(data: Path, spelling: dict[str, str], encoder: Encoder | None) -> list[dict]:
    """Each preprocessing step's gain, added one at a time (TF-IDF and the untuned dense model)."""
    steps = [
        ("plain (lowercase, punctuation)", dict(abbreviations=None, split_composites=False, spelling={}), False),
        ("+ shared-name id join", dict(abbreviations=None, split_composites=False, spelling={}), True),
        ("+ spell-check list", dict(abbreviations=None, split_composites=False, spelling=spelling), True),
        ("+ abbreviations (scispacy)", dict(abbreviations="scispacy", split_composites=False, spelling=spelling), True),
        ("+ abbreviations (ours, Schwartz–Hearst)",
         dict(abbreviations="schwartz-hearst", split_composites=False, spelling=spelling), True),
        ("+ composite splitting",
         dict(abbreviations="schwartz-hearst", split_composites=True, spelling=spelling), True),
    ]
    rows = []
    for label, options, merge in steps:
        bench = Benchmark(data, QueryPreprocessor(**options))
        row = {"step": label, "n_test": len(bench.queries["test"])}
        systems = [("tfidf", lambda onto, m=merge: SparseIndex.build(onto, merge_shared_names=m))]
        if encoder is not None:
            systems.append(("dense", lambda onto, m=merge: DictionaryIndex.build(
                onto, encoder, merge_shared_names=m, show_progress=False)))
        for name, make in systems:
            res = run_settings(make, bench)
            for setting in ("dev", "test"):
                row[f"{name} {setting}"] = (res[setting]["acc@1"], res[setting]["acc@5"])
        logger.info("ablation %s: %s", label, row)
        rows.append(row)
    return rows


def markdown(results: dict, full: dict) -> str:
    lines = [
        "| system | test acc@1 | test acc@5 | dev acc@1 | test acc@1, MEDIC only | dev acc@1, MEDIC only |",
        "|---|---|---|---|---|---|",
    ]
    for name, figures in results.items():
        settings = full["systems"].get(name)
        if settings:
            lines.append(
                f"| {name} | {100 * figures['acc@1']:.1f} | {100 * figures['acc@5']:.1f} | "
                f"{100 * settings['dev']['acc@1']:.1f} | {100 * settings['test-medic']['acc@1']:.1f} | "
                f"{100 * settings['dev-medic']['acc@1']:.1f} |"
            )
        else:
            lines.append(f"| {name} | {100 * figures['acc@1']:.1f} | {100 * figures['acc@5']:.1f} | | | |")
    return "\n".join(lines) + "\n"


DETECTORS = ("schwartz-hearst", "scispacy")


def start_run(args) -> tuple[float, dict[str, str], EncodingCache]:
    """What every NCBI-disease script does first: logging, the spell-check list, the encoding cache."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    started = time.perf_counter()
    spelling = read_spelling(args.data / "medic" / "ncbi-spell-check.txt")
    return started, spelling, EncodingCache(args.out / "cache" if args.reuse else None)


def choose_abbreviation_detector(args, spelling: dict[str, str], cache: EncodingCache, choices: dict) -> Benchmark:
    """The abbreviation detector with the better dev acc@1 (mean of TF-IDF and the untuned CLS model)."""
    encoder = cache.attach(Encoder(args.model, pooling="cls"))
    benches, scores = {}, {}
    for detector in DETECTORS:
        try:
            bench = Benchmark(args.data, QueryPreprocessor(abbreviations=detector, spelling=spelling))
        except ImportError as err:  # scispacy is optional
            logger.info("abbreviation detector %s left out: %s", detector, err)
            continue
        figures = [run_settings(make, bench)["dev"]["acc@1"] for make in (sparse, dense(encoder))]
        benches[detector], scores[detector] = bench, {"tfidf": figures[0], "dense_cls": figures[1]}
        logger.info("abbreviations %s: dev acc@1 %s", detector, scores[detector])
    best = max(scores, key=lambda d: sum(scores[d].values()))
    choices["abbreviation detector (by dev acc@1, TF-IDF and untuned CLS)"] = {"chosen": best, **scores}
    return benches[best]


def tuned_model(args, label: str, options: dict, pairs, bench: Benchmark, pooling: str) -> tuple[Encoder, float]:
    """Tune a fresh copy of the model by one recipe, or, with --reuse, reopen the one an earlier run saved.

    Returns the encoder and the seconds its training took."""
    folder = args.out / "models" / re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    settings = {"n_names": args.train_names, "epochs": args.epochs, "seed": args.seed, "model": args.model,
                "pooling": pooling, "pairs": len(pairs or []), **options}
    record = folder / "benchmark_settings.json"
    if args.reuse and record.is_file() and json.loads(record.read_text()) == settings:
        logger.info("%s: reusing %s", label, folder)
        return Encoder(folder), json.loads((folder / "entitylink_training.json").read_text())["seconds"]
    encoder = Encoder(args.model, pooling=pooling)
    trainer = MirrorTrainer(encoder, n_names=args.train_names, epochs=args.epochs, seed=args.seed,
                            show_progress=False, keep_base=0.0, **options)  # tuned weights alone, as recorded
    trainer.fit(bench.medic, pairs=pairs)
    logger.info("%s: %d steps in %.0f s", label, len(trainer.history), trainer.seconds)
    if args.reuse:
        trainer.save(folder)
        atomic_write_text(record, json.dumps(settings, indent=2))
    return encoder, trainer.seconds


def save_test_linker(bench: Benchmark, encoder: Encoder, weight: float, folder: Path) -> Path | None:
    """The hybrid system with the test dictionary (MEDIC + train + dev mentions) and its policy, saved so
    that ``entitylink evaluate --corpus`` reproduces its row; not when the encoder was never saved."""
    if getattr(encoder, "unsaved", False):
        logger.info("hybrid linker not saved: its tuned model is not on disk (run with --reuse)")
        return None
    onto = Ontology.concat([bench.medic, bench.mention_names("train"), bench.mention_names("dev")])
    policy = LinkingPolicy(sparse_weight=weight, abbreviations=bench.preprocessor.abbreviations or "off")
    dense = DictionaryIndex.build(onto, encoder, show_progress=False)
    return Linker(HybridIndex(dense, sparse_weight=weight), policy).save(folder)


def calibration_report(settings: dict, out: Path) -> dict:
    """Calibrations of the top candidate's score fitted on dev, judged on test; ``out/reliability.png``."""
    from entitylink.link.calibration import Calibration, expected_calibration_error, plot_reliability

    dev, test = settings["dev"]["_details"], settings["test"]["_details"]
    dev, test = dev[dev["score"].notna()], test[test["score"].notna()]
    raw = np.clip(test["score"].to_numpy(float), 0, 1)
    right = test["hit@1"].to_numpy(bool)
    curves = {"raw score": (raw, right)}
    report = {"n_dev": len(dev), "n_test": len(test), "test_ece": {"raw score": expected_calibration_error(raw, right)}}
    for kind in ("isotonic", "platt"):
        calibration = Calibration.fit(dev["score"].to_numpy(float), dev["hit@1"].to_numpy(bool), kind=kind)
        probabilities = calibration(test["score"].to_numpy(float))
        curves[f"{kind}, fitted on dev"] = (probabilities, right)
        report["test_ece"][f"{kind}, fitted on dev"] = expected_calibration_error(probabilities, right)
    report["test_ece"] = {k: round(v, 4) for k, v in report["test_ece"].items()}
    plot_reliability(curves, out / "reliability.png")
    report["plot"] = "reliability.png"
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("results/ncbi"), help="output directory")
    parser.add_argument("--quick", action="store_true", help="TF-IDF and untuned MiniLM only")
    parser.add_argument("--no-ablation", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-names", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--model", default="default")
    parser.add_argument("--reuse", action="store_true",
                        help="keep encodings and tuned models under OUT and reuse those of an earlier run")
    args = parser.parse_args(argv)
    started, spelling, cache = start_run(args)
    choices: dict[str, object] = {}
    bench = choose_abbreviation_detector(args, spelling, cache, choices)
    preprocessor = bench.preprocessor
    counts = {s: len(q) for s, q in bench.queries.items()}
    composites = {s: sum(q.is_composite for q in qs) for s, qs in bench.queries.items()}
    logger.info("queries %s (dropped for ids missing from MEDIC: %s; split composites: %s)",
                counts, bench.dropped, composites)

    systems: dict[str, dict] = {}
    systems["TF-IDF char 2-3 grams (sparse)"] = run_settings(sparse, bench)

    pooled = {}
    for pooling in ("cls", "mean"):
        encoder = cache.attach(Encoder(args.model, pooling=pooling))
        pooled[pooling] = encoder
        systems[f"MiniLM untuned, {pooling.upper()} pooling"] = run_settings(dense(encoder), bench)
    best_pooling = max(pooled, key=lambda p: systems[f"MiniLM untuned, {p.upper()} pooling"]["dev"]["acc@1"])
    choices["pooling (by dev acc@1)"] = best_pooling

    tuned: dict[str, Encoder] = {"untuned": pooled[best_pooling]}
    if not args.quick:
        recipes = [
            ("Mirror-BERT (MEDIC names)", dict(mode="mirror"), None),
            ("synonym (MEDIC)", dict(mode="synonym"), None),
            ("synonym (MEDIC + NCBI train pairs)", dict(mode="synonym"), bench.synonym_pairs("train")),
            ("Mirror + synonym (MEDIC + NCBI train pairs)", dict(mode="both"), bench.synonym_pairs("train")),
        ]
        for label, options, pairs in recipes:
            encoder, seconds = tuned_model(args, label, options, pairs, bench, best_pooling)
            tuned[label] = cache.attach(encoder)
            systems[f"MiniLM + {label}"] = run_settings(dense(encoder), bench)
            systems[f"MiniLM + {label}"]["training_seconds"] = round(seconds, 1)

    # Hybrid: the dense system best on dev, fused with TF-IDF at the weight best on dev.
    dense_names = [n for n in systems if n.startswith("MiniLM")]
    best_dense = max(dense_names, key=lambda n: systems[n]["dev"]["acc@1"])
    label = best_dense.removeprefix("MiniLM + ").removeprefix("MiniLM ")
    encoder = tuned.get(label, pooled[best_pooling])
    weights = run_settings(dense(encoder), bench, weights=(0.1, 0.25, 0.5, 1.0))
    best_weight = max(weights, key=lambda w: weights[w]["dev"]["acc@1"])
    choices["hybrid: dense system (by dev acc@1)"] = best_dense
    choices["hybrid: sparse weight (by dev acc@1)"] = {str(w): weights[w]["dev"]["acc@1"] for w in weights}
    systems[f"hybrid: {best_dense} + {best_weight} x TF-IDF"] = weights[best_weight]
    saved = save_test_linker(bench, encoder, best_weight, args.out / "linker-test")

    best_overall = max(systems, key=lambda n: systems[n]["dev"]["acc@1"])
    choices["best system (by dev acc@1)"] = best_overall
    errors = error_analysis(systems[best_overall]["test"]["_details"], bench.queries["test"], preprocessor)

    ablation_rows = [] if args.no_ablation else ablation(args.data, spelling, pooled[best_pooling])
    args.out.mkdir(parents=True, exist_ok=True)
    calibration = calibration_report(systems[best_overall], args.out)
    logger.info("calibration of %s, test expected calibration error: %s", best_overall, calibration["test_ece"])

    results = {name: {k: v for k, v in s["test"].items() if not k.startswith("_")} for name, s in systems.items()}
    results.update(PUBLISHED)
    full = {
        "systems": {name: {setting: ({k: v for k, v in figures.items() if not k.startswith("_")}
                                     if isinstance(figures, dict) else figures)
                           for setting, figures in s.items()} for name, s in systems.items()},
        "published": PUBLISHED,
        "queries": counts, "dropped_unknown_ids": bench.dropped, "split_composites": composites,
        "choices_on_dev": choices,
        "errors_best_system_test": [{"kind": k, "count": n, "examples": ex} for k, n, ex in errors],
        "ablation": ablation_rows,
        "calibration_best_system": calibration,
        "saved_hybrid_linker": str(saved) if saved else None,
        "seconds": round(time.perf_counter() - started, 1),
    }
    cache.save()
    atomic_write_text(args.out / "results.json", json.dumps(results, indent=2))  # the shape others read: kept bare
    full = write_record(args.out / "results_full.json", full, argv)
    table = markdown(results, full)
    table += "\nErrors of the best system on test (acc@1 misses):\n\n| kind | count | examples |\n|---|---|---|\n"
    table += "".join(f"| {k} | {n} | {'; '.join(ex)} |\n" for k, n, ex in errors)
    if ablation_rows:
        cols = [c for c in ablation_rows[0] if c not in ("step", "n_test")]
        table += "\nAblation (acc@1 / acc@5):\n\n| step | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols) + "\n"
        for row in ablation_rows:
            cells = [f"{100 * row[c][0]:.1f} / {100 * row[c][1]:.1f}" for c in cols]
            table += f"| {row['step']} | " + " | ".join(cells) + " |\n"
    table += ("\nCalibration of the best system's top score (fitted on dev; expected calibration error on test, "
              "reliability.png): " + ", ".join(f"{k} {v:.3f}" for k, v in calibration["test_ece"].items()) + "\n")
    atomic_write_text(args.out / "results.md", table)
    print(table)
    print(f"queries: {counts}; dropped: {bench.dropped}; composites split: {composites}")
    print(f"dev choices: {json.dumps(choices, default=str)}")
    print(f"wrote {args.out}/results.json, results_full.json, results.md, reliability.png in {full['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
