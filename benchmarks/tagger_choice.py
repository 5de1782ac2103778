"""Which rule should choose a tagger's settings on dev? Repeated halves of the dev split (issue 28).

    python -m benchmarks.tagger_choice --data ../shared/data --dir benchmarks/results/tagger_choice \
        --taggers crf-dictionary-features crf

``train-tagger --index --dev`` chooses a detection threshold, sparse weight, training mentions and composites
from 144 settings on 100 dev abstracts. This scores each choice rule of :func:`choose_setting` (``best``, what
``train-tagger`` does; ``smoothed``; ``bagged``) by dev alone: the dev documents are split in two halves many
times; a rule chooses on one half and is scored on the other (document F1, as `evaluate-docs` counts it). The same
is done for choosing the tagger too (the variant and its settings together, as the protocol chooses a row). The test
split is then annotated with the NCBI protocol's dictionary under what each rule chooses on the whole dev
split, and reported; nothing here is chosen on test.

Reads ``DIR/index-medic-train``, ``DIR/index-medic-train-dev`` and ``DIR/taggers/NAME`` as
``python -m benchmarks.tagger --out DIR`` leaves them. Writes ``DIR/choice-NAMES.json`` (``--out``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmarks._record import markdown_table, write_record
from entitylink.link.annotate import _TaggedOnce, document_f1, tagger_settings_grid

CHOICE_RULES = ("best", "smoothed", "bagged")
BAGS = 200  # bootstrap samples of the dev documents for the "bagged" rule


def choose_setting(settings: list[dict], counts: np.ndarray, rule: str = "best", seed: int = 0) -> int:
    """The index of the setting that ``rule`` chooses from per-document ``counts`` (as ``tagger_settings_grid``
    gives): ``best``, the highest document F1 (the first of equals: ``choose_tagger_settings``); ``smoothed``, the
    highest mean F1 of a threshold and its neighbours in the grid, the other settings the same; ``bagged``, the
    setting ``best`` chooses most often over bootstrap samples of the documents."""
    if rule not in CHOICE_RULES:
        raise ValueError(f"rule must be one of {', '.join(CHOICE_RULES)}, not {rule!r}")
    f1 = document_f1(counts)
    if rule == "best":
        return int(np.argmax(f1))
    if rule == "smoothed":
        groups: dict[tuple, list[int]] = {}
        for i, s in enumerate(settings):
            groups.setdefault(tuple((k, v) for k, v in s.items() if k != "detect_threshold"), []).append(i)
        smoothed = np.empty_like(f1)
        for members in groups.values():
            members.sort(key=lambda i: settings[i]["detect_threshold"])
            for j, i in enumerate(members):
                smoothed[i] = f1[members[max(j - 1, 0): j + 2]].mean()
        return int(np.lexsort((-f1, -smoothed))[0])
    rng = np.random.default_rng(seed)
    n = counts.shape[1]
    votes = np.zeros(len(f1))
    for _ in range(BAGS):
        weights = np.bincount(rng.integers(0, n, n), minlength=n)
        votes[np.argmax(document_f1(counts * weights[None, :, None]))] += 1
    return int(np.lexsort((-f1, -votes))[0])


class VotingTagger:
    """Taggers that vote: a span any ``least`` of them tag (the same characters) is kept (a probe). Give them as
    ``_TaggedOnce`` taggers, so that several ensembles of the same members tag each text once."""

    def __init__(self, members: list, least: int):
        self.members, self.least = members, least
        first = next((m for m in members if getattr(m, "dictionary", None)), members[0])
        self.dictionary, self.mentions, self.settings = first.dictionary, first.mentions, first.settings

    def spans_batch(self, texts, dictionary=None):
        from collections import Counter

        votes = [Counter() for _ in texts]
        for member in self.members:
            for counter, spans in zip(votes, member.spans_batch(texts, dictionary)):
                counter.update(spans)
        return [sorted((s for s, n in counter.items() if n >= self.least), key=lambda s: (s.start, s.end))
                for counter in votes]


def held_out_scores(settings: list[dict], counts: np.ndarray, splits: int, seed: int = 0) -> dict[str, list[float]]:
    """For each rule, the document F1 on one half of the documents of the setting it chooses on the other half,
    over ``splits`` random halvings (each half takes its turn)."""
    rng = np.random.default_rng(seed)
    n = counts.shape[1]
    scores: dict[str, list[float]] = {rule: [] for rule in CHOICE_RULES}
    for _ in range(splits):
        order = rng.permutation(n)
        halves = order[: n // 2], order[n // 2:]
        for choose_on, score_on in (halves, halves[::-1]):
            for rule in CHOICE_RULES:
                chosen = choose_setting(settings, counts[:, choose_on], rule)
                scores[rule].append(float(document_f1(counts[chosen, score_on])))
    return scores


def main(argv: list[str] | None = None) -> int:
    from entitylink.link.linker import Linker
    from entitylink.model.tagger import Tagger
    from entitylink.text.pubtator import read_pubtator

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--dir", type=Path, default=Path("benchmarks/results/tagger_choice"))
    parser.add_argument("--taggers", nargs="+", required=True, help="folder names under DIR/taggers")
    parser.add_argument("--vote", action="store_true",
                        help="also the taggers together, a span kept where at least M of them tag it, M = 1..N")
    parser.add_argument("--splits", type=int, default=200, help="random halvings of the dev documents")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    corpus = args.data / "ncbi-disease"
    dev = read_pubtator(corpus / "NCBIdevelopset_corpus.txt")
    test = read_pubtator(corpus / "NCBItestset_corpus.txt")
    dev_linker = Linker.load(args.dir / "index-medic-train")
    test_linker = Linker.load(args.dir / "index-medic-train-dev")

    grids: dict[str, tuple[list[dict], np.ndarray, np.ndarray]] = {}
    taggers = {name: _TaggedOnce(Tagger.open(args.dir / "taggers" / name)) for name in args.taggers}
    if args.vote:
        members = list(taggers.values())
        taggers.update({f"vote >= {m} of {len(members)}": VotingTagger(members, m) for m in range(1, len(members) + 1)})
    for name, tagger in taggers.items():
        settings, dev_counts = tagger_settings_grid(dev_linker, tagger, dev)
        test_settings, test_counts = tagger_settings_grid(test_linker, tagger, test)
        if test_settings != settings:
            raise SystemExit(f"{name}: the test grid differs from the dev grid")
        grids[name] = settings, dev_counts, test_counts
        print(f"{name}: {len(settings)} settings", file=sys.stderr, flush=True)

    results: dict[str, dict] = {}
    rows = []
    single = {name: grids[name] for name in args.taggers}
    joint = {"settings": [{**s, "tagger": name} for name, (settings, _, _) in single.items() for s in settings],
             "dev": np.concatenate([g[1] for g in single.values()]),
             "test": np.concatenate([g[2] for g in single.values()])}
    cases = {name: {"settings": s, "dev": d, "test": t} for name, (s, d, t) in grids.items()}
    if len(args.taggers) > 1:
        cases["the tagger chosen too"] = joint
    for case, grid in cases.items():
        held = held_out_scores(grid["settings"], grid["dev"], args.splits)
        results[case] = {}
        for rule in CHOICE_RULES:
            chosen = choose_setting(grid["settings"], grid["dev"], rule)
            mean, sd = float(np.mean(held[rule])), float(np.std(held[rule]))
            results[case][rule] = {"held_out_half_f1_mean": round(mean, 4), "held_out_half_f1_sd": round(sd, 4),
                                   "chosen": grid["settings"][chosen],
                                   "dev_f1": round(float(document_f1(grid["dev"][chosen])), 4),
                                   "test_f1": round(float(document_f1(grid["test"][chosen])), 4)}
            rows.append([case, rule, f"{mean:.4f} (sd {sd:.4f})",
                         results[case][rule]["dev_f1"], results[case][rule]["test_f1"],
                         ", ".join(f"{k} {v}" for k, v in grid["settings"][chosen].items())])
        best = np.asarray(held["best"])
        for rule in CHOICE_RULES[1:]:
            diff = np.asarray(held[rule]) - best  # the halvings overlap: counts, not a standard error
            results[case][rule]["against_best"] = {"mean_gain": round(float(diff.mean()), 4),
                                                   "wins": int((diff > 0).sum()), "ties": int((diff == 0).sum()),
                                                   "losses": int((diff < 0).sum())}
    print(markdown_table(["tagger", "rule", "held-out half F1 (mean, sd)", "dev F1", "test F1", "chosen on dev"],
                         rows))
    out = args.out or args.dir / f"choice-{'-'.join(args.taggers)}{'-vote' if args.vote else ''}.json"
    write_record(out, {"results": results, "splits": args.splits}, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
