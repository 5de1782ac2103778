"""Mirror-BERT trainer: contrastive tuning of an encoder on ontology surface forms.

Self-supervised (Liu et al., EMNLP 2021): a name and a copy of itself are a positive pair,
their views differing by dropout and optional span masking. Synonym-supervised (SapBERT-style):
two names of one concept are a positive pair. Both use InfoNCE over in-batch negatives.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from tqdm.auto import tqdm

from .._io import atomic_directory, atomic_write_text, read_lines
from ..errors import DataFormatError, EntityLinkError
from ..ontology import Ontology
from ..text.normalize import Normalizer
from .augment import DropHead, mask_random_span, temporary_dropout
from .defaults import DEFAULT_PRECISION, MODES, Mode, TrainingConfig
from .distributed import context, gather_with_grad, mean_over_ranks
from .encoder import Encoder
from .hardware import describe_cpu
from .losses import info_nce

logger = logging.getLogger(__name__)

TRAINING_CONFIG = "entitylink_training.json"


def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """Read a ``name||name`` pairs file (e.g. training mentions ↔ names of their concept)."""
    pairs = []
    for number, line in read_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("||")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise DataFormatError(path, number, f"expected 'name||name', found {line[:80]!r}")
        pairs.append((parts[0].strip(), parts[1].strip()))
    if not pairs:
        raise DataFormatError(path, None, "no pairs in the file")
    return pairs


def mention_pairs(
    ontology: Ontology, mentions: Sequence[tuple[str, str]], names_per_mention: int = 3
) -> tuple[list[tuple[str, str]], int]:
    """Positive pairs from annotated mentions: each ``(mention text, gold concept id)`` with the first
    ``names_per_mention`` names of its concept (the preferred name first, as the ontology lists them).

    Returns the pairs and the number of mentions left out because their concept has no name in the ontology.
    Every occurrence counts, so frequent mentions weigh more (as in the NCBI-disease benchmark's recipe).
    """
    names: dict[str, list[str]] = {}
    for concept, name in zip(ontology.frame["concept_id"], ontology.frame["name"]):
        for part in str(concept).split("|"):
            names.setdefault(part, []).append(name)
    pairs, missing = [], 0
    for text, gold in mentions:
        known = names.get(gold, [])
        missing += not known
        pairs.extend((text, name) for name in known[:names_per_mention])
    return pairs, missing


def check_tuning(encoder: object, precision: str, *, epochs: int, temperature: float, keep_base: float) -> None:
    """Refuse the settings every trainer of an :class:`Encoder` refuses (a ``ValueError`` naming the argument)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}")
    if not 0.0 <= keep_base < 1.0:
        raise ValueError(f"keep_base must be in [0, 1), not {keep_base}")
    if precision == "int8" or (isinstance(encoder, Encoder) and encoder.precision == "int8"):
        raise ValueError("precision='int8' is for encoding only: train with 'auto', 'fp32' or 'bf16', "
                         "then load the saved model with Encoder(path, precision='int8')")


_DEFAULT = TrainingConfig()


