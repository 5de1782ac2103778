"""Probe for issue 7: would ONNX Runtime (fp32, or int8 weights) beat PyTorch as an encoding backend?

    pip install onnxruntime onnx      # not dependencies of entitylink
    python -m benchmarks.onnx_probe --n 5000

Exports the packaged MiniLM with mean pooling to ONNX (eager attention: the SDPA mask code of
transformers 5 traces wrongly, giving cosines down to 0.78), quantises its weights to int8 per
channel (dynamic quantisation of the activations), and encodes the same MEDIC names through our
``Encoder`` (length-sorted batches, dynamic padding) with each backend: torch fp32, torch
``precision="auto"``, ONNX Runtime fp32, ONNX Runtime int8. Reports names/s, the smallest cosine to
torch fp32 and NCBI-disease test acc@1 with each. Not a backend of entitylink yet: this measures
whether one is worth building, above all for AVX2-only CPUs, where bf16 is slow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks._record import markdown_table, write_record
from benchmarks.speed import ncbi_acc1, timed
from entitylink import Encoder, Ontology
from entitylink.encoder import default_model_path, pool
from entitylink.normalize import Normalizer


class _Pooled(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, "mean")


def export(workdir: Path) -> dict[str, Path]:
    """ONNX files of the packaged MiniLM with mean pooling: fp32 and int8 (per-channel) weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    path = default_model_path()
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    example = AutoTokenizer.from_pretrained(path)(["a", "heart attack of the left ventricle"], padding=True,
                                                  return_tensors="pt")
    fp32, int8 = workdir / "minilm.onnx", workdir / "minilm-int8.onnx"
    dynamic = {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
               "vectors": {0: "batch"}}
    torch.onnx.export(_Pooled(model), (example["input_ids"], example["attention_mask"]), str(fp32), dynamo=False,
                      input_names=["input_ids", "attention_mask"], output_names=["vectors"],
                      dynamic_axes=dynamic, opset_version=17)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    return {"fp32": fp32, "int8": int8}


class OnnxEncoder(Encoder):
    """Our Encoder with the forward pass run by ONNX Runtime (tokenising, sorting and padding unchanged)."""

    def __init__(self, onnx_path: Path, threads: int, **kwargs):
        import onnxruntime as ort

        super().__init__("default", pooling="mean", precision="fp32", device="cpu", **kwargs)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])

    def forward(self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None) -> torch.Tensor:
        feed = {"input_ids": batch["input_ids"].numpy(), "attention_mask": batch["attention_mask"].numpy()}
        return torch.from_numpy(self.session.run(None, feed)[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-accuracy", action="store_true", help="skip the NCBI acc@1 comparison")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onnx_probe.json"))
    args = parser.parse_args(argv)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        parser.error("needs onnxruntime and onnx: pip install onnxruntime onnx")
    medic = args.data / "medic" / "medic_06Jul2012.txt"
    source = Ontology.load(f"medic:{medic}") if medic.is_file() else Ontology.load("hpo")
    names = Normalizer().normalize_all(list(dict.fromkeys(source.names)))[: args.n]
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        files = export(Path(tmp))
        encoders = {
            "torch fp32": Encoder("default", pooling="mean", precision="fp32", device="cpu"),
            "torch precision=auto": Encoder("default", pooling="mean", precision="auto", device="cpu"),
            "ONNX Runtime fp32": OnnxEncoder(files["fp32"], threads),
            "ONNX Runtime int8 (per-channel weights)": OnnxEncoder(files["int8"], threads),
        }
        rows, vectors = {}, {}
        for label, encoder in encoders.items():
            encoder.encode(names[:512], show_progress=False)
            best, vectors[label] = timed(lambda e=encoder: e.encode(names, show_progress=False), args.repeats)
            rows[label] = {"names_per_s": round(len(names) / best, 1)}
        reference = vectors["torch fp32"]
        for label, row in rows.items():
            row["vs_torch_fp32"] = round(row["names_per_s"] / rows["torch fp32"]["names_per_s"], 2)
            row["min_cosine_vs_fp32"] = round(float((vectors[label] * reference).sum(1).min()), 5)
            if not args.no_accuracy:
                row["ncbi_test_acc@1"] = ncbi_acc1(args.data, encoders[label])
            print(label, row, flush=True)
    record = write_record(args.out, {"names": len(names), "source": source.name, "results": rows,
                                     "onnxruntime": onnxruntime.__version__})
    print(markdown_table(["backend", "names/s", "vs torch fp32", "min cosine vs fp32", "NCBI test acc@1"],
                         ([label, r["names_per_s"], f"{r['vs_torch_fp32']}x", r["min_cosine_vs_fp32"],
                           r.get("ncbi_test_acc@1", "")] for label, r in rows.items())))
    print(record["machine"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
