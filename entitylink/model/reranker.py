"""Training a cross-encoder to re-score a retriever's candidate lists (listwise, with a "none of these").

Each example is a mention with the retriever's top k candidates and a "none of these" candidate. The
reranker corrects the retriever rather than replacing it: candidate i's logit is
``s_i / T + f(mention, name_i)``, with ``s_i`` the retriever's score, ``T`` the retriever temperature and
``f`` the cross-encoder; "none of these" enters at ``s_1 / T − 1 + f(mention, "none of these")``, one
below the retriever's best. Untrained, the reranker keeps the retriever's ranking. The loss is the
cross-entropy of the softmax over the k + 1 logits with the gold as the target ("none of these" when the
gold is not in the list, so NIL is learnt), plus ``retriever_weight`` × a term that keeps the ranking
near the retriever's where the labels say little: KL(retriever's softmax ‖ reranker's softmax) over the
k real candidates (``regulariser="kl"``), or xMEN's rank regulariser, the mean squared distance of the
reranker's logits from the retriever's (``"l2"``: here the cross-encoder's residual ``f``).

A reranker may read the mention in its context (``left [START] mention [END] right``) and each candidate
as its name followed by other names of its concept (:class:`~entitylink.model.cross_encoder.CrossEncoder`'s
``context_chars`` and ``synonyms``), as xMEN's does.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .cross_encoder import CrossEncoder
from .defaults import REGULARISERS, RerankerConfig
from .hardware import describe_cpu

logger = logging.getLogger(__name__)

RERANKER_TRAINING = "entitylink_reranker_training.json"


@dataclass
class CandidateList:
    """One training or scoring example: a mention, its candidates (best names) and where the gold is.

    ``gold`` is the index of the right candidate, or ``len(names)`` when none is right (NIL); ``None``
    when unknown (scoring only). ``names`` are what the reranker reads of each candidate (its name, and
    its synonyms for a reranker that reads them).
    """

    mention: str
    names: list[str]
    retriever_scores: list[float]
    gold: int | None = None
    concept_ids: list[str] = field(default_factory=list)
    context: tuple[str, str] | None = None  # the text before and after the mention


_DEFAULT = RerankerConfig()


class RerankerTrainer:
    """Listwise training of a :class:`CrossEncoder` on candidate lists (see the module docs).

    With ``dev`` lists, the weights of the check with the best dev accuracy are kept (and the
    retriever's own dev accuracy, the order of the lists, is recorded beside them).
    """

    def __init__(
        self,
        cross_encoder: CrossEncoder,
        *,
        epochs: int = _DEFAULT.epochs,
        lists_per_batch: int = _DEFAULT.lists_per_batch,
        learning_rate: float = _DEFAULT.learning_rate,
        weight_decay: float = _DEFAULT.weight_decay,
        warmup_share: float = _DEFAULT.warmup_share,
        retriever_weight: float = _DEFAULT.retriever_weight,
        retriever_temperature: float = _DEFAULT.retriever_temperature,
        regulariser: str = _DEFAULT.regulariser,
        max_candidates: int = _DEFAULT.max_candidates,
        seed: int = _DEFAULT.seed,
        checks_per_epoch: int = 1,
        show_progress: bool | None = None,
    ):
        if epochs < 1 or lists_per_batch < 1 or max_candidates < 1:
            raise ValueError("epochs, lists_per_batch and max_candidates must be at least 1")
        if regulariser not in REGULARISERS:
            raise ValueError(f"regulariser must be one of {REGULARISERS}, not {regulariser!r}")
        if retriever_temperature <= 0:
            raise ValueError(f"retriever_temperature must be positive, not {retriever_temperature}")
        self.cross_encoder = cross_encoder
        self.config = RerankerConfig(epochs=epochs, lists_per_batch=lists_per_batch, learning_rate=learning_rate,
                                     weight_decay=weight_decay, warmup_share=warmup_share,
                                     retriever_weight=retriever_weight, retriever_temperature=retriever_temperature,
                                     regulariser=regulariser, max_candidates=max_candidates, seed=seed,
                                     context_chars=cross_encoder.context_chars,
                                     candidate_synonyms=cross_encoder.synonyms)
        self.checks_per_epoch = max(1, checks_per_epoch)
        self.show_progress = show_progress
        self.history: list[dict[str, float]] = []
        self.checks: list[dict[str, float]] = []
        self.seconds: float | None = None

    # ---------------------------------------------------------------- training
    def loss(self, lists: Sequence[CandidateList]) -> torch.Tensor:
        """The mean listwise loss of a batch of lists."""
        cfg, ce = self.config, self.cross_encoder
        mentions, names, sizes = [], [], []
        for item in lists:
            k = min(len(item.names), cfg.max_candidates)
            mentions += [ce.mention_text(item.mention, item.context)] * (k + 1)
            names += item.names[:k] + [ce.nil_text]
            sizes.append(k)
        with torch.autocast(ce.device.type, dtype=torch.bfloat16, enabled=ce.precision == "bf16"):
            scores = ce.logits(ce.tokenize(mentions, names)).float()
        total, start = scores.new_zeros(()), 0
        for item, k in zip(lists, sizes):
            prior = torch.tensor(_prior(item.retriever_scores[:k], cfg.retriever_temperature), device=scores.device)
            row = scores[start : start + k + 1] + prior
            start += k + 1
            gold = item.gold if item.gold is not None and item.gold < k else k  # beyond the cut: NIL
            total = total + F.cross_entropy(row[None], torch.tensor([gold], device=row.device))
            if cfg.retriever_weight and cfg.regulariser == "l2":
                # xMEN's rank regulariser: the logits stay near the retriever's (here: the residual near 0)
                total = total + cfg.retriever_weight * (row[:k] - prior[:k]).pow(2).mean()
            elif cfg.retriever_weight and k > 1:
                target = torch.softmax(torch.tensor(item.retriever_scores[:k], device=row.device)
                                       / cfg.retriever_temperature, dim=0)
                total = total + cfg.retriever_weight * F.kl_div(torch.log_softmax(row[:k], dim=0), target,
                                                                reduction="sum")
        return total / len(lists)

    def fit(self, lists: Sequence[CandidateList], dev: Sequence[CandidateList] | None = None) -> RerankerTrainer:
        """Train on ``lists`` (each with a ``gold``); returns ``self``."""
        cfg = self.config
        lists = [item for item in lists if item.gold is not None and item.names]
        if not lists:
            raise ValueError("no candidate lists with a gold position to train on")
        self.cross_encoder.retriever_temperature = cfg.retriever_temperature
        rng = random.Random(cfg.seed)
        torch.manual_seed(cfg.seed)
        model = self.cross_encoder.model
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        steps_per_epoch = -(-len(lists) // cfg.lists_per_batch)
        total = steps_per_epoch * cfg.epochs
        warmup = max(1, int(cfg.warmup_share * total))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))))
        check_every = max(1, steps_per_epoch // self.checks_per_epoch)
        best_state, best_dev = None, -1.0
        if dev:
            retriever = float(np.mean([item.gold == 0 for item in dev]))
            self.checks.append({"step": 0, "dev_acc@1_retriever": retriever})
        started, step = time.perf_counter(), 0
        show = True if self.show_progress is None else self.show_progress
        with tqdm(total=total, unit="step", desc="training reranker", disable=not show) as bar:
            for epoch in range(cfg.epochs):
                order = list(range(len(lists)))
                rng.shuffle(order)
                model.train()
                for b in range(steps_per_epoch):
                    batch = [lists[i] for i in order[b * cfg.lists_per_batch : (b + 1) * cfg.lists_per_batch]]
                    loss = self.loss(batch)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                    schedule.step()
                    step += 1
                    rate = step * cfg.lists_per_batch / max(time.perf_counter() - started, 1e-9)
                    self.history.append({"step": step, "epoch": epoch, "loss": float(loss.item()),
                                         "lists_per_s": rate})
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}", lists_s=f"{rate:.1f}")
                    if dev and (step % check_every == 0 or step == total):
                        accuracy = self.accuracy(dev)
                        self.checks.append({"step": step, "dev_acc@1": accuracy})
                        logger.info("reranker step %d: dev acc@1 %.4f", step, accuracy)
                        if accuracy > best_dev:
                            best_dev, best_state = accuracy, copy.deepcopy(model.state_dict())
                        model.train()
        model.eval()
        if best_state is not None:
            model.load_state_dict(best_state)
            if best_dev < self.checks[0]["dev_acc@1_retriever"]:
                logger.warning("the reranker's best dev acc@1 %.4f is below the retriever's own %.4f",
                               best_dev, self.checks[0]["dev_acc@1_retriever"])
        self.seconds = time.perf_counter() - started
        self.cross_encoder.unsaved = True
        return self

    def accuracy(self, lists: Sequence[CandidateList]) -> float:
        """Share of lists whose best-scored candidate (among the k + "none of these") is the gold."""
        k = self.config.max_candidates
        ranked = rerank_lists(self.cross_encoder, lists, k)
        hits = [int(np.argmax(probs)) == (item.gold if item.gold is not None and item.gold < len(probs) - 1
                                          else len(probs) - 1)
                for item, probs in zip(lists, ranked)]
        return float(np.mean(hits)) if hits else 0.0

    # ---------------------------------------------------------------- saving
    def training_record(self) -> dict:
        return {**asdict(self.config), "steps": len(self.history), "checks": self.checks,
                "seconds": round(self.seconds, 1) if self.seconds is not None else None,
                "machine": describe_cpu(), "base_model": self.cross_encoder.base_model}

    def save(self, path: str | Path) -> Path:
        """Write the reranker (a standard Hugging Face directory) with its training record and loss curve."""
        record = self.training_record()

        def add_files(directory: Path) -> None:
            (directory / RERANKER_TRAINING).write_text(json.dumps(record, indent=2, default=str))
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=["step", "epoch", "loss", "lists_per_s"])
            writer.writeheader()
            writer.writerows(self.history)
            (directory / "loss.csv").write_text(buffer.getvalue())

        return self.cross_encoder.save(path, add_files=add_files)


def _prior(retriever_scores: Sequence[float], temperature: float | None) -> np.ndarray:
    """The retriever's part of each logit: its score / T, and one below its best for "none of these"."""
    if temperature is None:  # a reranker trained on its own (no retriever term)
        return np.zeros(len(retriever_scores) + 1, np.float32)
    scaled = np.asarray(retriever_scores, dtype=np.float64) / temperature
    return np.append(scaled, (scaled.max() if len(scaled) else 0.0) - 1.0).astype(np.float32)


def rerank_lists(cross_encoder: CrossEncoder, lists: Sequence[CandidateList], max_candidates: int,
                 show_progress: bool | None = None) -> list[np.ndarray]:
    """For each list, the probabilities of its first ``max_candidates`` candidates and, last, of "none of these"."""
    mentions, names, sizes = [], [], []
    for item in lists:
        k = min(len(item.names), max_candidates)
        mentions += [cross_encoder.mention_text(item.mention, item.context)] * (k + 1)
        names += item.names[:k] + [cross_encoder.nil_text]
        sizes.append(k)
    scores = cross_encoder.score(mentions, names, show_progress=show_progress)
    out, start = [], 0
    for item, k in zip(lists, sizes):
        row = scores[start : start + k + 1].astype(np.float64) + \
            _prior(item.retriever_scores[:k], cross_encoder.retriever_temperature)
        start += k + 1
        row = np.exp(row - row.max())
        out.append((row / row.sum()).astype(np.float32))
    return out
