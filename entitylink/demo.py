"""The main job on embedded defaults: HPO + packaged MiniLM, held-out synonyms, a few clinical phrases."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from ._atomic import atomic_write_text
from .encoder import Encoder
from .evaluation import evaluate
from .hardware import describe_cpu
from .index import DictionaryIndex
from .linker import Linker
from .ontology import Ontology

logger = logging.getLogger(__name__)

PHRASES = [
    "heart attack",
    "high blood pressure",
    "NIDDM",
    "low platelet count",
    "fits",
    "enlarged liver",
    "short stature",
    "hearing loss in both ears",
    "cleft lip",
    "too much sugar in the blood",
]


def run_demo(
    out: str | Path = "demo-output",
    *,
    model: str = "default",
    precision: str = "auto",
    max_queries: int | None = None,
    seed: int = 0,
    phrases: list[str] | None = None,
) -> dict:
    """Hold out one synonym per HPO concept, index the rest, report acc@1/@5, then link phrases.

    Writes the index and ``demo_results.json`` under ``out`` and returns the figures.
    """
    out = Path(out)
    started = time.perf_counter()
    hpo = Ontology.load("hpo")
    dictionary, queries = hpo.hold_out_synonyms(seed=seed, max_queries=max_queries)
    print(f"HPO: {len(hpo)} names of {hpo.n_concepts} concepts; "
          f"held out {len(queries)} synonyms, indexing the other {len(dictionary)} names")
    encoder = Encoder(model, precision=precision)
    print(f"encoder: {encoder}")
    t0 = time.perf_counter()
    index = DictionaryIndex.build(dictionary, encoder, show_progress=True)
    build_s = time.perf_counter() - t0
    index.save(out / "index")
    linker = Linker(index)
    t0 = time.perf_counter()
    result = evaluate(linker, queries["mention"].tolist(), queries["concept_id"].tolist(), show_progress=True)
    link_s = time.perf_counter() - t0
    print(f"\nheld-out HPO synonyms: acc@1 {100 * result.metrics['acc@1']:.1f}  "
          f"acc@5 {100 * result.metrics['acc@5']:.1f}  (n={result.n})")

    # The held-out synonyms go back into the dictionary before linking free text.
    index.add(Ontology.from_pairs(zip(queries["concept_id"], queries["mention"])), show_progress=False)
    table = linker.link_frame(phrases or PHRASES, k=3)
    print("\nclinical phrases -> HPO (top 3):")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    figures = {
        "heldout_hpo": result.to_dict(),
        "encoder": encoder.config() | {"precision": encoder.precision},
        "machine": describe_cpu(),
        "seconds": {"index_build": round(build_s, 1), "link_queries": round(link_s, 1),
                    "total": round(time.perf_counter() - started, 1)},
        "names_per_second": round(len(index) / build_s, 1),
    }
    atomic_write_text(out / "demo_results.json", json.dumps(figures, indent=2))
    result.details.to_csv(out / "heldout_details.tsv", sep="\t", index=False)
    print(f"\nwrote {out / 'index'}, {out / 'demo_results.json'}, {out / 'heldout_details.tsv'} "
          f"({figures['seconds']['total']:.0f} s in all)")
    return figures
