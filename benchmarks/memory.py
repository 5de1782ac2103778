"""Peak memory of `entitylink index` as the dictionary grows (issue 7).

    python -m benchmarks.memory --sizes 100000 1000000

For each size, writes a TSV ontology of that many distinct names (the embedded HPO's names, each also
with " type 1" ... " type K" appended, so lengths look like real names), then runs
``python -m entitylink index --model default`` on it in a fresh process and records that process's
peak RSS, its wall time and the size of the index it wrote. Encoding streams in chunks, so what grows
with the dictionary should be the index itself (vectors, graph, names), not the encoding.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._record import markdown_table, write_record
from entitylink.ontology import Ontology


def write_names(path: Path, n: int) -> None:
    base = sorted({name.lower() for name in Ontology.load("hpo").names})
    lines = ["concept_id\tname"]
    k = 0
    while len(lines) <= n:
        suffix = f" type {k}" if k else ""
        lines += [f"SIM:{k}:{i}\t{name}{suffix}" for i, name in enumerate(base)][: n + 1 - len(lines)]
        k += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def directory_gib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**30


def measure(n: int, workdir: Path, extra: list[str]) -> dict:
    names = workdir / f"names-{n}.tsv"
    write_names(names, n)
    out = workdir / f"index-{n}"
    command = ["/usr/bin/time", "-f", "%M %e", sys.executable, "-m", "entitylink", "-q", "index",
               "--ontology", f"tsv:{names}", "--model", "default", "--out", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"entitylink index failed for n={n}:\n{done.stderr[-2000:]}")
    peak_kib, seconds = done.stderr.strip().splitlines()[-1].split()
    meta = json.loads((out / "meta.json").read_text())
    return {"names": n, "entries": meta["count"], "faiss_factory": meta["faiss_factory"],
            "peak_rss_gib": round(int(peak_kib) / 2**20, 2), "seconds": round(float(seconds), 1),
            "index_dir_gib": round(directory_gib(out), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--search", default="auto", help="passed to entitylink index --search")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            rows.append(measure(n, Path(tmp), ["--search", args.search]))
            print(json.dumps(rows[-1]), flush=True)
    write_record(args.out, {"rows": rows, "search": args.search}, argv)
    print(markdown_table(["names", "index", "peak RSS GiB", "index on disk GiB", "seconds"],
                         ([f"{r['names']:,}", r["faiss_factory"], r["peak_rss_gib"], r["index_dir_gib"], r["seconds"]]
                          for r in rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
