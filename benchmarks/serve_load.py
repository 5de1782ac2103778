"""Load test of ``entitylink serve`` on loopback: N concurrent clients for T seconds, with and without
micro-batching.

    python -m benchmarks.serve_load --index demo-output/index --clients 16 --seconds 20

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


def start_server(index: Path, micro_batching: bool, window_ms: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "entitylink", "-q", "serve", "--index", str(index), "--port", str(port),
               "--batch-window-ms", str(window_ms)]
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


async def load(base: str, clients: int, seconds: float, mentions_per_request: int) -> dict:
    latencies: list[float] = []
    errors = 0
    mentions_done = 0
    stop = time.perf_counter() + seconds

    async def client(seed: int) -> None:
        nonlocal errors, mentions_done
        rng = random.Random(seed)
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            while time.perf_counter() < stop:  # bounded: stops by itself after `seconds`
                batch = [f"{rng.choice(MENTIONS)}" for _ in range(mentions_per_request)]
                started = time.perf_counter()
                try:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--mentions-per-request", type=int, default=1)
    parser.add_argument("--window-ms", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_load.json"))
    args = parser.parse_args(argv)
    results = {}
    for micro_batching in (True, False):
        proc, base = start_server(args.index, micro_batching, args.window_ms)
        try:
            asyncio.run(load(base, 2, 2, 1))  # warm-up
            results["micro-batching" if micro_batching else "one request at a time"] = asyncio.run(
                load(base, args.clients, args.seconds, args.mentions_per_request))
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    write_record(args.out, {"settings": {k: str(v) for k, v in vars(args).items()}, "results": results}, argv)
    print(markdown_table(["mode", "requests/s", "mentions/s", "p50 ms", "p99 ms", "errors"],
                         ([mode, r["requests_per_s"], r["mentions_per_s"], r["p50_ms"], r["p99_ms"], r["errors"]]
                          for mode, r in results.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
