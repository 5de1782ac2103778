"""A mention tagger: token classification (B/I/O) on the encoder family, trainable on a CPU.

Saved as a standard Hugging Face token-classification directory (safetensors;
``AutoModelForTokenClassification.from_pretrained(path)`` opens it) plus ``entitylink_tagger.json``.
The tagger proposes spans; the linker links them (:class:`~entitylink.link.annotate.Annotator`).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .._io import atomic_directory
from ..errors import ModelLoadError
from ..text.spans import Span, sentences
from .defaults import DEFAULT_MODEL, DEFAULT_PRECISION, Precision, TaggerConfig
from .hardware import resolve_device, resolve_precision
from .pretrained import open_pretrained, read_settings

logger = logging.getLogger(__name__)

TAGGER_CONFIG = "entitylink_tagger.json"
LABELS = ("O", "B", "I")
_DEFAULT = TaggerConfig()
IGNORE = -100

Example = tuple[str, Sequence[tuple[int, int]]]  # a text and its mention spans (character offsets)


class Tagger:
    """Finds mention spans in text with a token-classification model.

    Args:
        model: a saved tagger directory, or any encoder (a Hugging Face id, a local directory, or
            ``"default"``, the packaged all-MiniLM-L6-v2) to train one from.
        max_length: tokens per piece of a sentence (longer sentences are read in overlapping pieces).
        precision, device, batch_size: as for :class:`~entitylink.model.encoder.Encoder`.
    """

    def __init__(self, model: str | Path = DEFAULT_MODEL, *, max_length: int | None = None,
                 precision: Precision = DEFAULT_PRECISION, device: str | torch.device | None = None,
                 batch_size: int | None = None):
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
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and self.max_length > limit:
            self.max_length = limit  # pieces cannot be longer than the model's positions
        if not self.tokenizer.is_fast:
            raise ModelLoadError(f"tagger model {self.model_id!r} needs a fast tokenizer (character offsets)")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size or (256 if self.device.type == "cuda" else 32)
        self.model.to(self.device).eval()
        self.unsaved = False

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
        return f"Tagger(model={self.model_id!r}, max_length={self.max_length}, precision={self.precision!r})"

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

    def spans(self, text: str) -> list[Span]:
        return self.spans_batch([text])[0]

    def spans_batch(self, texts: Sequence[str]) -> list[list[Span]]:
        """Mention spans of each text (character offsets into it), sentence by sentence."""
        units = [(t, start, text[start:end]) for t, text in enumerate(texts) for start, end in sentences(text)]
        out: list[list[Span]] = [[] for _ in texts]
        order = sorted(range(len(units)), key=lambda i: -len(units[i][2]))
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            for b in range(0, len(order), self.batch_size):
                rows = order[b : b + self.batch_size]
                batch, owners, offsets = self.encode_pieces([units[i][2] for i in rows])
                labels = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits.argmax(-1).tolist()
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

    def save(self, path: str | Path, extra_config: dict | None = None) -> Path:
        """Write the tagger directory atomically; from then on ``model_id`` is that directory."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            config = {"max_length": self.max_length, "base_model": self.base_model, "labels": list(LABELS),
                      "training": self.training, **(extra_config or {})}
            (tmp / TAGGER_CONFIG).write_text(json.dumps(config, indent=2, default=str))
        self.model_id = str(path.resolve())
        self.unsaved = False
        return path


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
        out, previous_end = [], None
        for a, z in offsets:
            if z <= a:
                out.append(IGNORE)
                continue
            continuation = previous_end is not None and _continues(text, previous_end, a)
            previous_end = z
            if continuation:
                out.append(IGNORE)
                continue
            label = 0
            for s, e in mentions:
                if s <= a < e:
                    label = 1 if a == s else 2
                    break
            out.append(label)
        return out

    def fit(self, examples: Sequence[Example], dev: Sequence[Example] | None = None) -> Tagger:
        """Train on documents (or sentences) with mention spans; with ``dev``, keep the epoch whose
        spans score best there (exact-span F1)."""
        units = [u for u in sentence_examples(examples) if u[0].strip()]
        if not units:
            raise ValueError("no text to train the tagger on")
        rng = random.Random(self.seed)
        torch.manual_seed(self.seed)
        model, tagger = self.tagger.model, self.tagger
        steps = self.epochs * math.ceil(len(units) / self.batch_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=0.01)
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
                batch, owners, offsets = tagger.encode_pieces([text for text, _ in rows])
                labels = [self.labels(rows[o][0], rows[o][1], offsets[p]) for p, o in enumerate(owners)]
                batch = {k: v.to(tagger.device) for k, v in batch.items()}
                with torch.autocast(tagger.device.type, dtype=torch.bfloat16, enabled=tagger.precision == "bf16"):
                    logits = model(**batch).logits
                loss = torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, len(LABELS)), torch.tensor(labels, device=tagger.device).reshape(-1),
                    ignore_index=IGNORE)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
            model.eval()
            record = {"epoch": epoch + 1, "loss": round(sum(losses) / len(losses), 4),
                      "seconds": round(time.perf_counter() - started, 1)}
            if dev:
                record["dev"] = span_scores(tagger, dev)
                if record["dev"]["f1"] > best:
                    best, best_state = record["dev"]["f1"], copy.deepcopy(model.state_dict())
            self.history.append(record)
            logger.info("tagger epoch %d: %s", epoch + 1, record)
        if best_state is not None:
            model.load_state_dict(best_state)
        self.seconds = time.perf_counter() - started
        tagger.training = {"epochs": self.epochs, "learning_rate": self.learning_rate, "batch_size": self.batch_size,
                           "sentences": len(units), "seconds": round(self.seconds, 1), "history": self.history,
                           "best_dev_f1": best if dev else None}
        tagger.unsaved = True
        return tagger


def span_scores(tagger: Tagger, examples: Sequence[Example]) -> dict[str, float]:
    """Exact-span precision, recall and F1 of the tagger on texts with mention spans."""
    found = tagger.spans_batch([text for text, _ in examples])
    tp = predicted = gold = 0
    for (_, mentions), spans in zip(examples, found):
        want = {(a, z) for a, z in mentions}
        got = {(s.start, s.end) for s in spans}
        tp, predicted, gold = tp + len(want & got), predicted + len(got), gold + len(want)
    p, r = (tp / predicted if predicted else 0.0), (tp / gold if gold else 0.0)
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0}
