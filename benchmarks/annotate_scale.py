"""Annotation at corpus scale: one process against Ray workers on this machine (issue 29).

    python -m benchmarks.annotate_scale --data ../shared/data --index benchmarks/results/tagger/index-medic-train-dev \
        --copies 13 --out benchmarks/results/annotate_scale.json

The NCBI-disease abstracts (train + dev + test, 792) are repeated ``--copies`` times with distinct ids
into one JSONL file (13 copies: 10,296 abstracts), then annotated twice with the same command line,
``entitylink annotate --index I --input X --output Y``: in this process, and with ``--engine ray
--workers N``. Reported: abstracts/s of each, Ray's overhead (its wall time over the single process's,
start-up included), whether the outputs are identical, and each Ray worker's peak resident memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from benchmarks._record import markdown_table, write_record
from entitylink.apps.cli import main as entitylink
from entitylink.text.pubtator import read_pubtator

SPLITS = ("NCBItrainset_corpus.txt", "NCBIdevelopset_corpus.txt", "NCBItestset_corpus.txt")


def worker_memory(stop: threading.Event, peaks: dict[int, float]) -> None:
    """Peak RSS (MiB) of every Ray worker process of this machine, sampled until ``stop``."""
    import psutil

    while not stop.wait(0.5):
        for proc in psutil.process_iter(["pid", "name", "cmdline"]):
            try:
                command = " ".join(proc.info["cmdline"] or [])
                if "ray::" in command or "default_worker.py" in command:
                    rss = proc.memory_info().rss / 2**20
                    peaks[proc.info["pid"]] = max(peaks.get(proc.info["pid"], 0.0), rss)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue


def compare(one: Path, two: Path) -> dict:
    """Whether two JSONL outputs hold the same documents, spans and concepts, and how far apart their scores are."""
    same, largest = True, 0.0
    with open(one, encoding="utf-8") as a, open(two, encoding="utf-8") as b:
        for x, y in zip(a, b, strict=True):
            x, y = json.loads(x), json.loads(y)
            keys = [[(e["start"], e["end"], e["concept_id"]) for e in doc["entities"]] for doc in (x, y)]
            same = same and x["id"] == y["id"] and keys[0] == keys[1]
            if keys[0] == keys[1]:
                largest = max([largest, *(abs(e["score"] - f["score"]) for e, f in zip(x["entities"], y["entities"]))])
    return {"identical_spans_and_concepts": same, "max_score_difference": largest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--copies", type=int, default=13)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--detector", choices=["dictionary", "exact"], default="dictionary")
    parser.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                        help="bf16 scores depend a little on which texts are encoded together; fp32 ones do not")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/annotate_scale"),
                        help="where the input and the two outputs are written (git-ignored)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/annotate_scale.json"))
    args = parser.parse_args(argv)
    documents = [d for name in SPLITS for d in read_pubtator(args.data / "ncbi-disease" / name)]
    args.work.mkdir(parents=True, exist_ok=True)
    corpus = args.work / "abstracts.jsonl"
    with open(corpus, "w", encoding="utf-8") as handle:
        for copy in range(args.copies):
            for d in documents:
                handle.write(json.dumps({"id": f"{d.pmid}-{copy}", "text": d.text}) + "\n")
    n = len(documents) * args.copies
    common = ["-q", "annotate", "--index", str(args.index), "--input", str(corpus), "--input-format", "jsonl",
              "--detector", args.detector, "--precision", args.precision]
    runs: dict[str, dict] = {}
    for label, extra in (("one process", []), (f"ray, {args.workers} workers", ["--engine", "ray", "--workers",
                                                                                 str(args.workers)])):
        output = args.work / ("one.jsonl" if not extra else "ray.jsonl")
        stop, peaks = threading.Event(), {}
        sampler = threading.Thread(target=worker_memory, args=(stop, peaks), daemon=True)
        sampler.start()
        started = time.perf_counter()
        if entitylink([*common, "--output", str(output), *extra]) != 0:
            raise SystemExit(f"annotate failed: {label}")
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        runs[label] = {"seconds": round(seconds, 1), "abstracts_per_s": round(n / seconds, 1),
                       "worker_peak_rss_mib": sorted(round(v) for v in peaks.values() if v > 200)}
        print(f"{label}: {n} abstracts in {seconds:.0f} s", file=sys.stderr)
    one, two = (args.work / "one.jsonl").read_bytes(), (args.work / "ray.jsonl").read_bytes()
    comparison = compare(args.work / "one.jsonl", args.work / "ray.jsonl")
    ray_label = f"ray, {args.workers} workers"
    overhead = runs[ray_label]["seconds"] / runs["one process"]["seconds"] - 1
    record = write_record(args.out, {"abstracts": n, "detector": args.detector, "precision": args.precision,
                                     "runs": runs, "ray_overhead": round(overhead, 3), "identical_outputs": one == two,
                                     **comparison}, argv)
    print(markdown_table(["run", "seconds", "abstracts/s", "worker peak RSS (MiB)"],
                         [[k, r["seconds"], r["abstracts_per_s"], r["worker_peak_rss_mib"] or "-"]
                          for k, r in runs.items()]))
    print(f"Ray overhead {100 * overhead:+.1f}%; identical outputs: {record['identical_outputs']} (spans and "
          f"concepts: {comparison['identical_spans_and_concepts']}, largest score difference "
          f"{comparison['max_score_difference']:.2g})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
