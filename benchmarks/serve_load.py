"""Load test of ``entitylink serve`` on loopback: N concurrent clients for T seconds, with and without
micro-batching.

    python -m benchmarks.serve_load --index demo-output/index --clients 16 --seconds 20
    python -m benchmarks.serve_load --index IDX --endpoint annotate --texts pubtator:FILE --clients 1 2 4 8

``--endpoint annotate`` posts whole texts to ``/annotate``: the documents of ``--texts`` (repeatable),
each once, taken in turn by the clients, from a freshly started service at each client count (nothing
cached). The same texts are annotated offline with the :class:`Annotator` in this process (same index
and detection settings, one document per call as the service sees them, nothing cached) for the
throughput the service is measured against.

Starts the server as a subprocess on 127.0.0.1 (a free port), runs bounded client loops that stop by
themselves, and reports requests/s, mentions/s, p50/p99 latency and errors. Writes JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks._record import markdown_table, write_record

MENTIONS = ["heart attack", "high blood pressure", "enlarged liver", "short stature", "seizures", "low platelets",
            "hearing loss", "cleft lip", "fever", "muscle weakness", "kidney failure", "type 2 diabetes"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(index: Path, micro_batching: bool, window_ms: float, extra: tuple[str, ...] = ()) \
        -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "entitylink", "-q", "serve", "--index", str(index), "--port", str(port),
               "--batch-window-ms", str(window_ms), *extra]
    if not micro_batching:
        command.append("--no-micro-batching")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.25)
    proc.kill()
    raise SystemExit("server did not start")


async def load(base: str, clients: int, seconds: float, mentions_per_request: int,
               texts: list[str] | None = None) -> dict:
    """Requests/s, items/s (mentions, or texts with ``texts``: ``/annotate``), latency percentiles, errors."""
    latencies: list[float] = []
    errors = 0
    mentions_done = 0
    stop = time.perf_counter() + seconds

    queue = list(reversed(texts)) if texts else []

    async def client(seed: int) -> None:
        nonlocal errors, mentions_done
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while time.perf_counter() < stop:  # bounded: stops by itself after `seconds`
                batch = [f"{rng.choice(MENTIONS)}" for _ in range(mentions_per_request)]
                started = time.perf_counter()
                try:
                    if texts:
                        if not queue:
                            break  # every text posted once
                        response = await http.post("/annotate", json={"text": queue.pop(), "k": 5})
                        batch = [""]
                    else:
                        response = await http.post("/link", json={"mentions": batch, "k": 5})
                    if response.status_code != 200:
                        errors += 1
                        continue
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - started)
                mentions_done += len(batch)

    begun = time.perf_counter()
    await asyncio.gather(*[client(i) for i in range(clients)])
    elapsed = time.perf_counter() - begun
    latencies.sort()
    return {
        "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 1),
        "requests_per_s": round(len(latencies) / elapsed, 1), "mentions_per_s": round(mentions_done / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None,
    }


def offline_rate(index: Path, texts: list[str], detector: str) -> float:
    """Texts/s of the Annotator in this process, one text per call (as the service receives them)."""
    from entitylink import Linker
    from entitylink.link.annotate import Annotator

    annotator = Annotator(Linker.load(index), detector=detector)
    annotator.annotate_one(texts[0])  # warm-up
    started = time.perf_counter()
    for text in texts:
        annotator.annotate_one(text)
    return len(texts) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--clients", type=int, nargs="+", default=[16])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--mentions-per-request", type=int, default=1)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--endpoint", choices=["link", "annotate"], default="link")
    parser.add_argument("--texts", action="append", default=[], metavar="pubtator:FILE",
                        help="documents for --endpoint annotate (repeatable)")
    parser.add_argument("--detector", choices=["dictionary", "exact"], default="dictionary",
                        help="the service's and the offline Annotator's (--endpoint annotate)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args(argv)
    texts = None
    record: dict = {}
    if args.endpoint == "annotate":
        from entitylink.text.pubtator import read_pubtator

        if not args.texts or not all(t.startswith("pubtator:") for t in args.texts):
            raise SystemExit("--endpoint annotate needs --texts pubtator:FILE")
        texts = list(dict.fromkeys(d.text for spec in args.texts for d in read_pubtator(spec.split(":", 1)[1])))
        record["offline_texts_per_s"] = round(offline_rate(args.index, texts, args.detector), 1)
        record["words_per_text"] = round(statistics.mean(len(t.split()) for t in texts), 1)
    results = {}
    for micro_batching in ((True,) if texts else (True, False)):
        mode = "micro-batching" if micro_batching else "one request at a time"
        for clients in args.clients:
            proc, base = start_server(args.index, micro_batching, args.window_ms, ("--detector", args.detector))
            try:
                asyncio.run(load(base, 1, 2, 1))  # warm-up on /link: nothing of the texts is cached
                results[f"{mode}, {clients} clients"] = asyncio.run(
                    load(base, clients, args.seconds, args.mentions_per_request, texts))
            finally:
                proc.terminate()
                proc.wait(timeout=60)
    write_record(args.out, {"settings": {k: str(v) for k, v in vars(args).items()}, **record, "results": results},
                 argv)
    unit = "texts/s" if texts else "mentions/s"
    print(markdown_table(["mode", "requests/s", unit, "p50 ms", "p99 ms", "errors"],
                         ([mode, r["requests_per_s"], r["mentions_per_s"], r["p50_ms"], r["p99_ms"], r["errors"]]
                          for mode, r in results.items())))
    if texts:
        print(f"offline Annotator: {record['offline_texts_per_s']} texts/s ({record['words_per_text']} words each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
