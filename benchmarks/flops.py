"""Training cost of the Mirror-BERT recipe (10k names x 2 epochs) in FLOPs: MiniLM vs PubMedBERT size (issue 7).

    python -m benchmarks.flops --data ../shared/data

Counts, without downloading anything: the parameters of all-MiniLM-L6-v2 (the packaged model) and of
a BERT-base model shaped like PubMedBERT (12 layers, hidden 768, vocabulary 30,522 — PubMedBERT's
own vocabulary has 28,895 entries, which changes only the embedding table); the mean token count
per MEDIC name (the packaged tokenizer, max_length 25, [CLS]/[SEP] included); then
    training FLOPs ~ 6 x (non-embedding parameters) x tokens + attention,
with tokens = names x epochs x 2 views x mean length. With the measured MiniLM seconds (``--minilm-seconds``),
the PubMedBERT-size seconds on the same machine follow from the FLOP ratio, at equal efficiency.

``--write-bert-base DIR`` also saves a randomly initialised model of that BERT-base shape, with the
packaged tokenizer, so that ``benchmarks.mirror_bert --throughput --model DIR`` can time the recipe at
PubMedBERT size (its accuracy means nothing; the seconds do).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks._record import write_record
from entitylink import Ontology
from entitylink.model.encoder import default_model_path


def count(config) -> dict:
    h, layers, inter = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    per_layer = 4 * h * h + 4 * h + 2 * h * inter + inter + h + 4 * h  # attention, FFN, 2 layer norms
    embeddings = (config.vocab_size + config.max_position_embeddings + config.type_vocab_size) * h + 2 * h
    return {"layers": layers, "hidden": h, "non_embedding_params": layers * per_layer, "embedding_params": embeddings}


def train_flops(shape: dict, tokens: float, mean_len: float) -> float:
    dense = 6 * shape["non_embedding_params"] * tokens
    attention = 6 * 2 * shape["layers"] * shape["hidden"] * mean_len * tokens  # QK^T and AV, fwd + bwd
    return dense + attention


def forward_flops(shape: dict, lengths: list[int]) -> float:
    """FLOPs of one forward pass over sequences of these token counts (no padding counted)."""
    tokens = sum(lengths)
    attention = sum(4 * shape["layers"] * shape["hidden"] * n * n for n in lengths)  # QK^T and AV
    return 2 * shape["non_embedding_params"] * tokens + attention


PEAK_SHAPES = ((4096, 384, 1536), (4096, 1536, 384), (2048, 2048, 2048))  # MiniLM's FFN shapes and a square


def peak_matmul_flops(precision: str, device: str = "cpu", seconds: float = 1.0) -> dict:
    """The best matmul rate this machine reaches in ``precision`` (fp32, bf16, fp16 or int8), FLOP/s.

    Timed on the encoder's own feed-forward shapes and a large square one, each after a warm-up;
    int8 uses ``torch._int_mm`` (int8 x int8 -> int32), the kernel family quantised encoders call.
    """
    import time

    import torch

    best = {"flops": 0.0, "shape": None}
    for m, k, n in PEAK_SHAPES:
        if precision == "int8":
            a = torch.randint(-64, 64, (m, k), dtype=torch.int8, device=device)
            b = torch.randint(-64, 64, (k, n), dtype=torch.int8, device=device)
            step = lambda a=a, b=b: torch._int_mm(a, b)  # noqa: E731
        else:
            dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
            a = torch.randn(m, k, device=device).to(dtype)
            b = torch.randn(k, n, device=device).to(dtype)
            step = lambda a=a, b=b: a @ b  # noqa: E731
        step()
        calls, start = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - start < seconds / len(PEAK_SHAPES):
            step()
            calls += 1
        if device != "cpu":
            torch.cuda.synchronize()
        rate = 2 * m * k * n * calls / (time.perf_counter() - start)
        if rate > best["flops"]:
            best = {"flops": rate, "shape": [m, k, n]}
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--names", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--minilm-seconds", type=float, default=None,
                        help="measured seconds of the MiniLM run (from benchmarks.mirror_bert --throughput)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/flops.json"))
    parser.add_argument("--write-bert-base", type=Path, default=None, metavar="DIR",
                        help="also save a randomly initialised BERT-base-shaped model (for timing only)")
    args = parser.parse_args(argv)
    from transformers import AutoConfig, AutoTokenizer, BertConfig, BertModel

    path = default_model_path()
    minilm = count(AutoConfig.from_pretrained(path))
    pubmedbert = count(BertConfig())  # bert-base shape: 12 x 768, FFN 3072
    tokenizer = AutoTokenizer.from_pretrained(path)
    medic = args.data / "medic" / "medic_06Jul2012.txt"
    names = (Ontology.load(f"medic:{medic}") if medic.is_file() else Ontology.load("hpo")).sample(args.names).names
    lengths = [len(ids) for ids in tokenizer(names, truncation=True, max_length=25)["input_ids"]]
    mean_len = sum(lengths) / len(lengths)
    tokens = args.names * args.epochs * 2 * mean_len
    flops = {"MiniLM-L6 (packaged)": train_flops(minilm, tokens, mean_len),
             "BERT-base / PubMedBERT size": train_flops(pubmedbert, tokens, mean_len)}
    ratio = flops["BERT-base / PubMedBERT size"] / flops["MiniLM-L6 (packaged)"]
    record = {"names": args.names, "epochs": args.epochs, "mean_tokens_per_name": round(mean_len, 2),
              "tokens": int(tokens),
              "shapes": {"MiniLM-L6 (packaged)": minilm, "BERT-base / PubMedBERT size": pubmedbert},
              "training_tflop": {k: round(v / 1e12, 1) for k, v in flops.items()}, "ratio": round(ratio, 1)}
    if args.minilm_seconds:
        record["minilm_seconds_measured"] = args.minilm_seconds
        record["pubmedbert_seconds_estimated"] = round(args.minilm_seconds * ratio)
        record["minilm_tflops_achieved"] = round(flops["MiniLM-L6 (packaged)"] / args.minilm_seconds / 1e12, 3)
    print(json.dumps(write_record(args.out, record, argv), indent=2))
    if args.write_bert_base:
        BertModel(BertConfig()).save_pretrained(args.write_bert_base)
        tokenizer.save_pretrained(args.write_bert_base)
        print(f"wrote a randomly initialised BERT-base-shaped model to {args.write_bert_base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
