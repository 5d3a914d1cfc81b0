"""Job submission throughput and latency of POST /v1/jobs (URIs, no upload) against a real
gateway process (uvicorn) on PostgreSQL + Redis, with a local load generator.

    .venv/bin/python benchmarks/bench_submit.py [--requests 3000] [--concurrency 32]

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

import httpx
import numpy as np
import psycopg
import redis

from lipdub.db.session import session_factory, upgrade
from lipdub.jobs.keys import create_key

SERVER = """
import uvicorn
from lipdub_gateway.app import create_app
uvicorn.run(create_app(), host="127.0.0.1", port={port}, log_level="warning")
"""


async def fire(port: int, key: str, total: int, concurrency: int) -> list[float]:
    body = {"video": "s3://footage/ep1.mp4", "audio": "s3://footage/ep1-fr.wav",
            "options": {"engine": "warp"}}
    latencies: list[float] = []
    counter = iter(range(total))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async def worker() -> None:
            for _ in counter:
                started = time.perf_counter()
                r = await client.post("/v1/jobs", json=body)
                latencies.append(time.perf_counter() - started)
                if r.status_code != 201:
                    raise RuntimeError(r.text)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
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
    server = subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], env=env,
                              start_new_session=True)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/healthz")
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(fire(port, key, 200, args.concurrency))  # warm-up
        started = time.perf_counter()
        latencies = asyncio.run(fire(port, key, args.requests, args.concurrency))
        elapsed = time.perf_counter() - started
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(20)
        redis.Redis.from_url(broker).flushdb()
        with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ms = np.array(latencies) * 1000
    print(f"{args.requests} POST /v1/jobs, {args.concurrency} concurrent, one uvicorn process, "
          f"PostgreSQL + Redis on this machine ({os.cpu_count()} cores, load generator "
          "included):")
    print(f"  throughput {args.requests / elapsed:.0f} submissions/s")
    print(f"  latency p50 {np.percentile(ms, 50):.1f} ms, p99 {np.percentile(ms, 99):.1f} ms, "
          f"max {ms.max():.1f} ms")


if __name__ == "__main__":
    main()
