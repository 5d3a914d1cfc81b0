"""Restoration throughput: face crops per second through a SOVQAE restorer (the default
space for 256x256 crops), on CPU and on CUDA when present. Figures are printed.

    .venv/bin/python benchmarks/bench_restore.py [--resolution 256] [--batch 32]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lipdub.restore.identity_training import default_space
from lipdub.restore.model import SOVQAE
from lipdub.restore.stage import Restorer


def crops_per_second(restorer: Restorer, crops: list[np.ndarray], repeats: int) -> float:
    restorer.restore_crops(crops)  # warm-up (allocations, kernels)
    started = time.perf_counter()
    for _ in range(repeats):
        restorer.restore_crops(crops)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return repeats * len(crops) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    space = default_space(args.resolution)
    torch.manual_seed(0)
    model = SOVQAE(space).eval()
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (args.resolution, args.resolution, 3), dtype=np.uint8)
             for _ in range(args.batch)]
    print(f"SOVQAE {space}, {sum(p.numel() for p in model.parameters()):,} parameters")
    print(f"cpu ({torch.get_num_threads()} threads), fp32: "
          f"{crops_per_second(Restorer(model, 'cpu', args.batch), crops, args.repeats):.1f} "
          "crops/s (resize in + model + resize out)")
    if torch.cuda.is_available():
        gpu = Restorer(SOVQAE(space), "cuda", args.batch)
        print(f"cuda ({torch.cuda.get_device_name()}), fp16: "
              f"{crops_per_second(gpu, crops, args.repeats * 10):.1f} crops/s")


if __name__ == "__main__":
    main()
