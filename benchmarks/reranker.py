"""NCBI-disease with a cross-encoder reranker over the hybrid retriever (issue 18).

    python -m benchmarks.reranker --data ../shared/data --out benchmarks/results/reranker

The retriever is the best system of ``benchmarks.ncbi_disease`` (chosen there on dev): the packaged
MiniLM with CLS pooling + ``--sparse-weight`` × character TF-IDF. The reranker (a MiniLM cross-encoder)
is trained on NCBI-disease train mentions, whose candidate lists are mined leave-one-document-out
(MEDIC + the other train documents' mentions; ``--mining medic``: MEDIC alone), so a train mention never
finds itself, with dev lists (MEDIC + train mentions, the dev protocol) choosing
the best check. It is then scored on test with the standard dictionary (MEDIC + train + dev mentions)
and with MEDIC alone. Also timed: mentions/s when reranking the top 16 and the top 64.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from pathlib import Path

from benchmarks._record import markdown_table, write_record
from benchmarks.ncbi_disease import Benchmark, choose_abbreviation_detector, score, start_run
from entitylink import DictionaryIndex, Encoder, Linker, LinkingPolicy, Ontology
from entitylink.index import HybridIndex
from entitylink.link.rerank import lists_from_mentions
from entitylink.model.cross_encoder import CrossEncoder
from entitylink.model.defaults import RerankerConfig
from entitylink.model.reranker import RerankerTrainer

logger = logging.getLogger("benchmarks.reranker")


def hybrid_linker(onto: Ontology, encoder: Encoder, weight: float, policy: LinkingPolicy,
                  reranker: CrossEncoder | None = None) -> Linker:
    dense = DictionaryIndex.build(onto, encoder, show_progress=False)
    return Linker(HybridIndex(dense, sparse_weight=weight), policy.override(sparse_weight=weight), reranker=reranker)


def single_part(queries):
    return [q for q in queries if not q.is_composite and q.parts[0]]


def training_lists(bench: Benchmark, encoder: Encoder, weight: float, policy: LinkingPolicy, k: int,
                   mining: str, synonyms: int = 0) -> list:
    """Candidate lists of the train mentions, mined against MEDIC alone or leave-one-document-out.

    Leave-one-document-out: the dictionary is MEDIC + every train mention, and a mention may not
    find the names that only its own document contributed, so its list looks like a dev or test
    list (MEDIC + other documents' mentions) without containing itself.
    """
    train = single_part(bench.queries["train"])
    mentions, gold, windows = [q.parts[0] for q in train], [q.gold for q in train], [q.context for q in train]
    if mining == "medic":
        return lists_from_mentions(hybrid_linker(bench.medic, encoder, weight, policy), mentions, gold, k,
                                   synonyms=synonyms, windows=windows)
    linker = hybrid_linker(Ontology.concat([bench.medic, bench.mention_names("train")]), encoder, weight, policy)
    index = linker.index.dense
    position = {text: i for i, text in enumerate(index.texts)}
    medic_texts = set(bench.medic.entries(index.normalizer)["text"])
    sources: dict[int, set[str]] = {}
    for q in train:
        text = index.normalizer(q.parts[0])
        if text in position and text not in medic_texts:
            sources.setdefault(position[text], set()).add(q.pmid)
    own: dict[str, set[int]] = {}
    for pos, pmids in sources.items():
        if len(pmids) == 1:
            own.setdefault(next(iter(pmids)), set()).add(pos)
    return lists_from_mentions(linker, mentions, gold, k, hidden=[own.get(q.pmid, set()) for q in train],
                               synonyms=synonyms, windows=windows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/reranker"))
    parser.add_argument("--model", default="default", help="retriever and starting point of the cross-encoder")
    parser.add_argument("--sparse-weight", type=float, default=0.1, help="the retriever's (chosen on dev)")
    parser.add_argument("--k", type=int, default=16, help="candidates the reranker reads")
    parser.add_argument("--epochs", type=int, default=1)
    defaults = RerankerConfig()
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--retriever-weight", type=float, default=defaults.retriever_weight)
    parser.add_argument("--retriever-temperature", type=float, default=defaults.retriever_temperature)
    parser.add_argument("--checks", type=int, default=2, help="dev checks per epoch")
    parser.add_argument("--regulariser", choices=["kl", "l2"], default=defaults.regulariser)
    parser.add_argument("--context-chars", type=int, default=defaults.context_chars,
                        help="text read either side of each mention (xMEN: 128)")
    parser.add_argument("--candidate-synonyms", type=int, default=defaults.candidate_synonyms,
                        help="other names read after each candidate's name")
    parser.add_argument("--train-lists", type=int, default=None,
                        help="train on this many lists, sampled (default: every train mention)")
    parser.add_argument("--mining", choices=["leave-one-document-out", "medic"], default="leave-one-document-out",
                        help="the dictionary train lists are mined against: MEDIC + the other documents' train "
                             "mentions (the distribution dev and test lists come from), or MEDIC alone")
    parser.add_argument("--reuse", action="store_true", help="reuse OUT/reranker and cached encodings")
    args = parser.parse_args(argv)
    started, spelling, cache = start_run(args)
    choices: dict = {}
    bench: Benchmark = choose_abbreviation_detector(args, spelling, cache, choices)
    encoder = cache.attach(Encoder(args.model, pooling="cls"))
    policy = LinkingPolicy(k=5, rerank_k=args.k, abbreviations=bench.preprocessor.abbreviations or "off")

    train_lists = training_lists(bench, encoder, args.sparse_weight, policy, args.k, args.mining,
                                 args.candidate_synonyms)
    if args.train_lists and len(train_lists) > args.train_lists:
        train_lists = random.Random(0).sample(train_lists, args.train_lists)
    dev_dictionary = Ontology.concat([bench.medic, bench.mention_names("train")])
    dev_linker = hybrid_linker(dev_dictionary, encoder, args.sparse_weight, policy)
    dev = single_part(bench.queries["dev"])
    dev_lists = lists_from_mentions(dev_linker, [q.parts[0] for q in dev], [q.gold for q in dev], args.k,
                                    synonyms=args.candidate_synonyms, windows=[q.context for q in dev])
    in_list = sum(item.gold < len(item.names) for item in train_lists) / len(train_lists)
    logger.info("%d train lists (gold in the top %d: %.3f), %d dev lists", len(train_lists), args.k, in_list,
                len(dev_lists))

    folder = args.out / "reranker"
    if args.reuse and (folder / "entitylink_reranker.json").is_file():
        cross_encoder, trainer = CrossEncoder(folder), None
    else:
        cross_encoder = CrossEncoder(args.model, context_chars=args.context_chars, synonyms=args.candidate_synonyms)
        trainer = RerankerTrainer(cross_encoder, epochs=args.epochs, learning_rate=args.learning_rate,
                                  retriever_weight=args.retriever_weight, max_candidates=args.k,
                                  regulariser=args.regulariser,
                                  retriever_temperature=args.retriever_temperature,
                                  checks_per_epoch=args.checks)
        trainer.fit(train_lists, dev_lists)
        trainer.save(folder)
    cache.save()

    results, speed = {}, {}
    settings = {
        "dev": (dev_dictionary, "dev"),
        "test": (Ontology.concat([dev_dictionary, bench.mention_names("dev")]), "test"),
        "test-medic": (bench.medic, "test"),
    }
    for setting, (dictionary, split) in settings.items():
        linker = hybrid_linker(dictionary, encoder, args.sparse_weight, policy, reranker=cross_encoder)
        queries = bench.queries[split]
        plain = score(Linker(linker.index, policy.override(sparse_weight=args.sparse_weight)), queries)
        reranked = score(linker, queries)
        results[setting] = {"retriever": {k: v for k, v in plain.items() if not k.startswith("_")},
                            "reranked": {k: v for k, v in reranked.items() if not k.startswith("_")}}
        logger.info("%s: %s", setting, results[setting])
        if setting == "test":
            texts = [q.parts[0] for q in single_part(queries)]
            windows = [q.context for q in single_part(queries)]
            for k in (16, 64):
                timed = Linker(linker.index, policy.override(sparse_weight=args.sparse_weight, rerank_k=k),
                               reranker=cross_encoder)
                t0 = time.perf_counter()
                timed.link(texts, windows=windows)
                speed[f"mentions_per_s_rerank_{k}"] = round(len(texts) / (time.perf_counter() - t0), 1)
            t0 = time.perf_counter()
            Linker(linker.index, policy.override(sparse_weight=args.sparse_weight)).link(texts)
            speed["mentions_per_s_retriever_only"] = round(len(texts) / (time.perf_counter() - t0), 1)
            linker.save(args.out / "linker-test")  # index + reranker + policy, for `entitylink link`
    record = write_record(args.out / "results.json", {
        "results": results, "speed": speed, "choices_on_dev": choices,
        "training": trainer.training_record() if trainer is not None else "reused",
        "mining": args.mining, "train_lists": len(train_lists), "gold_in_train_lists": round(in_list, 4),
        "dev_lists": len(dev_lists),
        "seconds": round(time.perf_counter() - started, 1)}, argv)
    rows = [[s, f"{100 * r['retriever']['acc@1']:.1f} / {100 * r['retriever']['acc@5']:.1f}",
             f"{100 * r['reranked']['acc@1']:.1f} / {100 * r['reranked']['acc@5']:.1f}"] for s, r in results.items()]
    print(markdown_table(["setting", "retriever acc@1 / acc@5", "reranked acc@1 / acc@5"], rows))
    print(speed)
    print(f"wrote {args.out}/results.json in {record['seconds']:.0f} s ({record['machine']['cpu']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
