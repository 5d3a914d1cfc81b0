"""Wav2Lip crops/s and request latency through each inference backend on this machine:
local (in-process PyTorch) and a real Triton server (the bundled binary, started here on a
copy of model_repository/ with weights exported from a random checkpoint: the same compute
as the released weights), over gRPC and HTTP, one client and several concurrent ones.

    .venv/bin/python benchmarks/bench_inference.py [--batch 16] [--seconds 20] [--clients 4]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import socket
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from lipdub.inference.contract import WAV2LIP
from lipdub.inference.export import example_batch, export_wav2lip
from lipdub.inference.local import LocalPredictor
from lipdub.models.wav2lip import Wav2Lip, load_wav2lip_checkpoint, save_wav2lip_checkpoint
from lipdub_model_server.triton_client import TritonPredictor
from lipdub_model_server.triton_server import TritonServer

REPOSITORY = Path(__file__).parent.parent / "model_repository"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(predict, batch: int, seconds: float, clients: int) -> dict:  # noqa: ANN001
    mel, faces = example_batch(WAV2LIP, batch)
    predict(mel, faces)  # warm-up (model load, first allocation)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            predict(mel, faces)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"crops_per_s": len(latencies) * batch / elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"cuda: {torch.cuda.is_available()}; batch {args.batch}, {args.seconds:.0f} s each")
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "wav2lip_random.pth"
        torch.manual_seed(0)
        save_wav2lip_checkpoint(Wav2Lip(), checkpoint)
        repository = Path(tmp) / "model_repository"
        shutil.copytree(REPOSITORY, repository)
        export_wav2lip(checkpoint, repository, onnx=False)
        server = TritonServer(repository, http_port=free_port(), grpc_port=free_port(),
                              metrics_port=free_port(), load=[WAV2LIP.name])
        began = time.perf_counter()
        server.start(log=Path(tmp) / "server.log")
        print(f"triton ready in {time.perf_counter() - began:.1f} s")
        try:
            backends = {
                "local": LocalPredictor(load_wav2lip_checkpoint(checkpoint), "auto"),
                "triton grpc": TritonPredictor(f"triton://{server.grpc_url}", WAV2LIP),
                "triton http": TritonPredictor(
                    f"triton+http://{server.host}:{server.http_port}", WAV2LIP),
            }
            for name, predict in backends.items():
                for clients in sorted({1, args.clients}):
                    if name == "local" and clients > 1:
                        continue  # one process, one model: concurrency only queues
                    r = measure(predict, args.batch, args.seconds, clients)
                    print(f"{name:<12} {clients} client(s): {r['crops_per_s']:7.1f} crops/s, "
                          f"latency p50 {r['p50_ms']:6.1f} ms, p99 {r['p99_ms']:6.1f} ms")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
