"""Each inference backend on this machine: local (in-process PyTorch), a real Triton server
(the bundled binary on a copy of model_repository/, gRPC and HTTP) and a real Ray Serve
application. Weights are random (the released networks' compute), exported as an operator
would. Printed, never asserted:

- Wav2Lip crops/s and request latency (batch 16, one client and several);
- SOVQAE restorer crops/s (an identity model loaded on demand; 256x256 by default);
- a whole 720p dub (Wav2Lip + restoration, face tracking, compositing, encoding) in
  frames/s through each backend, against the clip's real time.

GPU where the machine has one (local on CUDA; Triton's KIND_AUTO instances; Ray replicas
with a GPU). `--concurrent-dubs N` also runs N dubs at once through each served backend
(several jobs sharing one server: its dynamic batcher merges their requests).

    .venv/bin/python benchmarks/bench_inference.py [--seconds 8] [--clients 4] [--dub-seconds 4]
        [--backends local,triton-grpc,triton-http,ray] [--dub-height 1080] [--concurrent-dubs 3]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from lipdub.engines.registry import build_engine
from lipdub.inference.backends import LOCAL, remote_predictor, sovqae_restorer
from lipdub.inference.contract import WAV2LIP
from lipdub.inference.export import example_batch, export_wav2lip, sovqae_package
from lipdub.inference.local import pick_device
from lipdub.models.wav2lip import Wav2Lip, save_wav2lip_checkpoint
from lipdub.pipeline import dub
from lipdub.restore.model import SOVQAE
from lipdub.restore.spaces import default_space
from lipdub.restore.stage import LocalSovqae
from lipdub.samples.speech import SpeechSpec, speech_like, write_wav
from lipdub.samples.talking import ClipSpec, write_talking_clip
from lipdub_model_server.triton_server import TritonServer

REPOSITORY = Path(__file__).parent.parent / "model_repository"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BACKENDS = (LOCAL, "triton-grpc", "triton-http", "ray")


def client_counts(spec: str, many: int) -> list[int]:
    """One client, then `many` at once: only through a server, where the batcher can merge
    concurrent requests (in one process with one model, concurrency only queues)."""
    return [1] if spec == LOCAL else sorted({1, many})


def measure(predict: Callable, inputs: list[np.ndarray], seconds: float,
            clients: int) -> dict:
    predict(*inputs)  # warm-up (model load, first allocation)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            predict(*inputs)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"crops_per_s": len(latencies) * len(inputs[0]) / elapsed,
            "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]}


def row(name: str, clients: int, r: dict) -> None:
    print(f"  {name:<12} {clients} client(s): {r['crops_per_s']:8.1f} crops/s, "
          f"latency p50 {r['p50_ms']:7.1f} ms, p99 {r['p99_ms']:7.1f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--restorer-resolution", type=int, default=256)
    parser.add_argument("--dub-seconds", type=float, default=4.0)
    parser.add_argument("--dub-height", type=int, default=720)
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help=f"comma-separated, from {', '.join(BACKENDS)}")
    parser.add_argument("--concurrent-dubs", type=int, default=1,
                        help="also run this many dubs at once through each served backend")
    parser.add_argument("--skip-crops", action="store_true",
                        help="only the whole dubs")
    parser.add_argument("--server-logs", type=Path, default=None,
                        help="keep the model servers' logs in this folder")
    args = parser.parse_args()
    device = pick_device("auto")
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"device {device}"
          + (f" ({torch.cuda.get_device_name()})" if device == "cuda" else "")
          + f"; batch {args.batch}, {args.seconds:.0f} s a row", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        checkpoint = tmp / "wav2lip_random.pth"
        torch.manual_seed(0)
        save_wav2lip_checkpoint(Wav2Lip(), checkpoint)
        repository = tmp / "model_repository"
        shutil.copytree(REPOSITORY, repository)
        export_wav2lip(checkpoint, repository, onnx=False)
        restorer_model = SOVQAE(default_space(args.restorer_resolution))
        restorer_model.train()(torch.rand(16, 3, args.restorer_resolution,
                                          args.restorer_resolution))  # codebook initialised
        restorer_model.eval()

        chosen = args.backends.split(",")
        unknown = sorted(set(chosen) - set(BACKENDS))
        if unknown:
            raise SystemExit(f"unknown backend(s) {unknown}; choose from {BACKENDS}")
        backends: dict[str, str] = {}
        servers: list = []
        if LOCAL in chosen:
            backends[LOCAL] = LOCAL
        if {"triton-grpc", "triton-http"} & set(chosen):
            began = time.perf_counter()
            triton = TritonServer(repository, http_port=free_port(), grpc_port=free_port(),
                                  metrics_port=free_port(), load=[WAV2LIP.name])
            servers.append(triton)
            triton.start(log=(args.server_logs or tmp) / "triton.log")
            print(f"triton ready in {time.perf_counter() - began:.1f} s", flush=True)
            if "triton-grpc" in chosen:
                backends["triton grpc"] = f"triton://{triton.grpc_url}"
            if "triton-http" in chosen:
                backends["triton http"] = f"triton+http://{triton.host}:{triton.http_port}"
        if "ray" in chosen:
            from lipdub_model_server.ray_process import RayServeProcess  # ray is heavy

            began = time.perf_counter()
            ray = RayServeProcess(repository, port=free_port())
            servers.append(ray)
            ray.start(log=(args.server_logs or tmp) / "ray.log")
            print(f"ray serve ready in {time.perf_counter() - began:.1f} s", flush=True)
            backends["ray http"] = ray.spec
        try:
            if not args.skip_crops:
                crops_all(backends, checkpoint, restorer_model, device, args)
            dub_all(backends, checkpoint, restorer_model, device, tmp, args)
        finally:
            for server in servers:
                server.stop()


def crops_all(backends: dict[str, str], checkpoint: Path, restorer_model: SOVQAE,
              device: str, args: argparse.Namespace) -> None:
    print(f"Wav2Lip (6x96x96 + 1x80x16 -> 3x96x96), batch {args.batch}:")
    wav2lip_inputs = example_batch(WAV2LIP, args.batch)
    for name, spec in backends.items():
        if spec == LOCAL:
            predict = build_engine("wav2lip", checkpoint, device).predictor
        else:
            predict = remote_predictor(spec, WAV2LIP)
        for clients in client_counts(spec, args.clients):
            row(name, clients, measure(predict, wav2lip_inputs, args.seconds, clients))
    r = args.restorer_resolution
    print(f"SOVQAE restorer {default_space(r)}, batch {args.batch}:")
    crops = [np.random.default_rng(0).random((args.batch, 3, r, r), dtype=np.float32)]
    contract, package = sovqae_package(restorer_model)
    for name, spec in backends.items():
        predict = (LocalSovqae(restorer_model, device) if spec == LOCAL
                   else remote_predictor(spec, contract, package))
        for clients in client_counts(spec, args.clients):
            row(name, clients, measure(predict, crops, args.seconds, clients))


def dub_all(backends: dict[str, str], checkpoint: Path, restorer_model: SOVQAE,
            device: str, tmp: Path, args: argparse.Namespace) -> None:
    height = args.dub_height
    spec = ClipSpec(width=height * 16 // 9, height=height, face_height=height * 13 // 36)
    voice = speech_like(SpeechSpec(seconds=args.dub_seconds, seed=3))
    clip = write_talking_clip(tmp / "clip.mp4", spec, voice)
    audio = tmp / "voice.wav"
    write_wav(str(audio), speech_like(SpeechSpec(seconds=args.dub_seconds, seed=4)))
    frames = round(args.dub_seconds * float(spec.fps))
    print(f"whole dub, {spec.width}x{spec.height} {float(spec.fps):.0f} fps, {frames} frames "
          "(Wav2Lip + restoration; decode, track, composite, encode):")
    for name, backend in backends.items():
        for count in client_counts(backend, args.concurrent_dubs):
            started = time.perf_counter()
            with ThreadPoolExecutor(count) as pool:
                reports = list(pool.map(
                    lambda i, name=name, backend=backend: one_dub(
                        backend, checkpoint, restorer_model, device, clip, audio,
                        tmp / f"out-{name.replace(' ', '-')}-{i}.mp4", args),
                    range(count)))
            seconds = time.perf_counter() - started
            fps = sum(r.output_frames for r in reports) / seconds
            stages = ", ".join(f"{k} {v.seconds:.1f}s" for k, v in reports[0].stages.items())
            label = f"{count} dubs at once" if count > 1 else "one dub"
            print(f"  {name:<12} {label}: {fps:6.2f} frames/s in all "
                  f"({fps / float(spec.fps):.2f}x real time), {seconds:.1f} s wall; "
                  f"{stages}", flush=True)


# Each concurrent dub stands for a worker process of its own; in one process the set-up
# (torch.export of the restorer) is not thread-safe, so only the dubs themselves overlap.
_SETUP = threading.Lock()


def one_dub(backend: str, checkpoint: Path, restorer_model: SOVQAE, device: str,
            clip: Path, audio: Path, out: Path, args: argparse.Namespace):
    with _SETUP:
        engine = build_engine("wav2lip", checkpoint, device, args.batch, backend)
        restorer = sovqae_restorer(backend, restorer_model, device, args.batch, resident=4)
    try:
        return dub(clip, audio, out, engine, restorer=restorer)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
