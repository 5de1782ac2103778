"""A mention tagger: token classification (B/I/O) on the encoder family, trainable on a CPU.

Saved as a standard Hugging Face token-classification directory (safetensors;
``AutoModelForTokenClassification.from_pretrained(path)`` opens it) plus ``entitylink_tagger.json``
and, for the parts beside it, ``entitylink_tagger_head.safetensors``: a CRF layer over the word labels
(transition scores, Viterbi decoding) and dictionary features (an embedding of each token's
dictionary-match tag, B/I/O, added to its input embedding, as in Dic-Att-BiLSTM-CRF). The tagger
proposes spans; the linker links them (:class:`~entitylink.link.annotate.Annotator`), which also
supplies the dictionary.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._io import atomic_directory
from ..errors import ModelLoadError
from ..text.spans import Span, keep_non_overlapping, sentences
from .defaults import DEFAULT_MODEL, DEFAULT_PRECISION, Precision, TaggerConfig
from .hardware import resolve_device, resolve_precision
from .pretrained import open_pretrained, read_settings

logger = logging.getLogger(__name__)

TAGGER_CONFIG = "entitylink_tagger.json"
HEAD_FILE = "entitylink_tagger_head.safetensors"
DICTIONARY_FILE = "entitylink_tagger_dictionary.tsv"  # concept_id<TAB>name: the names its features read
MENTIONS_FILE = "entitylink_tagger_mentions.txt"  # the mentions of its annotated training corpus, one a line
LABELS = ("O", "B", "I")
_DEFAULT = TaggerConfig()
IGNORE = -100
HEAD_LEARNING_RATE_SCALE = 100  # the CRF's scores and dictionary embeddings start at zero: they learn faster

Example = tuple[str, Sequence[tuple[int, int]]]  # a text and its mention spans (character offsets)
Dictionary = Callable[[str], Sequence[tuple[int, int]]]  # a text -> the spans of dictionary names in it


class _Head(torch.nn.Module):
    """What the tagger adds beside the Hugging Face model: dictionary-tag embeddings and CRF scores."""

    def __init__(self, hidden: int, dictionary: bool, crf: bool):
        super().__init__()
        self.dictionary = torch.nn.Embedding(len(LABELS), hidden) if dictionary else None
        if self.dictionary is not None:
            torch.nn.init.zeros_(self.dictionary.weight)  # untrained, the features change nothing
        n = len(LABELS)
        self.transitions = torch.nn.Parameter(torch.zeros(n, n)) if crf else None
        self.start = torch.nn.Parameter(torch.zeros(n)) if crf else None
        self.end = torch.nn.Parameter(torch.zeros(n)) if crf else None


class Tagger:
    """Finds mention spans in text with a token-classification model.

    Args:
        model: a saved tagger directory, or any encoder (a Hugging Face id, a local directory, or
            ``"default"``, the packaged all-MiniLM-L6-v2) to train one from.
        max_length: tokens per piece of a sentence (longer sentences are read in overlapping pieces).
        precision, device, batch_size: as for :class:`~entitylink.model.encoder.Encoder`.
        crf: decode word labels with a CRF layer (trained with it) instead of each word's best label.
        dictionary_features: read each token's dictionary-match tag (the ``dictionary`` given to
            :meth:`spans_batch` and to training).
        A saved tagger keeps its own ``crf`` and ``dictionary_features``; the options set a new one's.
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, max_length: int | None = None,
                 precision: Precision = DEFAULT_PRECISION, device: str | torch.device | None = None,
                 batch_size: int | None = None, crf: bool = _DEFAULT.crf,
                 dictionary_features: bool = _DEFAULT.dictionary_features):
        from transformers import AutoModelForTokenClassification

        if precision == "int8":
            raise ValueError("the tagger runs in torch: precision must be 'auto', 'fp32' or 'bf16'")
        self.model_id = str(model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # a fresh head starts the same every time, whatever ran before
            self.tokenizer, self.model, path = open_pretrained(
                self.model_id, AutoModelForTokenClassification, "tagger", num_labels=len(LABELS),
                id2label=dict(enumerate(LABELS)), label2id={label: i for i, label in enumerate(LABELS)})
        saved = read_settings(path, TAGGER_CONFIG, "tagger")
        self.max_length = max_length or saved.get("max_length", _DEFAULT.max_length)
        self.base_model = saved.get("base_model", self.model_id)
        self.training: dict | None = saved.get("training")
        # the detection threshold and sparse weight annotation uses with this tagger (chosen on dev when trained)
        self.settings: dict = dict(saved.get("settings") or {"detect_threshold": _DEFAULT.detect_threshold,
                                                              "sparse_weight": _DEFAULT.sparse_weight})
        if saved:
            crf, dictionary_features = bool(saved.get("crf")), bool(saved.get("dictionary_features"))
        self.head = _Head(self.model.config.hidden_size, dictionary_features, crf)
        if saved and (path / HEAD_FILE).is_file():
            from safetensors.torch import load_file

            try:
                self.head.load_state_dict(load_file(str(path / HEAD_FILE)))
            except (RuntimeError, OSError) as err:
                raise ModelLoadError(f"{path / HEAD_FILE}: unreadable tagger head ({err})") from None
        elif saved and (crf or dictionary_features):
            raise ModelLoadError(f"{path}: the tagger's settings name a CRF or dictionary features but "
                                 f"{HEAD_FILE} is missing")
        # the dictionary a tagger with dictionary features was trained with, carried with it so that
        # annotation reads the same features whatever the index: (concept_id, name) pairs
        self.dictionary: list[tuple[str, str]] | None = _read_dictionary(path / DICTIONARY_FILE) \
            if saved and (path / DICTIONARY_FILE).is_file() else None
        # the distinct mentions of the annotated corpus it was trained on (None: weak labels, or not kept)
        self.mentions: list[str] | None = (path / MENTIONS_FILE).read_text(encoding="utf-8").splitlines() \
            if saved and (path / MENTIONS_FILE).is_file() else None
        self._warned = False
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and self.max_length > limit:
            self.max_length = limit  # pieces cannot be longer than the model's positions
        if not self.tokenizer.is_fast:
            raise ModelLoadError(f"tagger model {self.model_id!r} needs a fast tokenizer (character offsets)")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size or (256 if self.device.type == "cuda" else 32)
        self.model.to(self.device).eval()
        self.head.to(self.device)
        self.unsaved = False

    @property
    def crf(self) -> bool:
        return self.head.transitions is not None

    @property
    def dictionary_features(self) -> bool:
        return self.head.dictionary is not None

    @classmethod
    def open(cls, path: str | Path, option: str = "tagger", **options) -> Tagger:
        """A tagger saved by :meth:`save`, with a one-line error naming ``option`` and the path when
        ``path`` is no such directory, is no tagger directory or holds no weights."""
        from ..errors import EntityLinkError

        folder = Path(path)
        if not folder.is_dir():
            raise EntityLinkError(f"{option} {path}: no such directory (make one with `entitylink train-tagger`)")
        if not (folder / TAGGER_CONFIG).is_file():
            raise EntityLinkError(f"{option} {path}: not a tagger directory (no {TAGGER_CONFIG}; make one with "
                                  "`entitylink train-tagger`)")
        if not any(folder.glob("*.safetensors")) and not (folder / "pytorch_model.bin").is_file():
            raise EntityLinkError(f"{option} {path}: the tagger directory holds no model weights (*.safetensors)")
        if not (folder / "config.json").is_file():
            raise EntityLinkError(f"{option} {path}: the tagger directory holds no config.json")
        return cls(folder, **options)

    def __repr__(self) -> str:
        return (f"Tagger(model={self.model_id!r}, max_length={self.max_length}, precision={self.precision!r}, "
                f"crf={self.crf}, dictionary_features={self.dictionary_features})")

    # ---------------------------------------------------------------- features
    def encode_pieces(self, texts: Sequence[str]) -> tuple[dict, list[int], list[list[tuple[int, int]]]]:
        """Tokenise sentences into pieces: the batch, which text each piece is from, and each token's
        character offsets in its text ((0, 0) for special tokens)."""
        batch = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, stride=16,
                               return_overflowing_tokens=True, return_offsets_mapping=True, padding=True,
                               return_tensors="pt")
        owners = batch.pop("overflow_to_sample_mapping").tolist()
        offsets = [[tuple(pair) for pair in row] for row in batch.pop("offset_mapping").tolist()]
        return batch, owners, offsets

    def spans(self, text: str, dictionary: Dictionary | None = None) -> list[Span]:
        return self.spans_batch([text], dictionary)[0]

    def spans_batch(self, texts: Sequence[str], dictionary: Dictionary | None = None) -> list[list[Span]]:
        """Mention spans of each text (character offsets into it), sentence by sentence; ``dictionary``
        gives the name matches a tagger with dictionary features reads."""
        if self.dictionary_features and dictionary is None and not self._warned:
            logger.warning("tagger %s reads dictionary features but was given no dictionary: it tags less well",
                           self.model_id)
            self._warned = True
        units = [(t, start, text[start:end]) for t, text in enumerate(texts) for start, end in sentences(text)]
        out: list[list[Span]] = [[] for _ in texts]
        order = sorted(range(len(units)), key=lambda i: -len(units[i][2]))
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            for b in range(0, len(order), self.batch_size):
                rows = order[b : b + self.batch_size]
                sentences_ = [units[i][2] for i in rows]
                batch, owners, offsets = self.encode_pieces(sentences_)
                starts = [word_starts(sentences_[o], offsets[p]) for p, o in enumerate(owners)]
                emissions = self.emissions(batch, self.dictionary_tags(sentences_, owners, offsets, dictionary))
                labels = self.decode_labels(emissions, starts)
                per_sentence: dict[int, dict[tuple[int, int], int]] = {}
                for piece, owner in enumerate(owners):
                    tokens = per_sentence.setdefault(owner, {})
                    for offset, label in zip(offsets[piece], labels[piece]):
                        if offset[1] > offset[0]:
                            tokens[offset] = label  # a later, overlapping piece sees more context: it wins
                for owner, tokens in per_sentence.items():
                    doc, start, sentence = units[rows[owner]]
                    for a, z in decode(sentence, sorted(tokens.items())):
                        out[doc].append(Span(start + a, start + z, texts[doc][start + a : start + z]))
        return [sorted(spans, key=lambda s: s.start) for spans in out]

    def dictionary_tags(self, texts: Sequence[str], owners: Sequence[int], offsets: list[list[tuple[int, int]]],
                        dictionary: Dictionary | None) -> torch.Tensor | None:
        """Each token's dictionary tag (B/I/O of the longest, leftmost names ``dictionary`` finds), as a tensor
        shaped like the pieces; ``None`` for a tagger without dictionary features."""
        if not self.dictionary_features:
            return None
        found = {o: _longest(dictionary(texts[o])) if dictionary is not None else [] for o in set(owners)}
        width = max((len(row) for row in offsets), default=0)
        tags = torch.zeros(len(offsets), width, dtype=torch.long)
        for piece, owner in enumerate(owners):
            for t, (a, z) in enumerate(offsets[piece]):
                if z > a:
                    tags[piece, t] = _bio(a, found[owner])
        return tags.to(self.device)

    def emissions(self, batch: dict, tags: torch.Tensor | None) -> torch.Tensor:
        """Per-token label scores (pieces × tokens × labels), with gradients."""
        inputs = {k: v.to(self.device) for k, v in batch.items()}
        if tags is not None:
            ids = inputs.pop("input_ids")
            inputs["inputs_embeds"] = self.model.get_input_embeddings()(ids) + self.head.dictionary(tags)
        return self.model(**inputs).logits

    def decode_labels(self, emissions: torch.Tensor, starts: list[list[bool]]) -> list[list[int]]:
        """A label per token: the CRF's best sequence over the word-starting tokens (each word's other tokens
        take its label), or each token's best label without a CRF."""
        best = emissions.argmax(-1).tolist()
        if not self.crf:
            return best
        scores = emissions.float().cpu()
        head = [x.detach().float().cpu() for x in (self.head.transitions, self.head.start, self.head.end)]
        for piece, flags in enumerate(starts):
            positions = [t for t, flag in enumerate(flags) if flag]
            if positions:
                for t, label in zip(positions, viterbi(scores[piece, positions], *head)):
                    best[piece][t] = label
        return best

    def save(self, path: str | Path, extra_config: dict | None = None) -> Path:
        """Write the tagger directory atomically; from then on ``model_id`` is that directory."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            config = {"max_length": self.max_length, "base_model": self.base_model, "labels": list(LABELS),
                      "crf": self.crf, "dictionary_features": self.dictionary_features, "settings": self.settings,
                      "training": self.training, **(extra_config or {})}
            (tmp / TAGGER_CONFIG).write_text(json.dumps(config, indent=2, default=str))
            if self.dictionary is not None:
                (tmp / DICTIONARY_FILE).write_text("".join(f"{cid}\t{name}\n" for cid, name in self.dictionary),
                                                   encoding="utf-8")
            if self.mentions is not None:
                (tmp / MENTIONS_FILE).write_text("".join(f"{m}\n" for m in self.mentions), encoding="utf-8")
            if self.crf or self.dictionary_features:
                from safetensors.torch import save_file

                save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
                          str(tmp / HEAD_FILE))
        self.model_id = str(path.resolve())
        self.unsaved = False
        return path


def _read_dictionary(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        cid, tab, name = line.partition("\t")
        if not tab or not cid or not name:
            raise ModelLoadError(f"{path}:{number}: expected concept_id<TAB>name")
        pairs.append((cid, name))
    return pairs


def decode(text: str, tokens: list[tuple[tuple[int, int], int]]) -> list[tuple[int, int]]:
    """Character spans from per-token labels: a word takes its first token's label; B opens a span,
    I continues one (or opens it), O closes it."""
    words: list[list[int]] = []  # [start, end, label]
    for (a, z), label in tokens:
        if words and _continues(text, words[-1][1], a):
            words[-1][1] = z  # a continuation piece of the same word
        else:
            words.append([a, z, label])
    spans: list[tuple[int, int]] = []
    open_span: list[int] | None = None
    for a, z, label in words:
        name = LABELS[label]
        if name == "B" or (name == "I" and open_span is None):
            if open_span is not None:
                spans.append((open_span[0], open_span[1]))
            open_span = [a, z]
        elif name == "I":
            open_span[1] = z  # type: ignore[index]
        elif open_span is not None:
            spans.append((open_span[0], open_span[1]))
            open_span = None
    if open_span is not None:
        spans.append((open_span[0], open_span[1]))
    return spans


def _continues(text: str, previous_end: int, start: int) -> bool:
    """Whether a token starting at ``start`` continues the word of the token that ended at ``previous_end``."""
    return start == previous_end and start > 0 and text[start - 1].isalnum() and text[start].isalnum()


def word_starts(text: str, offsets: Sequence[tuple[int, int]]) -> list[bool]:
    """Which tokens begin a word (the tokens that carry a word's label)."""
    out, previous_end = [], None
    for a, z in offsets:
        if z <= a:
            out.append(False)
            continue
        out.append(not (previous_end is not None and _continues(text, previous_end, a)))
        previous_end = z
    return out


def _longest(spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Non-overlapping spans, longest first, then leftmost."""
    kept = keep_non_overlapping((Span(a, z, "") for a, z in set(spans)), rank=lambda s: (s.start - s.end, s.start))
    return [(s.start, s.end) for s in kept]


def _bio(start: int, spans: Sequence[tuple[int, int]]) -> int:
    """The label of a word starting at ``start``: B at a span's start, I inside one, else O."""
    for s, e in spans:
        if s <= start < e:
            return 1 if start == s else 2
    return 0


def crf_log_likelihood(emissions: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
                       transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Log-likelihood of each label sequence (rows × positions; ``mask`` marks real positions, each row's
    first is real) under a linear-chain CRF."""
    rows = torch.arange(emissions.shape[0], device=emissions.device)
    score = start[labels[:, 0]] + emissions[rows, 0, labels[:, 0]]
    alpha = start[None] + emissions[:, 0]
    last = labels[:, 0]
    for t in range(1, emissions.shape[1]):
        on = mask[:, t]
        step = transitions[last, labels[:, t]] + emissions[rows, t, labels[:, t]]
        score = score + torch.where(on, step, torch.zeros_like(step))
        last = torch.where(on, labels[:, t], last)
        nxt = torch.logsumexp(alpha[:, :, None] + transitions[None] + emissions[:, t, None, :], dim=1)
        alpha = torch.where(on[:, None], nxt, alpha)
    return score + end[last] - torch.logsumexp(alpha + end[None], dim=1)


def viterbi(emissions: torch.Tensor, transitions: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> list[int]:
    """The best label sequence of one row of emissions (positions × labels) under the CRF."""
    score, back = start + emissions[0], []
    for t in range(1, emissions.shape[0]):
        total = score[:, None] + transitions
        score, pointer = total.max(0)
        score = score + emissions[t]
        back.append(pointer)
    best = [int((score + end).argmax())]
    for pointer in reversed(back):
        best.append(int(pointer[best[-1]]))
    return best[::-1]


def sentence_examples(examples: Sequence[Example]) -> list[Example]:
    """Documents with mention spans cut into sentences with spans relative to each (a mention across a
    sentence end stays whole: the sentence is extended to hold it)."""
    out: list[Example] = []
    for text, mentions in examples:
        bounds = sentences(text)
        merged: list[list[int]] = []
        for a, z in bounds:
            if merged and any(s < merged[-1][1] < e for s, e in mentions):
                merged[-1][1] = z
            else:
                merged.append([a, z])
        for a, z in merged:
            inside = [(s - a, e - a) for s, e in mentions if a <= s and e <= z]
            out.append((text[a:z], inside))
    return out


class TaggerTrainer:
    """Trains a :class:`Tagger` on texts with mention spans (an annotated corpus, or weak labels).

    Args:
        tagger: the tagger to train (in place).
        epochs, learning_rate, batch_size, warmup_share, seed: the optimisation (AdamW, linear decay).
        show_progress: a progress bar per epoch.
    """

    def __init__(self, tagger: Tagger, *, epochs: int = _DEFAULT.epochs, learning_rate: float = _DEFAULT.learning_rate,
                 batch_size: int = _DEFAULT.batch_size, warmup_share: float = _DEFAULT.warmup_share,
                 seed: int = _DEFAULT.seed, show_progress: bool | None = None):
        if epochs < 1 or batch_size < 1 or learning_rate <= 0:
            raise ValueError(f"epochs and batch_size must be positive and learning_rate > 0, got {epochs}, "
                             f"{batch_size} and {learning_rate}")
        self.tagger = tagger
        self.epochs, self.learning_rate, self.batch_size = epochs, learning_rate, batch_size
        self.warmup_share, self.seed, self.show_progress = warmup_share, seed, show_progress
        self.history: list[dict] = []
        self.seconds = 0.0

    def labels(self, text: str, mentions: Sequence[tuple[int, int]], offsets: list[tuple[int, int]]) -> list[int]:
        """B/I/O per token (first token of each word; other tokens and special tokens are ignored)."""
        return [_bio(a, mentions) if first else IGNORE for (a, _), first in zip(offsets, word_starts(text, offsets))]

    def loss(self, emissions: torch.Tensor, labels: list[list[int]]) -> torch.Tensor:
        """Cross-entropy per labelled token, or with a CRF its negative log-likelihood per labelled token."""
        target = torch.tensor(labels, device=emissions.device)
        if not self.tagger.crf:
            return torch.nn.functional.cross_entropy(emissions.float().reshape(-1, len(LABELS)), target.reshape(-1),
                                                     ignore_index=IGNORE)
        keep = [[t for t, label in enumerate(row) if label != IGNORE] for row in labels]
        rows = [i for i, positions in enumerate(keep) if positions]
        width = max(len(keep[i]) for i in rows)
        index = torch.zeros(len(rows), width, dtype=torch.long, device=emissions.device)
        mask = torch.zeros(len(rows), width, dtype=torch.bool, device=emissions.device)
        for r, i in enumerate(rows):
            index[r, : len(keep[i])] = torch.tensor(keep[i])
            mask[r, : len(keep[i])] = True
        picked = emissions.float()[rows][torch.arange(len(rows))[:, None], index]
        gold = torch.gather(target[rows], 1, index).clamp(min=0)
        head = self.tagger.head
        return -crf_log_likelihood(picked, gold, mask, head.transitions, head.start, head.end).sum() / mask.sum()

    def fit(self, examples: Sequence[Example], dev: Sequence[Example] | None = None,
            dictionary: Dictionary | None = None) -> Tagger:
        """Train on documents (or sentences) with mention spans; with ``dev``, keep the epoch whose
        spans score best there (exact-span F1). ``dictionary`` finds the names a tagger with dictionary
        features reads (needed by one)."""
        units = [u for u in sentence_examples(examples) if u[0].strip()]
        if not units:
            raise ValueError("no text to train the tagger on")
        if self.tagger.dictionary_features and dictionary is None:
            raise ValueError("a tagger with dictionary features needs a dictionary to train with")
        rng = random.Random(self.seed)
        torch.manual_seed(self.seed)
        model, tagger = self.tagger.model, self.tagger
        steps = self.epochs * math.ceil(len(units) / self.batch_size)
        optimizer = torch.optim.AdamW([{"params": list(model.parameters()), "lr": self.learning_rate},
                                       {"params": list(tagger.head.parameters()),
                                        "lr": self.learning_rate * HEAD_LEARNING_RATE_SCALE}], weight_decay=0.01)
        warmup = max(1, int(self.warmup_share * steps))
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup))))
        best, best_state = -1.0, None
        started = time.perf_counter()
        show = self.show_progress
        for epoch in range(self.epochs):
            model.train()
            order = list(range(len(units)))
            rng.shuffle(order)
            losses = []
            for b in tqdm(range(0, len(order), self.batch_size), desc=f"tagger epoch {epoch + 1}", unit="batch",
                          disable=show is False, leave=False):
                rows = [units[i] for i in order[b : b + self.batch_size]]
                texts = [text for text, _ in rows]
                batch, owners, offsets = tagger.encode_pieces(texts)
                labels = [self.labels(rows[o][0], rows[o][1], offsets[p]) for p, o in enumerate(owners)]
                with torch.autocast(tagger.device.type, dtype=torch.bfloat16, enabled=tagger.precision == "bf16"):
                    emissions = tagger.emissions(batch, tagger.dictionary_tags(texts, owners, offsets, dictionary))
                loss = self.loss(emissions, labels)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(model.parameters()) + list(tagger.head.parameters()), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
            model.eval()
            record = {"epoch": epoch + 1, "loss": round(sum(losses) / len(losses), 4),
                      "seconds": round(time.perf_counter() - started, 1)}
            if dev:
                record["dev"] = span_scores(tagger, dev, dictionary)
                if record["dev"]["f1"] > best:
                    best = record["dev"]["f1"]
                    best_state = copy.deepcopy((model.state_dict(), tagger.head.state_dict()))
            self.history.append(record)
            logger.info("tagger epoch %d: %s", epoch + 1, record)
        if best_state is not None:
            model.load_state_dict(best_state[0])
            tagger.head.load_state_dict(best_state[1])
        self.seconds = time.perf_counter() - started
        tagger.training = {"epochs": self.epochs, "learning_rate": self.learning_rate, "batch_size": self.batch_size,
                           "crf": tagger.crf, "dictionary_features": tagger.dictionary_features,
                           "sentences": len(units), "seconds": round(self.seconds, 1), "history": self.history,
                           "best_dev_f1": best if dev else None}
        tagger.unsaved = True
        return tagger


def span_scores(tagger: Tagger, examples: Sequence[Example], dictionary: Dictionary | None = None) -> dict[str, float]:
    """Exact-span precision, recall and F1 of the tagger on texts with mention spans."""
    found = tagger.spans_batch([text for text, _ in examples], dictionary)
    tp = predicted = gold = 0
    for (_, mentions), spans in zip(examples, found):
        want = {(a, z) for a, z in mentions}
        got = {(s.start, s.end) for s in spans}
        tp, predicted, gold = tp + len(want & got), predicted + len(got), gold + len(want)
    p, r = (tp / predicted if predicted else 0.0), (tp / gold if gold else 0.0)
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}
