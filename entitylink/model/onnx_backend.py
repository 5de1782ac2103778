"""int8 encoding on the CPU with ONNX Runtime: export the transformer + pooling once, quantise, cache, run.

The fast path for CPUs without bf16 units (AVX2-only machines such as many AMD EPYC): weights are
stored as int8 per output channel in a 7-bit range, activations are quantised on the fly. With 7-bit
weights the u8 x s8 products of AVX2's ``vpmaddubsw`` cannot saturate, so AVX2 and VNNI/AMX machines
compute the same integers, and one cached file serves both.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from ..errors import MissingDependencyError
from .pooling import pool

logger = logging.getLogger(__name__)

CACHE_ENV = "ENTITYLINK_CACHE"
INSTALL_HINT = "pip install 'entitylink[onnx]' (installs onnxruntime and onnx)"
# Bumped whenever the export or the quantisation settings change, so stale cached files are not reused.
RECIPE = "int8-matmul-perchannel-7bit-v1"
OPSET = 17


def cache_root() -> Path:
    """Where exported models are cached: ``$ENTITYLINK_CACHE``, else ``~/.cache/entitylink``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "entitylink")


def require_onnxruntime() -> None:
    """Raise :class:`MissingDependencyError` when the optional ONNX dependencies are missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        from onnxruntime.quantization import quantize_dynamic  # noqa: F401
    except ImportError as err:
        raise MissingDependencyError("precision='int8'", "ONNX Runtime", INSTALL_HINT, err) from err


class _Pooled(torch.nn.Module):
    def __init__(self, model: torch.nn.Module, pooling: str):
        super().__init__()
        self.model, self.pooling = model, pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, self.pooling)


def export_onnx(model: torch.nn.Module, pooling: str, target: str | Path) -> Path:
    """Write ``model`` + pooling as an fp32 ONNX file (inputs ``input_ids``, ``attention_mask``; output ``vectors``).

    ``model`` itself is left unchanged.
    """
    target = Path(target)
    copy_ = copy.deepcopy(model).cpu().float().eval()
    # Traced SDPA masks come out wrong in the export (cosines down to 0.78); eager attention traces right.
    if hasattr(copy_, "set_attn_implementation"):
        copy_.set_attn_implementation("eager")
    else:  # transformers 4
        copy_.config._attn_implementation = "eager"
    example = torch.tensor([[2, 5, 6, 3], [2, 7, 3, 0]])  # one padded row, so the mask is traced
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Pooled(copy_, pooling), (example, (example != 0).long()), str(target), dynamo=False,
            input_names=["input_ids", "attention_mask"], output_names=["vectors"],
            dynamic_axes={"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                          "vectors": {0: "batch"}},
            opset_version=OPSET,
        )
    return target


def export_int8(model: torch.nn.Module, pooling: str, target: str | Path) -> Path:
    """Write ``model`` + pooling as an int8 ONNX file: MatMul weights per output channel in 7 bits.

    The file appears whole or not at all. ``model`` itself is left unchanged.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=target.parent) as tmp:
        fp32 = export_onnx(model, pooling, Path(tmp) / "model.onnx")
        int8 = Path(tmp) / "model-int8.onnx"
        with _quiet_root_logger():  # the quantiser logs every tensor through the root logger
            quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, op_types_to_quantize=["MatMul"])
        with open(int8, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(int8, target)
    return target


@contextlib.contextmanager
def _quiet_root_logger():
    before = logging.root.manager.disable
    logging.disable(max(before, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(before)


class OnnxSession:
    """An ONNX Runtime session over a file written by :func:`export_int8` (or :func:`export_onnx`)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        self.path = Path(path)
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def __call__(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled, un-normalised float32 vectors of shape (batch, dim) for a padded CPU batch."""
        feed = {name: batch[name].numpy() for name in ("input_ids", "attention_mask")}
        return torch.from_numpy(self.session.run(None, feed)[0])


def cached_int8_session(model: torch.nn.Module, pooling: str, fingerprint: str) -> OnnxSession:
    """The runtime for these weights, exporting them into the cache on first use."""
    require_onnxruntime()
    path = cache_root() / "onnx" / f"{fingerprint[:24]}-{RECIPE}.onnx"
    if not path.is_file():
        logger.info("exporting the encoder to int8 ONNX (once per model): %s", path)
        export_int8(model, pooling, path)
    try:
        return OnnxSession(path)
    except Exception as err:  # a damaged cache file: export again rather than fail
        logger.warning("cached int8 model %s is unreadable (%s); exporting again", path, err)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        export_int8(model, pooling, path)
        return OnnxSession(path)