class MirrorTrainer:
    """Contrastive tuning of an :class:`Encoder` on surface forms (Mirror-BERT, or synonyms).

    Args:
        encoder: an :class:`Encoder` or a model id/path. :meth:`fit` tunes its weights in place (no
            second copy in memory) and sets ``encoder.unsaved`` until :meth:`save` writes them; the
            encoder's other settings are left as they were given.
        mode: ``"mirror"`` (a name and itself), ``"synonym"`` (each name with a random other
            name of its concept) or ``"both"``.
        n_names: names sampled for training (after normalisation and dedupe; in synonym mode,
            names of whole concepts with two or more names); ``None`` = all.
        epochs, batch_size, learning_rate, weight_decay: optimisation (AdamW).
        temperature: InfoNCE temperature (0.2 for words/names, 0.04 in the sentence setting).
        dropout: dropout probability of the model while training (the views differ by it); the
            model's own dropout settings are put back when :meth:`fit` ends.
        drophead: probability of dropping each attention head per example while training (0 = off).
        span_mask_chars: mask a random span of this many characters in the second view (0 = off).
        hard_negatives: build batches of similar names (nearest neighbours under the
            current model), so in-batch negatives are hard.
        keep_base: share of the starting weights kept when training ends: the saved weights are
            ``keep_base × start + (1 − keep_base) × tuned`` (a weight-space ensemble, WiSE-FT), which keeps
            what the starting model knows about text the ontology does not hold (0 = the tuned weights).
        seed: fixes sampling, order, masking and dropout: the same seed gives the same model.
        precision: ``"auto"`` trains with bf16 autocast only where the hardware is fast at it.
        normalizer: applied to every training text (use the index's normaliser).
        checkpoint_every: save a resumable checkpoint every this many steps (needs ``out``).
        out: model directory written at the end (and checkpoints under ``out/checkpoints``).

    Example:
        >>> trainer = MirrorTrainer("default", n_names=2000, epochs=1)  # doctest: +SKIP
        >>> encoder = trainer.fit(Ontology.load("hpo")).encoder  # doctest: +SKIP
    """

    def __init__(
        self,
        encoder: Encoder | str | Path = "default",
        *,
        mode: Mode = _DEFAULT.mode,  # type: ignore[assignment]
        n_names: int | None = _DEFAULT.n_names,
        epochs: int = _DEFAULT.epochs,
        batch_size: int = _DEFAULT.batch_size,
        learning_rate: float = _DEFAULT.learning_rate,
        weight_decay: float = _DEFAULT.weight_decay,
        temperature: float = _DEFAULT.temperature,
        dropout: float = _DEFAULT.dropout,
        drophead: float = _DEFAULT.drophead,
        span_mask_chars: int = _DEFAULT.span_mask_chars,
        hard_negatives: bool = _DEFAULT.hard_negatives,
        keep_base: float = _DEFAULT.keep_base,
        seed: int = _DEFAULT.seed,
        precision: Literal["auto", "fp32", "bf16"] = DEFAULT_PRECISION,
        normalizer: Normalizer | None = None,
        checkpoint_every: int | None = None,
        out: str | Path | None = None,
        show_progress: bool | None = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (in-batch negatives), not {batch_size}")
        check_tuning(encoder, precision, epochs=epochs, temperature=temperature, keep_base=keep_base)
        if checkpoint_every is not None and out is None:
            raise ValueError("checkpoint_every needs an output directory (out=...)")
        self.encoder = encoder if isinstance(encoder, Encoder) else Encoder(encoder, precision=precision)
        self.base_model = self.encoder.model_id
        self.config = TrainingConfig(
            mode=mode, n_names=n_names, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            weight_decay=weight_decay, temperature=temperature, dropout=dropout, drophead=drophead,
            span_mask_chars=span_mask_chars,
            hard_negatives=hard_negatives, keep_base=keep_base, seed=seed,
        )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), not {dropout}")
        self.precision = self.encoder.precision if precision == "auto" else precision
        self.normalizer = normalizer or Normalizer()
        self.checkpoint_every = checkpoint_every
        self.out = Path(out) if out is not None else None
        self.show_progress = show_progress
        self.history: list[dict[str, float]] = []
        self.data_fingerprint: str | None = None
        self.seconds: float | None = None

    # ---------------------------------------------------------------- data
    def _mirror_texts(self, data: Ontology | Sequence[str]) -> list[str]:
        names = data.names if isinstance(data, Ontology) else list(data)
        texts = list(dict.fromkeys(t for t in (self.normalizer(n) for n in names) if t))
        if self.config.n_names is not None and len(texts) > self.config.n_names:
            rng = np.random.default_rng(self.config.seed)
            texts = [texts[i] for i in sorted(rng.choice(len(texts), self.config.n_names, replace=False))]
        return texts

    def _synonym_groups(self, data: Ontology) -> list[list[str]]:
        frame = data.frame.assign(text=lambda f: f["name"].map(self.normalizer))
        frame = frame[frame["text"] != ""].drop_duplicates(subset=["concept_id", "text"])
        groups = [g.tolist() for _, g in frame.groupby("concept_id", sort=True)["text"] if len(g) >= 2]
        if self.config.n_names is not None:
            rng = np.random.default_rng(self.config.seed)
            order = rng.permutation(len(groups))
            kept, total = [], 0
            for i in order:
                if total >= self.config.n_names:
                    break
                kept.append(groups[i])
                total += len(groups[i])
            groups = [groups[i] for i in sorted(order[: len(kept)])]
        return groups

    def _epoch_pairs(
        self, epoch: int, mirror: list[str], groups: list[list[str]], extra: list[tuple[str, str]]
    ) -> list[tuple[str, str, int]]:
        """(view-1 text, view-2 text, group id) for one epoch, shuffled by the seed and epoch."""
        rng = random.Random(self.config.seed * 1_000_003 + epoch)
        pairs: list[tuple[str, str, int]] = []
        next_group = 0
        text_group: dict[str, int] = {}
        for i, names in enumerate(groups):
            for j, name in enumerate(names):
                text_group.setdefault(name, i)
                other = rng.randrange(len(names) - 1)
                pairs.append((name, names[other + (other >= j)], i))
        next_group = len(groups)
        for text in mirror:
            group = text_group.get(text)
            if group is None:
                group = text_group[text] = next_group
                next_group += 1
            pairs.append((text, text, group))
        for a, b in extra:
            group = text_group.get(a, text_group.get(b))
            if group is None:
                group = next_group
                next_group += 1
            text_group.setdefault(a, group)
            text_group.setdefault(b, group)
            pairs.append((a, b, group))
        rng.shuffle(pairs)
        return pairs

    def _batches(self, pairs: list[tuple[str, str, int]]) -> list[list[tuple[str, str, int]]]:
        bs = self.config.batch_size
        if self.config.hard_negatives and len(pairs) > bs:
            pairs = self._hard_negative_order(pairs)
        batches = [pairs[i : i + bs] for i in range(0, len(pairs), bs)]
        return [b for b in batches if len(b) >= 2]

    def _hard_negative_order(self, pairs: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
        """Order pairs so each batch gathers nearest neighbours (by the current model) of a seed name."""
        import faiss

        vectors = self.encoder.encode([p[0] for p in pairs], show_progress=False)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        k = min(len(pairs), max(self.config.batch_size, 32))
        _, neighbours = index.search(vectors, k)
        used = np.zeros(len(pairs), dtype=bool)
        ordered: list[int] = []
        for seed_row in range(len(pairs)):
            if used[seed_row]:
                continue
            batch = [seed_row]
            used[seed_row] = True
            for j in neighbours[seed_row]:
                if len(batch) >= self.config.batch_size:
                    break
                if j >= 0 and not used[j]:
                    used[j] = True
                    batch.append(int(j))
            ordered.extend(batch)
        return [pairs[i] for i in ordered]

    # ---------------------------------------------------------------- training
    def fit(
        self,
        data: Ontology | Sequence[str],
        pairs: Sequence[tuple[str, str]] | str | Path | None = None,
        resume: bool = False,
    ) -> MirrorTrainer:
        """Train on an ontology (or a plain list of names, mirror mode only); returns ``self``.

        ``pairs`` adds positive pairs, as a list or a ``name||name`` file. With ``resume``,
        training continues from the newest checkpoint under ``out/checkpoints``.
        """
        cfg = self.config
        if cfg.mode == "synonym" and not isinstance(data, Ontology):
            raise ValueError("mode='synonym' needs an Ontology (names grouped by concept), not a list of names")
        extra = read_pairs(pairs) if isinstance(pairs, (str, Path)) else list(pairs or [])
        extra = [(self.normalizer(a), self.normalizer(b)) for a, b in extra]
        extra = [(a, b) for a, b in extra if a and b]
        mirror = self._mirror_texts(data) if cfg.mode in ("mirror", "both") else []
        # "both" on a plain list of names (no concepts, so no synonyms) is Mirror-BERT alone
        groups = self._synonym_groups(data) if cfg.mode in ("synonym", "both") and isinstance(data, Ontology) else []
        if not mirror and not groups and not extra:
            raise EntityLinkError("nothing to train on: no names (mirror) or concepts with two names (synonym)")
        self.data_fingerprint = _fingerprint(mirror, groups, extra)
        n_pairs = len(mirror) + sum(len(g) for g in groups) + len(extra)
        logger.info("training %s on %d pairs per epoch (%d names, %d synonym groups, %d extra pairs), precision %s",
                    cfg.mode, n_pairs, len(mirror), len(groups), len(extra), self.precision)

        ctx = context(self.encoder.device)
        torch.manual_seed(cfg.seed + ctx.rank)
        model = self.encoder.model
        forward_model = model
        if ctx.active:
            from torch.nn.parallel import DistributedDataParallel

            cuda = self.encoder.device.type == "cuda"
            # find_unused_parameters: BERT's pooler layer takes no part in the loss
            forward_model = DistributedDataParallel(
                model, device_ids=[self.encoder.device.index] if cuda else None, find_unused_parameters=True
            )
            logger.info("rank %d of %d: global batch %d, %d pairs per rank", ctx.rank, ctx.world,
                        cfg.batch_size, cfg.batch_size // ctx.world)
        start_weights = {k: v.detach().clone() for k, v in model.state_dict().items()} if cfg.keep_base else None
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
        mask_rng = random.Random(cfg.seed)
        start_epoch, start_step, step = 0, 0, 0
        if resume:
            state = self._load_checkpoint(optimizer)
            if state is not None:
                start_epoch, start_step, step = state["epoch"], state["step_in_epoch"], state["step"]
                mask_rng.setstate(_tuple_state(state["mask_rng"]))
                self.history = state["history"]
        mask_token = self.encoder.tokenizer.mask_token or "[MASK]"
        started = time.perf_counter()
        seen = 0
        model.train()
        total_steps = sum(len(self._batches(self._epoch_pairs(e, mirror, groups, extra))) for e in range(cfg.epochs)) \
            if not cfg.hard_negatives else None
        show = ctx.progress(True if self.show_progress is None else self.show_progress)
        with (
            tqdm(total=total_steps, initial=step, unit="step", desc=f"training ({cfg.mode})", disable=not show) as bar,
            DropHead(model, cfg.drophead),
            temporary_dropout(model, cfg.dropout),
        ):
            for epoch in range(start_epoch, cfg.epochs):
                batches = self._batches(self._epoch_pairs(epoch, mirror, groups, extra))
                model.train()
                for i, batch in enumerate(batches):
                    if epoch == start_epoch and i < start_step:
                        continue
                    # Every rank knows the whole batch (same seed); each encodes its own contiguous share.
                    share = len(batch) // ctx.world
                    batch = batch[: share * ctx.world]
                    second_all = [mask_random_span(b, cfg.span_mask_chars, mask_token, mask_rng) for _, b, _ in batch]
                    mine = slice(ctx.rank * share, (ctx.rank + 1) * share)
                    group_ids = torch.tensor([g for _, _, g in batch])
                    with torch.autocast(self.encoder.device.type, dtype=torch.bfloat16,
                                        enabled=self.precision == "bf16"):
                        # both views in one forward pass (DDP allows one per step)
                        views = [a for a, _, _ in batch[mine]] + second_all[mine]
                        z = self.encoder.forward(self.encoder.tokenize(views), forward_model)
                    z1, z2 = gather_with_grad(z[:share], ctx), gather_with_grad(z[share:], ctx)
                    loss = info_nce(z1, z2, cfg.temperature, group_ids, anchors=mine if ctx.active else None)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    step += 1
                    seen += len(batch)
                    loss_value = mean_over_ranks(loss.item(), ctx)
                    rate = seen / max(time.perf_counter() - started, 1e-9)
                    self.history.append({"step": step, "epoch": epoch, "loss": loss_value, "names_per_s": rate})
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_value:.4f}", names_s=f"{rate:.0f}")
                    if self.checkpoint_every and step % self.checkpoint_every == 0:
                        if ctx.is_main:
                            self._save_checkpoint(optimizer, epoch, i + 1, step, mask_rng)
                        ctx.barrier()
        model.eval()
        if start_weights is not None:
            interpolate_weights(model, start_weights, cfg.keep_base)
        self.seconds = time.perf_counter() - started
        self.encoder.unsaved = True  # until saved, an index built with it cannot reopen these weights
        if self.out is not None and ctx.is_main:
            self.save(self.out)
        ctx.barrier()
        return self

    # ---------------------------------------------------------------- saving
    def training_record(self) -> dict:
        """Settings, data fingerprint, precision and machine of this run (saved as JSON with the model)."""
        return {
            **asdict(self.config),
            "precision": self.precision,
            "pooling": self.encoder.pooling,
            "max_length": self.encoder.max_length,
            "base_model": self.base_model,
            "normalizer": self.normalizer.to_dict(),
            "data_fingerprint": self.data_fingerprint,
            "steps": len(self.history),
            "seconds": round(self.seconds, 2) if self.seconds is not None else None,
            "machine": describe_cpu(),
        }

    def loss_csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=["step", "epoch", "loss", "names_per_s"])
        writer.writeheader()
        writer.writerows(self.history)
        return buffer.getvalue()

    def save(self, path: str | Path) -> Path:
        """Write the tuned model (see :meth:`Encoder.save`), its training record and loss curve.

        Checkpoints already under ``path/checkpoints`` are kept in the new directory.
        """
        path = Path(path)
        record = self.training_record()
        checkpoints = path / "checkpoints"

        def add_files(directory: Path) -> None:
            (directory / TRAINING_CONFIG).write_text(json.dumps(record, indent=2, default=str))
            (directory / "loss.csv").write_text(self.loss_csv())
            _plot_loss(self.history, directory / "loss.png")
            if checkpoints.is_dir():  # hard links: the originals stay until the new directory is in place
                shutil.copytree(checkpoints, directory / "checkpoints", copy_function=_link_or_copy)

        self.encoder.save(path, extra_config={"base_model": record["base_model"]}, add_files=add_files)
        logger.info("saved tuned model to %s", path)
        return path

    def _checkpoint_dir(self) -> Path:
        assert self.out is not None
        return self.out / "checkpoints"

    def _save_checkpoint(self, optimizer, epoch: int, step_in_epoch: int, step: int, mask_rng) -> None:
        from safetensors.torch import save_file

        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.encoder.model.state_dict().items()}
        for i, state in optimizer.state_dict()["state"].items():
            for key, value in state.items():
                tensors[f"optim.{i}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {
            "epoch": epoch, "step_in_epoch": step_in_epoch, "step": step,
            "mask_rng": _json_state(mask_rng.getstate()), "history": self.history,
            "config": asdict(self.config), "data_fingerprint": self.data_fingerprint,
            "param_groups": optimizer.state_dict()["param_groups"],
        }
        with atomic_directory(self._checkpoint_dir() / f"step-{step:08d}") as tmp:
            save_file(tensors, str(tmp / "state.safetensors"))
            (tmp / "state.json").write_text(json.dumps(meta))
        atomic_write_text(self._checkpoint_dir() / "latest", f"step-{step:08d}\n")

    def _load_checkpoint(self, optimizer) -> dict | None:
        from safetensors.torch import load_file

        if self.out is None:
            raise ValueError("resume needs the output directory (out=...) that holds the checkpoints")
        latest = self._checkpoint_dir() / "latest"
        if not latest.is_file():
            logger.warning("no checkpoint under %s: starting from scratch", self._checkpoint_dir())
            return None
        folder = self._checkpoint_dir() / latest.read_text().strip()
        meta = json.loads((folder / "state.json").read_text())
        if meta["data_fingerprint"] != self.data_fingerprint or meta["config"] != asdict(self.config):
            raise EntityLinkError(f"{folder}: the checkpoint was made with other data or settings; cannot resume")
        tensors = load_file(str(folder / "state.safetensors"))
        self.encoder.model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, i, name = key.split(".", 2)
                state.setdefault(int(i), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        torch.set_rng_state(tensors["rng.torch"])
        logger.info("resuming from %s (step %d)", folder, meta["step"])
        return meta


def interpolate_weights(model: torch.nn.Module, start: dict[str, torch.Tensor], keep: float) -> None:
    """Set ``model``'s floating-point weights to ``keep × start + (1 − keep) × current``, in place."""
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.mul_(1.0 - keep).add_(start[name].to(tensor.device, tensor.dtype), alpha=keep)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _fingerprint(mirror: list[str], groups: list[list[str]], extra: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps([mirror, groups, extra], ensure_ascii=False).encode())
    return digest.hexdigest()


def _json_state(state):
    return [state[0], list(state[1]), state[2]]


def _tuple_state(state):
    return (state[0], tuple(state[1]), state[2])


def _plot_loss(history: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        logger.warning("matplotlib not installed: no loss plot")
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if history:
        steps = [h["step"] for h in history]
        losses = [h["loss"] for h in history]
        ax.plot(steps, losses, lw=0.8, alpha=0.5, label="loss")
        window = max(1, len(losses) // 20)
        smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
        ax.plot(steps[window - 1 :], smooth, lw=1.5, label=f"mean of {window}")
    ax.set_xlabel("step")
    ax.set_ylabel("InfoNCE loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
