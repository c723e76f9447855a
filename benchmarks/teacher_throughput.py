"""Teacher client throughput and journal overhead, against a local server with fixed latency.

    python benchmarks/teacher_throughput.py [--requests 1000] [--concurrency 32] [--latency-ms 50]

Prints the wall time of N requests through the real client (journal, budget, retries on), its ratio to
the ideal N / concurrency x latency, the same run with an in-memory journal (the baseline, same process),
and the journal's commit cost per request measured directly. Goal (issue 3): ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

from jiuzhang.teacher.budget import Budget, Caps, Prices
from jiuzhang.teacher.client import RetryPolicy, Sampling, TeacherClient
from jiuzhang.teacher.journal import Journal
from jiuzhang.teacher.server import ChatServer, completion_body


def make_answer(latency_s: float):
    def answer(body, headers):
        time.sleep(latency_s)
        return 200, {}, completion_body(body["model"], "[Problem]: p\n\n[Solution]: s", "stop", 10, 10, "b", "bench")
    return answer


def serve(port_queue, latency_s: float) -> None:
    """The server runs in its own process so its threads do not compete with the client for the GIL."""
    with ChatServer(make_answer(latency_s)) as server:
        port_queue.put(server.url)
        while True:
            time.sleep(3600)


def run_once(url: str, journal: Journal, n: int, concurrency: int, tag: str) -> float:
    client = TeacherClient(Sampling("bench", 0.6, None, 2500), RetryPolicy(0, 1, 1), concurrency, 30.0,
                           "bench-key", url, None, journal, Budget(Caps(None, None, None), Prices(30, 60)))
    items = [(f"{tag}{i}", f"{tag} prompt {i}") for i in range(n)]
    start = time.perf_counter()
    outcomes = asyncio.run(client.run(items))
    elapsed = time.perf_counter() - start
    assert all(o.status == "ok" for o in outcomes), "benchmark requests failed"
    return elapsed


def commit_cost(path: Path, n: int) -> float:
    journal = Journal(path)
    body = {"model": "m", "messages": [{"role": "user", "content": "x" * 800}]}
    response = json.loads(completion_body("m", "y" * 2000, "stop", 200, 500, "r", "f"))
    start = time.perf_counter()
    for i in range(n):
        journal.record(f"k{i}", f"i{i}", body, "ok", 1, response, None, 200, 500, 0.03, 0.05)
    per = (time.perf_counter() - start) / n
    journal.close()
    return per


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency-ms", type=float, default=50.0)
    args = ap.parse_args()
    ideal = args.requests / args.concurrency * args.latency_ms / 1000
    ctx = multiprocessing.get_context("spawn")
    urls = ctx.Queue()
    proc = ctx.Process(target=serve, args=(urls, args.latency_ms / 1000), daemon=True)
    proc.start()
    url = urls.get(timeout=60)
    with tempfile.TemporaryDirectory() as tmp:
        run_once(url, Journal(":memory:"), 64, args.concurrency, "warm")  # warm imports and sockets
        baseline = run_once(url, Journal(":memory:"), args.requests, args.concurrency, "mem")
        journal = Journal(Path(tmp) / "journal.sqlite")
        real = run_once(url, journal, args.requests, args.concurrency, "disk")
        journal.close()
        per_commit = commit_cost(Path(tmp) / "commit.sqlite", 2000)
    proc.terminate()
    print(f"requests={args.requests} concurrency={args.concurrency} latency={args.latency_ms:.0f}ms "
          f"ideal={ideal:.3f}s")
    print(f"with on-disk journal : {real:.3f}s  ratio to ideal {real / ideal:.2f}x")
    print(f"in-memory journal    : {baseline:.3f}s  ratio to ideal {baseline / ideal:.2f}x (baseline)")
    print(f"journal end-to-end overhead: {(real - baseline) / args.requests * 1000:.3f} ms/request")
    print(f"journal commit (WAL, synchronous=NORMAL, 2.7 kB row): {per_commit * 1000:.3f} ms/request")


if __name__ == "__main__":
    main()
