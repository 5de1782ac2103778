"""Candidate training in BioSyn's manner: annotated mentions against their top candidates.

Each epoch the current model retrieves every training mention's top-k dictionary names; the loss is
the negative log of the softmax mass on the names of the gold concept (synonym marginalisation, Sung
et al., ACL 2020). The candidates are the model's own mistakes, refreshed as it learns.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import EntityLinkError
from ..ontology import Ontology
from ..text.normalize import Normalizer
from .defaults import DEFAULT_PRECISION, CandidateConfig
from .encoder import Encoder
from .trainer import check_tuning, interpolate_weights

logger = logging.getLogger(__name__)


def marginal_nll(logits: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-log Σ_positive softmax(logits)``; every row needs one positive or more."""
    everything = torch.logsumexp(logits, dim=-1)
    gold = torch.logsumexp(logits.masked_fill(~positive, float("-inf")), dim=-1)
    return (everything - gold).mean()


_DEFAULT = CandidateConfig()


class CandidateTrainer:
    """Tunes an :class:`Encoder` on annotated mentions, each against its current top-k dictionary names.

    Args:
        encoder: an :class:`Encoder` or a model id/path, tuned in place.
        top_k: candidates per mention, retrieved by the current model at the start of every epoch; when the
            gold concept is not among them, its best-scored name replaces the last.
        epochs, learning_rate, weight_decay: optimisation (AdamW).
        batch_size: mentions per step (each brings ``top_k`` candidate names).
        temperature: scores are cosine similarities divided by it.
        batch_negatives: score each mention against every candidate of its batch (its own and the other
            mentions' top-k), not only its own top-k; measured on NCBI-disease dev, its own alone distorted the
            space (benchmarks/README.md).
        keep_base: share of the starting weights kept at the end (as :class:`MirrorTrainer`).
        seed: fixes the order and dropout.
        normalizer: applied to mentions and names (use the index's).
    """

    def __init__(
        self,
        encoder: Encoder | str = "default",
        *,
        top_k: int = _DEFAULT.top_k,
        epochs: int = _DEFAULT.epochs,
        batch_size: int = _DEFAULT.batch_size,
        learning_rate: float = _DEFAULT.learning_rate,
        weight_decay: float = _DEFAULT.weight_decay,
        temperature: float = _DEFAULT.temperature,
        batch_negatives: bool = _DEFAULT.batch_negatives,
        keep_base: float = _DEFAULT.keep_base,
        seed: int = _DEFAULT.seed,
        precision: Literal["auto", "fp32", "bf16"] = DEFAULT_PRECISION,
        normalizer: Normalizer | None = None,
        show_progress: bool | None = None,
    ):
        if top_k < 2:
            raise ValueError(f"top_k must be at least 2, not {top_k}")
        check_tuning(encoder, precision, epochs=epochs, temperature=temperature, keep_base=keep_base)
        self.encoder = encoder if isinstance(encoder, Encoder) else Encoder(encoder, precision=precision)
        self.top_k, self.epochs, self.batch_size = top_k, epochs, batch_size
        self.learning_rate, self.weight_decay, self.temperature = learning_rate, weight_decay, temperature
        self.keep_base, self.seed, self.batch_negatives = keep_base, seed, batch_negatives
        self.precision = self.encoder.precision if precision == "auto" else precision
        self.normalizer = normalizer or Normalizer()
        self.show_progress = show_progress
        self.history: list[dict[str, float]] = []
        self.seconds: float | None = None

    def _dictionary(self, ontology: Ontology) -> tuple[list[str], list[frozenset[str]]]:
        ids: dict[str, set[str]] = {}
        for concept, name in zip(ontology.frame["concept_id"], ontology.frame["name"]):
            text = self.normalizer(name)
            if text:
                ids.setdefault(text, set()).update(str(concept).split("|"))
        return list(ids), [frozenset(v) for v in ids.values()]

    def _candidates(
        self, queries: list[str], golds: list[frozenset[str]], names: list[str], name_ids: list[frozenset[str]],
        by_concept: dict[str, list[int]],
    ) -> tuple[np.ndarray, float]:
        """Rows of ``top_k`` name indices per query, each with a gold name; and the share found unaided."""
        import faiss

        vectors = self.encoder.encode(names, show_progress=self.show_progress)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        query_vectors = self.encoder.encode(queries, show_progress=False)
        _, top = index.search(query_vectors, self.top_k)
        found = 0
        for row, gold in enumerate(golds):
            if any(name_ids[j] & gold for j in top[row]):
                found += 1
                continue
            own = sorted({j for concept in gold for j in by_concept.get(concept, [])})
            top[row, -1] = own[int(np.argmax(vectors[own] @ query_vectors[row]))]
        return top, found / max(len(golds), 1)

    def fit(self, ontology: Ontology, mentions: Sequence[tuple[str, str]]) -> CandidateTrainer:
        """Train on ``(mention text, gold concept id)`` pairs against ``ontology``'s names; returns ``self``.

        Mentions whose gold concept has no name in the ontology are skipped (and counted in the log)."""
        names, name_ids = self._dictionary(ontology)
        by_concept: dict[str, list[int]] = {}
        for j, concepts in enumerate(name_ids):
            for concept in concepts:
                by_concept.setdefault(concept, []).append(j)
        examples = dict.fromkeys((self.normalizer(text), frozenset(str(gold).split("|"))) for text, gold in mentions)
        kept = [(t, g) for t, g in examples if t and any(c in by_concept for c in g)]
        if not kept:
            raise EntityLinkError("no training mention has a gold concept named in the ontology")
        logger.info("candidate training on %d distinct mentions (%d skipped: gold not in the ontology), %d names",
                    len(kept), len(examples) - len(kept), len(names))
        queries, golds = [t for t, _ in kept], [g for _, g in kept]
        model = self.encoder.model
        start_weights = {k: v.detach().clone() for k, v in model.state_dict().items()} if self.keep_base else None
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        torch.manual_seed(self.seed)
        rng = random.Random(self.seed)
        started, step = time.perf_counter(), 0
        show = True if self.show_progress is None else self.show_progress
        for epoch in range(self.epochs):
            top, recall = self._candidates(queries, golds, names, name_ids, by_concept)
            logger.info("epoch %d: the gold among the top %d for %.1f%% of mentions", epoch, self.top_k, 100 * recall)
            order = list(range(len(queries)))
            rng.shuffle(order)
            model.train()
            batches = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            for batch in tqdm(batches, unit="step", desc=f"candidate training, epoch {epoch + 1}", disable=not show):
                rows = top[batch]
                columns = list(dict.fromkeys(rows.ravel().tolist()))  # the batch's distinct candidate names
                positive = torch.tensor([[bool(name_ids[j] & golds[q]) for j in columns] for q in batch],
                                        device=self.encoder.device)
                with torch.autocast(self.encoder.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
                    texts = [queries[q] for q in batch] + [names[j] for j in columns]
                    z = self.encoder.forward(self.encoder.tokenize(texts))
                z = torch.nn.functional.normalize(z.float(), dim=-1)
                q, c = z[: len(batch)], z[len(batch) :]
                logits = (q @ c.T) / self.temperature
                if not self.batch_negatives:
                    where = {j: i for i, j in enumerate(columns)}
                    own = torch.tensor([[where[j] for j in r] for r in rows.tolist()], device=z.device)
                    logits, positive = logits.gather(1, own), positive.gather(1, own)
                loss = marginal_nll(logits, positive)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                self.history.append({"step": step, "epoch": epoch, "loss": loss.item(), "recall": recall})
        model.eval()
        if start_weights is not None:
            interpolate_weights(model, start_weights, self.keep_base)
        self.seconds = time.perf_counter() - started
        self.encoder.unsaved = True
        return self
