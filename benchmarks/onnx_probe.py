"""ONNX Runtime against PyTorch as the encoder's backend, fp32 and int8 (issue 7).

    pip install 'entitylink[onnx]'      # onnxruntime and onnx, optional
    python -m benchmarks.onnx_probe --n 5000

Encodes the same MEDIC names through our ``Encoder`` (length-sorted batches, dynamic padding) with the
forward pass in: torch fp32, torch ``precision="auto"``, ONNX Runtime fp32 (``onnx_backend.export_onnx``:
the packaged MiniLM + mean pooling, eager attention) and ONNX Runtime int8 (``precision="int8"``: MatMul
weights per channel in 7 bits, activations quantised per batch). Reports names/s, the smallest cosine to
torch fp32 and NCBI-disease test acc@1 with each. The probe that led to ``precision="int8"``; the
2026-11-24 row onwards measures the backend as shipped.
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
from entitylink.errors import MissingDependencyError
from entitylink.model.onnx_backend import OnnxSession, export_onnx, require_onnxruntime
from entitylink.text.normalize import Normalizer


class OnnxEncoder(Encoder):
    """Our Encoder with the forward pass run by an ONNX Runtime session (tokenising, sorting, padding unchanged)."""

    def __init__(self, session: OnnxSession):
        super().__init__("default", pooling="mean", precision="fp32", device="cpu")
        self.session = session

    def forward(self, batch: dict[str, torch.Tensor], model: torch.nn.Module | None = None) -> torch.Tensor:
        return self.session(batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-accuracy", action="store_true", help="skip the NCBI acc@1 comparison")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/onnx_probe.json"))
    args = parser.parse_args(argv)
    try:
        require_onnxruntime()
    except MissingDependencyError as err:
        parser.error(str(err))
    import onnxruntime
    medic = args.data / "medic" / "medic_06Jul2012.txt"
    source = Ontology.load(f"medic:{medic}") if medic.is_file() else Ontology.load("hpo")
    names = Normalizer().normalize_all(list(dict.fromkeys(source.names)))[: args.n]
    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Encoder("default", pooling="mean", precision="fp32", device="cpu")
        encoders = {
            "torch fp32": fp32,
            "torch precision=auto": Encoder("default", pooling="mean", precision="auto", device="cpu"),
            "ONNX Runtime fp32": OnnxEncoder(OnnxSession(export_onnx(fp32.model, "mean", Path(tmp) / "fp32.onnx"),
                                                         threads)),
            "ONNX Runtime int8 (entitylink precision=int8)": Encoder("default", pooling="mean", precision="int8"),
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
                                     "onnxruntime": onnxruntime.__version__}, argv)
    print(markdown_table(["backend", "names/s", "vs torch fp32", "min cosine vs fp32", "NCBI test acc@1"],
                         ([label, r["names_per_s"], f"{r['vs_torch_fp32']}x", r["min_cosine_vs_fp32"],
                           r.get("ncbi_test_acc@1", "")] for label, r in rows.items())))
    print(record["machine"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
