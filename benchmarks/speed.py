"""Encoding speed, side by side in one run on one machine (issue 7).

    python -m benchmarks.speed --data ../shared/data --n 20000

Encodes the same MEDIC names with
  (a) a plain fp32 ``transformers`` loop that pads every batch to max_length,
  (b) ``sentence-transformers`` ``encode``,
  (c) our ``Encoder`` in fp32,
  (d) our ``Encoder`` with ``precision="auto"`` (bf16 where the CPU has AMX/AVX512-BF16),
  (e) our ``Encoder`` with ``precision="int8"`` (ONNX Runtime; CPU only, needs ``entitylink[onnx]``),
  (f) with ``--compile``: (d) with the model under ``torch.compile(dynamic=True)``,
  (g) with ``--torch-int8``: (c) with every Linear layer replaced by PyTorch's own dynamic int8
      quantisation (``torch.ao.quantization.quantize_dynamic``, per-channel weights; fbgemm kernels), a
      reference: unlike (e) it can be capped at AVX2, so it shows what int8 kernels gain there,
and reports names/s, the ratio to (a) and (b), the smallest cosine to fp32, and the change of acc@1 on
the NCBI-disease test split (MEDIC + train/dev dictionary) when the dictionary is encoded that way.

The roofline: each row's achieved FLOP/s (the forward FLOPs counted from the model's shapes and the
names' real token counts, padding not counted, over its seconds) against this machine's measured peak
matmul rate in the row's precision (``benchmarks.flops.peak_matmul_flops``), so "how far from the limit"
is a ratio that holds on any CPU.
Falls back to HPO names when ``--data`` has no MEDIC file.

``--emulate-avx2`` re-runs the script with torch's kernels capped at AVX2 (``ATEN_CPU_CAPABILITY``,
``MKL_ENABLE_INSTRUCTIONS``, ``ONEDNN_MAX_CPU_ISA``, ``FBGEMM_ENABLE_INSTRUCTIONS``), a stand-in for an
AVX2-only CPU on an AMX machine. ONNX Runtime cannot be capped (it reads CPUID), so (e) is left out then.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks._record import markdown_table, write_record
from entitylink import Encoder, Ontology
from entitylink.errors import MissingDependencyError
from entitylink.model.encoder import default_model_path
from entitylink.model.onnx_backend import require_onnxruntime
from entitylink.model.pooling import pool
from entitylink.text.normalize import Normalizer


def plain_loop(model_path: str, batch_size: int, max_length: int, device: str) -> Callable[[list[str]], np.ndarray]:
    """The baseline most research code uses: fixed-length padding, fp32, no length sorting."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModel.from_pretrained(model_path).to(device).eval()

    def encode(names: list[str]) -> np.ndarray:
        out = []
        with torch.no_grad():
            for start in range(0, len(names), batch_size):
                batch = tokenizer(names[start : start + batch_size], padding="max_length", truncation=True,
                                  max_length=max_length, return_tensors="pt").to(device)
                hidden = model(**batch).last_hidden_state
                vectors = pool(hidden, batch["attention_mask"], "mean")
                out.append(torch.nn.functional.normalize(vectors, dim=-1).cpu().numpy())
        return np.vstack(out)

    return encode


def sentence_transformers_encode(model_path: str, batch_size: int, max_length: int,
                                 device: str) -> Callable[[list[str]], np.ndarray]:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_path, device=device)
    model.max_seq_length = max_length
    return lambda names: model.encode(names, batch_size=batch_size, normalize_embeddings=True,
                                      show_progress_bar=False)


AVX2_CAPS = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2",
             "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}


