"""The main job on embedded defaults: HPO + packaged MiniLM, held-out synonyms, a few clinical phrases."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from .._io import atomic_write_text
from ..index.dense import DictionaryIndex
from ..link.annotate import Annotator
from ..link.evaluation import evaluate
from ..link.linker import Linker
from ..link.policy import ANNOTATION_DEFAULTS
from ..model.defaults import DEFAULT_MODEL, DEFAULT_PRECISION
from ..model.encoder import Encoder
from ..model.hardware import describe_cpu
from ..model.trainer import MirrorTrainer
from ..ontology import Ontology
from ..ontology.obo import HPO_PHENOTYPES

logger = logging.getLogger(__name__)

PARAGRAPH = (
    "A 6-year-old boy with short stature and an enlarged liver was seen for recurrent fits. "
    "His mother reported hearing loss in both ears since infancy and a low platelet count on two visits. "
    "Non-insulin-dependent diabetes mellitus (NIDDM) runs in the family; his father's NIDDM was diagnosed at 40."
)
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
    model: str = DEFAULT_MODEL,
    precision: str = DEFAULT_PRECISION,
    max_queries: int | None = None,
    seed: int = 0,
    train_names: int = 3000,
    train_epochs: int = 1,
    phrases: list[str] | None = None,
) -> dict:
    """Train a little, index, link, evaluate: the main job on HPO and the packaged MiniLM.

    One synonym of each HPO concept with two or more names is held out; the rest is the
    dictionary. The encoder is scored on the held-out synonyms before and after a short
    Mirror-BERT tuning on ``train_names`` dictionary names (``0`` skips it); the tuned
    model and its index are saved under ``out`` with ``demo_results.json``.
    """
    out = Path(out)
    started = time.perf_counter()
    hpo = Ontology.load("hpo", roots=[HPO_PHENOTYPES])  # no modifier terms: "Recurrent" is not a mention
    dictionary, queries = hpo.hold_out_synonyms(seed=seed, max_queries=max_queries)
    print(f"HPO phenotypic abnormalities ({HPO_PHENOTYPES}): {len(hpo)} names of {hpo.n_concepts} concepts; "
          f"held out {len(queries)} synonyms, indexing the other {len(dictionary)} names")
    encoder = Encoder(model, precision=precision)
    print(f"encoder: {encoder}")
    mentions, gold = queries["mention"].tolist(), queries["concept_id"].tolist()
    t0 = time.perf_counter()
    index = DictionaryIndex.build(dictionary, encoder, show_progress=True)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    before = evaluate(Linker(index), mentions, gold, show_progress=True)
    link_s = time.perf_counter() - t0
    print(f"\n[untuned] held-out HPO synonyms: {before}")
    result, train_figures = before, None
    if train_names:
        # Self-supervised: trained on dictionary names only, never on the held-out synonyms.
        trainer = MirrorTrainer(encoder, mode="mirror", n_names=train_names, epochs=train_epochs, seed=seed)
        trainer.fit(dictionary)
        trainer.save(out / "model")
        train_figures = {"names": train_names, "epochs": train_epochs, "seconds": round(trainer.seconds, 1),
                         "names_per_second": round(trainer.history[-1]["names_per_s"], 1),
                         "precision": trainer.precision, "final_loss": round(trainer.history[-1]["loss"], 4)}
        print(f"Mirror-BERT: {train_names} names x {train_epochs} epoch in {trainer.seconds:.0f} s "
              f"({train_figures['names_per_second']:.0f} names/s, {trainer.precision})")
        index = DictionaryIndex.build(dictionary, encoder, show_progress=True)
        result = evaluate(Linker(index), mentions, gold, show_progress=True)
        print(f"\n[Mirror-BERT tuned] held-out HPO synonyms: {result}")
    linker = Linker(index)
    linker.save(out / "index")

    # The held-out synonyms go back into the dictionary before linking free text.
    index.add(Ontology.from_pairs(zip(queries["concept_id"], queries["mention"])), show_progress=False)
    table = linker.link_frame(phrases or PHRASES, k=3)
    print("\nclinical phrases -> HPO (top 3):")
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    # annotated with the detection settings `entitylink index` saves for phenotypes (chosen on ID-68)
    phenotypes = Linker(index, linker.policy.override(entity_type="Phenotype", **ANNOTATION_DEFAULTS["Phenotype"]))
    entities = Annotator(phenotypes).annotate_one(PARAGRAPH)
    print(f"\nannotating a clinical paragraph (mentions found from the ontology alone):\n{PARAGRAPH}\n")
    for e in entities:
        print(f"  {e.start:>4}-{e.end:<4} {e.text!r:<40} {e.concept_id}  {e.candidates[0].name}  "
              f"({e.score:.3f}, {e.source})")
    figures = {
        "heldout_hpo_untuned": before.to_dict(),
        "heldout_hpo": result.to_dict(),
        "annotated_paragraph": [e.to_dict() | {"source": e.source} for e in entities],
        "training": train_figures,
        "encoder": encoder.config() | {"precision": encoder.precision},
        "machine": describe_cpu(),
        "seconds": {"index_build": round(build_s, 1), "link_queries": round(link_s, 1),
                    "total": round(time.perf_counter() - started, 1)},
        "encode_names_per_second": round(len(dictionary) / build_s, 1),
    }
    atomic_write_text(out / "demo_results.json", json.dumps(figures, indent=2))
    result.details.to_csv(out / "heldout_details.tsv", sep="\t", index=False)
    print(f"\nwrote {out / 'model'}, {out / 'index'}, {out / 'demo_results.json'}, {out / 'heldout_details.tsv'} "
          f"({figures['seconds']['total']:.0f} s in all)")
    return figures
