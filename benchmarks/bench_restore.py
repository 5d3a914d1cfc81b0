"""Restoration throughput: face crops per second through a SOVQAE restorer (the default
space for 256x256 crops), on CPU, and on CUDA when present (fp32 and fp16, end to end and
model alone), plus how far fp16 output strays from fp32. Figures are printed.

    .venv/bin/python benchmarks/bench_restore.py [--resolution 256] [--batch 32]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import time

import numpy as np
import torch

from lipdub.restore.model import RECONSTRUCT, RESIDUAL, SOVQAE
from lipdub.restore.spaces import default_space
from lipdub.restore.stage import Restorer


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def crops_per_second(restorer: Restorer, crops: list[np.ndarray], repeats: int) -> float:
    restorer.restore_crops(crops)  # warm-up (allocations, kernel choice)
    _sync()
    started = time.perf_counter()
    for _ in range(repeats):
        restorer.restore_crops(crops)
    _sync()
    return repeats * len(crops) / (time.perf_counter() - started)


def model_only_crops_per_second(model: torch.nn.Module, batch: int, resolution: int, half: bool,
                                repeats: int) -> float:
    """The network alone on a batch already on the GPU (no resize, no copies)."""
    x = torch.rand(batch, 3, resolution, resolution, device="cuda")
    x = x.half() if half else x
    with torch.inference_mode():
        model(x)
        _sync()
        started = time.perf_counter()
        for _ in range(repeats):
            model(x)
    _sync()
    return repeats * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gpu-batches", default="32,128,256")
    parser.add_argument("--formulation", default=RESIDUAL, choices=[RESIDUAL, RECONSTRUCT])
    args = parser.parse_args()
    space = dataclasses.replace(default_space(args.resolution), formulation=args.formulation)
    torch.manual_seed(0)
    model = SOVQAE(space).eval()
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (args.resolution, args.resolution, 3), dtype=np.uint8)
             for _ in range(args.batch)]
    print(f"SOVQAE {space}, {sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"cpu ({torch.get_num_threads()} threads), fp32: "
          f"{crops_per_second(Restorer.local(model, 'cpu', args.batch), crops, args.repeats):.1f} "
          "crops/s (resize in + model + resize out)")
    if not torch.cuda.is_available():
        print("no CUDA device: GPU figures not taken")
        return
    print(f"cuda: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    state = model.state_dict()
    for batch in (int(b) for b in args.gpu_batches.split(",")):
        many = [crops[i % len(crops)] for i in range(batch)]
        for half in (False, True):
            gpu_model = SOVQAE(space)
            gpu_model.load_state_dict(state)
            restorer = Restorer.local(gpu_model, "cuda", batch, half=half)
            end_to_end = crops_per_second(restorer, many, args.repeats * 10)
            network = restorer.predictor.predictor.network  # type: ignore[attr-defined]
            alone = model_only_crops_per_second(network, batch, args.resolution, half,
                                                args.repeats * 10)
            print(f"cuda batch {batch:4d} {'fp16' if half else 'fp32'}: "
                  f"{end_to_end:8.1f} crops/s end to end (uint8 in/out, resize, copies), "
                  f"{alone:8.1f} crops/s model alone")
    reference = Restorer.local(copy.deepcopy(model), "cuda", args.batch, half=False)
    fast = Restorer.local(copy.deepcopy(model), "cuda", args.batch, half=True)
    a = np.stack(reference.restore_crops(crops)).astype(np.int16)
    b = np.stack(fast.restore_crops(crops)).astype(np.int16)
    diff = np.abs(a - b)
    print(f"fp16 vs fp32 output: mean |diff| {diff.mean():.3f} levels, "
          f"99th percentile {np.percentile(diff, 99):.0f}, max {diff.max()} (of 255)")


if __name__ == "__main__":
    main()