def torch_dynamic_int8(encoder: Encoder) -> Encoder:
    """``encoder`` with its Linear layers swapped for torch's dynamic int8 ones (a deprecated API; a reference)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notices for torch.ao and quantised tensors
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        weights = encoder.fingerprint()  # the quantised state dict holds packed tuples, not tensors
        encoder.model = quantize_dynamic(encoder.model, {torch.nn.Linear: per_channel_dynamic_qconfig},
                                         dtype=torch.qint8)
    encoder.fingerprint = lambda: weights
    return encoder


def onnxruntime_available() -> bool:
    try:
        require_onnxruntime()
    except MissingDependencyError:
        return False
    return True


def timed(fn, repeats: int) -> tuple[float, np.ndarray]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def ncbi_acc1(data: Path, encoder: Encoder) -> float | None:
    """acc@1 on NCBI test when the dictionary is encoded with ``encoder``."""
    from benchmarks.ncbi_disease import Benchmark, dense, run_settings
    from entitylink.text.preprocess import QueryPreprocessor, read_spelling

    if not (data / "ncbi-disease").is_dir():
        return None
    spelling = read_spelling(data / "medic" / "ncbi-spell-check.txt")
    bench = Benchmark(data, QueryPreprocessor(spelling=spelling))
    return run_settings(dense(encoder), bench)["test"]["acc@1"]


def roofline_rows(model_path: str, names: list[str], max_length: int, device: str, seconds: dict[str, float],
                  precisions: dict[str, str]) -> dict:
    """Achieved forward FLOP/s of each row against the measured peak matmul rate of its precision."""
    from transformers import AutoConfig, AutoTokenizer

    from benchmarks.flops import count, forward_flops, peak_matmul_flops

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    lengths = [len(ids) for ids in tokenizer(names, truncation=True, max_length=max_length)["input_ids"]]
    flops = forward_flops(count(AutoConfig.from_pretrained(model_path)), lengths)
    peaks = {p: peak_matmul_flops(p, device) for p in sorted(set(precisions.values()))}
    rows = {}
    for label, secs in seconds.items():
        achieved, peak = flops / secs, peaks[precisions[label]]["flops"]
        rows[label] = {"precision": precisions[label], "achieved_gflop_s": float(f"{achieved / 1e9:.4g}"),
                       "of_peak": float(f"{achieved / peak:.3g}")}
    return {"forward_gflop": float(f"{flops / 1e9:.4g}"), "mean_tokens": round(sum(lengths) / len(lengths), 2),
            "peak_gflop_s": {p: {"gflop_s": float(f"{v['flops'] / 1e9:.4g}"), "shape": v["shape"]}
                             for p, v in peaks.items()},
            "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--model", default="default",
                        help="Hugging Face id or local directory (default: the packaged MiniLM)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (every encoder runs on it)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-accuracy", action="store_true", help="skip the NCBI acc@1 comparison")
    parser.add_argument("--compile", action="store_true", help="add (f): precision=auto under torch.compile")
    parser.add_argument("--torch-int8", action="store_true",
                        help="add (g): torch's own dynamic int8 quantisation (fbgemm), a reference")
    parser.add_argument("--emulate-avx2", action="store_true",
                        help="cap torch's CPU kernels at AVX2 (stand-in for an AVX2-only machine)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speed.json"))
    args = parser.parse_args(argv)
    emulated = all(os.environ.get(k) == v for k, v in AVX2_CAPS.items())
    if args.emulate_avx2 and not emulated:  # the caps are read when the libraries load: start afresh
        os.execve(sys.executable, [sys.executable, "-m", "benchmarks.speed", *(sys.argv[1:] if argv is None else argv)],
                  {**os.environ, **AVX2_CAPS})
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    medic = args.data / "medic" / "medic_06Jul2012.txt"
    source = Ontology.load(f"medic:{medic}") if medic.is_file() else Ontology.load("hpo")
    names = Normalizer().normalize_all(list(dict.fromkeys(source.names)))[: args.n]
    model_path = str(default_model_path()) if args.model == "default" else args.model
    bs, ml, device = args.batch_size, args.max_length, args.device

    rows: dict[str, dict] = {}
    vectors: dict[str, np.ndarray] = {}
    baselines = {
        "(a) transformers loop, fp32, pad to max_length": plain_loop(model_path, bs, ml, device),
        "(b) sentence-transformers encode": sentence_transformers_encode(model_path, bs, ml, device),
    }
    runs = {}
    for label, encode in baselines.items():  # loaded and warmed outside the timing, as our encoders are
        encode(names[:512])
        runs[label] = lambda e=encode: e(names)

    def ours(precision: str) -> Encoder:  # the settings the baselines run with
        return Encoder(model_path, pooling="mean", max_length=ml, precision=precision, batch_size=bs, device=device)

    encoders = {"(c) entitylink Encoder, fp32": ours("fp32"), "(d) entitylink Encoder, precision=auto": ours("auto")}
    skipped = {}
    int8 = "(e) entitylink Encoder, precision=int8 (ONNX Runtime)"
    if device != "cpu" or emulated or not onnxruntime_available():
        skipped[int8] = ("CPU only" if device != "cpu" else "ONNX Runtime cannot be capped at AVX2" if emulated
                         else "onnxruntime not installed")
    else:
        encoders[int8] = ours("int8")
    compiled = "(f) entitylink Encoder, precision=auto + torch.compile"
    if args.compile:
        encoders[compiled] = ours("auto")
        encoders[compiled].model = torch.compile(encoders[compiled].model, dynamic=True)
    torch_int8 = "(g) torch dynamic int8 (fbgemm), reference"
    if args.torch_int8 and device == "cpu":
        encoders[torch_int8] = torch_dynamic_int8(ours("fp32"))
    elif args.torch_int8:
        skipped[torch_int8] = "CPU only"
    warm_seconds = {}
    for label, encoder in encoders.items():
        start = time.perf_counter()
        encoder.encode(names[:512], show_progress=False)
        warm_seconds[label] = round(time.perf_counter() - start, 1)
        runs[label] = lambda e=encoder: e.encode(names, show_progress=False)
    for label, fn in runs.items():
        seconds, vectors[label] = timed(fn, args.repeats)
        rows[label] = {"seconds": float(f"{seconds:.4g}"), "names_per_s": round(len(names) / seconds, 1)}
        print(f"{label}: {rows[label]}", flush=True)
    a, b = (rows[k]["names_per_s"] for k in list(rows)[:2])
    reference = vectors["(c) entitylink Encoder, fp32"]
    for label, row in rows.items():
        row["vs_a"] = round(row["names_per_s"] / a, 2)
        row["vs_b"] = round(row["names_per_s"] / b, 2)
        row["min_cosine_vs_fp32"] = round(float((vectors[label] * reference).sum(1).min()), 5)
    auto = encoders["(d) entitylink Encoder, precision=auto"].precision
    precisions = {label: "int8" if "int8" in label else auto if "precision=auto" in label else "fp32" for label in rows}
    roofline = roofline_rows(model_path, names, ml, device, {k: r["seconds"] for k, r in rows.items()}, precisions)
    for label, row in rows.items():
        row.update(roofline["rows"][label])
    record = {"roofline": {k: v for k, v in roofline.items() if k != "rows"},
              "names": len(names), "source": source.name, "batch_size": bs, "max_length": ml, "device": device,
              "model": args.model, "results": rows, "skipped": skipped, "first_call_seconds": warm_seconds,
              "emulated_avx2": AVX2_CAPS if emulated else None,
              "auto_resolved_to": encoders["(d) entitylink Encoder, precision=auto"].precision}
    if not args.no_accuracy:  # (f) computes what (d) does: its cosine says so, its acc@1 is not re-run
        record["ncbi_test_acc@1"] = {
            label: ncbi_acc1(args.data, encoder) for label, encoder in encoders.items() if label != compiled
        }
    record = write_record(args.out, record, argv)
    print(markdown_table(["encoder", "names/s", "vs (a)", "vs (b)", "min cosine vs fp32", "GFLOP/s", "of peak"],
                         ([label, row["names_per_s"], f"{row['vs_a']}x", f"{row['vs_b']}x", row["min_cosine_vs_fp32"],
                           row["achieved_gflop_s"], f"{100 * row['of_peak']:.0f}% of {row['precision']}"]
                          for label, row in rows.items())))
    print("peak matmul GFLOP/s:", {p: v["gflop_s"] for p, v in record["roofline"]["peak_gflop_s"].items()},
          f"forward {record['roofline']['forward_gflop']} GFLOP for {len(names)} names")
    if "ncbi_test_acc@1" in record:
        print("NCBI test acc@1 (mean pooling):", record["ncbi_test_acc@1"])
    for label, why in skipped.items():
        print(f"{label}: skipped ({why})")
    print(f"{record['machine']}; precision=auto -> {record['auto_resolved_to']}"
          + ("; torch kernels capped at AVX2 (emulated)" if emulated else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
