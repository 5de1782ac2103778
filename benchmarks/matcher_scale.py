"""Exact name matching at scale: build time, memory and abstracts/s of the candidate matchers (issue 19).

    python -m benchmarks.matcher_scale --data ../shared/data --sizes 100000 4000000

Dictionaries of ``N`` distinct normalised names (HPO + MEDIC names, then names made by appending a
dictionary word until ``N``; ``benchmarks.sparse_scale``'s generator) are matched against the
NCBI-disease test abstracts (or HPO names as text when the corpus is absent) by
  (a) ``NameMatcher`` (entitylink's: every sentence window of up to 12 tokens looked up in a set of
      normalised names, with the acronym and generic-word rules),
  (b) an Aho–Corasick automaton over the normalised names (``pyahocorasick``), word boundaries checked,
  (c) spaCy's ``PhraseMatcher`` on the ``LOWER`` attribute (skipped above ``--phrase-max`` names: its
      build tokenises every name).
Memory is the growth of the process's resident set while the matcher is built; for ``NameMatcher``
(Python sets, which can reuse memory the name generator freed) the Python memory it holds
(``tracemalloc``) where that is larger, its build time then including the tracing. A fresh process per
matcher and size, so one does not hide another's.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._record import markdown_table, write_record


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def documents(data: Path) -> list[str]:
    from entitylink import Ontology
    from entitylink.text.pubtator import read_pubtator

    test = data / "ncbi-disease" / "NCBItestset_corpus.txt"
    if test.is_file():
        return [d.text for d in read_pubtator(test)]
    names = Ontology.load("hpo").names
    return [". ".join(names[i : i + 20]) for i in range(0, 2000, 20)]


def measure(kind: str, size: int, data: Path) -> dict:
    """One matcher at one size, in this process."""
    from benchmarks.sparse_scale import names_of_size
    from entitylink.text.normalize import Normalizer

    names = names_of_size(size, data)
    texts = documents(data)
    normalizer = Normalizer()
    import tracemalloc

    before = rss_mib()
    traced = kind == "NameMatcher"  # Python sets can reuse memory the name generator freed: trace them
    if traced:
        tracemalloc.start()
    start = time.perf_counter()
    if kind == "NameMatcher":
        from entitylink.link.annotate import NameMatcher

        matcher = NameMatcher(names, names, normalizer)  # the names are normalised already
        find = matcher.find
    elif kind == "pyahocorasick":
        import ahocorasick

        automaton = ahocorasick.Automaton()
        for i, name in enumerate(names):
            automaton.add_word(f" {name} ", i)
        automaton.make_automaton()

        def find(text: str) -> list[tuple[int, int]]:
            padded = f" {normalizer(text)} "
            return [(end - len(names[i]) - 1, end) for end, i in automaton.iter(padded)]
    else:
        import spacy
        from spacy.matcher import PhraseMatcher

        nlp = spacy.blank("en")
        matcher = PhraseMatcher(nlp.vocab, attr="LOWER")
        for start_at in range(0, len(names), 10_000):
            matcher.add("N", list(nlp.tokenizer.pipe(names[start_at : start_at + 10_000])))

        def find(text: str) -> list[tuple[int, int]]:
            return [(a, z) for _, a, z in matcher(nlp.make_doc(text))]
    build = time.perf_counter() - start
    grown = rss_mib() - before
    if traced:
        grown = max(grown, tracemalloc.get_traced_memory()[0] / 2**20)
        tracemalloc.stop()
    start = time.perf_counter()
    found = sum(len(find(t)) for t in texts)
    seconds = time.perf_counter() - start
    return {"matcher": kind, "names": size, "build_s": round(build, 2), "memory_mib": round(grown, 1),
            "docs_per_s": round(len(texts) / seconds, 1), "matches": found, "documents": len(texts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 4_000_000])
    parser.add_argument("--phrase-max", type=int, default=1_000_000, help="largest size given to PhraseMatcher")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/matcher_scale.json"))
    parser.add_argument("--one", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.data)))
        return 0
    rows, skipped = [], []
    for size in args.sizes:
        for kind in ("NameMatcher", "pyahocorasick", "PhraseMatcher"):
            if kind == "PhraseMatcher" and size > args.phrase_max:
                skipped.append(f"{kind} at {size}: above --phrase-max")
                continue
            run = subprocess.run([sys.executable, "-m", "benchmarks.matcher_scale", "--data", str(args.data),
                                  "--one", kind, str(size)], capture_output=True, text=True)
            if run.returncode != 0:
                skipped.append(f"{kind} at {size}: {run.stderr.strip().splitlines()[-1] if run.stderr else 'failed'}")
                continue
            rows.append(json.loads(run.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    record = write_record(args.out, {"results": rows, "skipped": skipped}, argv)
    print(markdown_table(["matcher", "names", "build s", "memory MiB", "abstracts/s", "matches"],
                         ([r["matcher"], r["names"], r["build_s"], r["memory_mib"], r["docs_per_s"], r["matches"]]
                          for r in rows)))
    for line in skipped:
        print("skipped:", line)
    print(f"{record['machine']['cpu']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
