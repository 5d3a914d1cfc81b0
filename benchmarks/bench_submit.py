"""Job submission throughput and latency of POST /v1/jobs (URIs, no upload) against a real
gateway process (uvicorn) on PostgreSQL + Redis, with a local load generator.

    .venv/bin/python benchmarks/bench_submit.py [--rate 300 --seconds 20] [--requests 3000]

Two measurements: latency at a fixed arrival rate (open loop: requests arrive on schedule,
as from many independent clients) and the most it takes (closed loop, N clients).

Creates (and drops) its own PostgreSQL database and uses Redis database 14. Figures are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import httpx
import numpy as np
import psycopg
import redis

from lipdub.db.session import session_factory, upgrade
from lipdub.jobs.keys import create_key

BODY = {"video": "s3://footage/ep1.mp4", "audio": "s3://footage/ep1-fr.wav",
        "options": {"engine": "warp"}}


async def post(client: aiohttp.ClientSession, url: str) -> None:
    async with client.post(url, json=BODY) as r:
        if r.status != 201:
            raise RuntimeError(await r.text())
        await r.read()


async def closed_loop(port: int, key: str, total: int, concurrency: int) -> list[float]:
    """`concurrency` clients, each sending its next request when the last one is answered:
    the most the gateway can take (latency here is concurrency / throughput by design)."""
    latencies: list[float] = []
    counter = iter(range(total))
    url = f"http://127.0.0.1:{port}/v1/jobs"
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"},
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as c:
        async def client() -> None:
            for _ in counter:
                started = time.perf_counter()
                await post(c, url)
                latencies.append(time.perf_counter() - started)
        await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies


async def open_loop(port: int, key: str, rate: float, seconds: float) -> list[float]:
    """Requests sent on a fixed schedule (`rate` per second) whether or not earlier ones were
    answered, as real clients arrive; latency counts from the scheduled time, so a stalled
    gateway cannot hide its queue (no coordinated omission)."""
    url = f"http://127.0.0.1:{port}/v1/jobs"
    latencies: list[float] = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {key}"},
                                     connector=aiohttp.TCPConnector(limit=256)) as c:
        async def one(due: float) -> None:
            await post(c, url)
            latencies.append(time.perf_counter() - due)

        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(int(rate * seconds)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
    return latencies


def cpu_seconds(group: int) -> float:
    """User + system CPU time of the live processes of a process group (Linux /proc): the
    gateway and its worker processes."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        if int(fields[2]) == group:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def report(label: str, latencies: list[float], elapsed: float, server_cpu: float,
           client_cpu: float) -> None:
    ms = np.array(latencies) * 1000
    n = len(latencies)
    print(f"{label}: {n} submissions in {elapsed:.1f} s = {n / elapsed:.0f} submissions/s")
    print(f"  latency p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, "
          f"max {ms.max():.1f} ms")
    print(f"  CPU per submission: gateway {1000 * server_cpu / n:.2f} ms, "
          f"load generator {1000 * client_cpu / n:.2f} ms")


def measured(server_pid: int, run: Callable[[], list[float]]) -> tuple:
    started, server_cpu, client_cpu = (time.perf_counter(), cpu_seconds(server_pid),
                                       time.process_time())
    latencies = run()
    return (latencies, time.perf_counter() - started, cpu_seconds(server_pid) - server_cpu,
            time.process_time() - client_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="closed-loop requests")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rate", type=float, default=300.0, help="open-loop requests/s")
    parser.add_argument("--seconds", type=float, default=20.0, help="open-loop duration")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()
    name = f"lipdub_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    broker = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(broker).flushdb()
    upgrade(url)
    with session_factory(url)() as session:
        _, key = create_key(session, "bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LIPDUB_DATABASE_URL": url, "LIPDUB_EXECUTOR": "celery",
           "LIPDUB_BROKER_URL": broker, "LIPDUB_MAX_JOBS_IN_FLIGHT": str(10**9)}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "lipdub_gateway.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
         "--log-level", "warning"], env=env, start_new_session=True)
    print(f"POST /v1/jobs (URIs, no upload) to uvicorn ({args.workers} worker process"
          f"{'es' if args.workers > 1 else ''}) on PostgreSQL + Redis, "
          f"all on this machine ({os.cpu_count()} cores, load generator included)")
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(closed_loop(port, key, 300, args.concurrency))  # warm-up
        report(f"open loop at {args.rate:.0f}/s for {args.seconds:.0f} s",
               *measured(server.pid, lambda: asyncio.run(open_loop(port, key, args.rate,
                                                                    args.seconds))))
        report(f"closed loop, {args.concurrency} concurrent (the most it takes)",
               *measured(server.pid, lambda: asyncio.run(closed_loop(
                   port, key, args.requests, args.concurrency))))
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        redis.Redis.from_url(broker).flushdb()
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
