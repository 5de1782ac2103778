"""Encoder speed: names/s of our encoder in fp32 and with precision=auto, and the agreement of the two.

    python -m benchmarks.encode_speed --n 4000 --out benchmarks/results/encode_speed.json

Encodes the first ``--n`` HPO names (offline) after a warm-up. Issue 7's fuller comparison
(plain transformers loop, sentence-transformers, other backends) builds on this.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from entitylink import Encoder, Ontology
from entitylink._atomic import atomic_write_text
from entitylink.hardware import describe_cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--model", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/encode_speed.json"))
    args = parser.parse_args(argv)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    names = Ontology.load("hpo").names[: args.n]
    results, vectors = {}, {}
    for precision in ("fp32", "auto"):
        encoder = Encoder(args.model, precision=precision)
        encoder.encode(names[:256], show_progress=False)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            vectors[precision] = encoder.encode(names, show_progress=False)
            times.append(time.perf_counter() - start)
        best = min(times)
        results[precision] = {"resolved": encoder.precision, "seconds": round(best, 2),
                              "names_per_second": round(len(names) / best, 1)}
    cosine = (vectors["fp32"] * vectors["auto"]).sum(1)
    record = {
        "names": len(names), "results": results,
        "speedup_auto_vs_fp32": round(results["auto"]["names_per_second"] / results["fp32"]["names_per_second"], 2),
        "min_cosine_auto_vs_fp32": round(float(cosine.min()), 6),
        "machine": describe_cpu(), "date": time.strftime("%Y-%m-%d"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))
    assert np.isfinite(cosine).all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
