"""SOVQAE training: speed (steps/s, crops/s) and what it reaches on held-out frames, on
CPU or CUDA (mixed precision, with the adversarial term when on). Figures are printed.

The crops are one person's aligned face crops from a generated talking clip (the real
detection and tracking path). `--save-crops DIR` writes them as JPEG files so that a machine
without the media stack (a GPU box) can train on exactly the same crops with `--crops DIR`.

    .venv/bin/python benchmarks/bench_restore_train.py --seconds 20 --save-crops .bench/crops
    python benchmarks/bench_restore_train.py --crops .bench/crops --steps 2000 --device cuda
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from lipdub.restore.degrade import degrade, lower_face_mask
from lipdub.restore.metrics import region_scores
from lipdub.restore.model import SOVQAE
from lipdub.restore.spaces import default_space
from lipdub.restore.stage import Restorer
from lipdub.restore.train import TrainConfig, split, train_sovqae


def crops_from_clip(seconds: float, folder: Path) -> np.ndarray:
    from lipdub.restore.crops import extract_crops
    from lipdub.samples.speech import SpeechSpec, speech_like
    from lipdub.samples.talking import ClipSpec, write_talking_clip

    clip = write_talking_clip(folder / "person.mp4", ClipSpec(face_height=260),
                              speech_like(SpeechSpec(seconds=seconds, seed=2)))
    crops, _ = extract_crops([clip])
    return crops


def save_crops(crops: np.ndarray, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, crop in enumerate(crops):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])


def load_crops(folder: Path) -> np.ndarray:
    files = sorted(folder.glob("*.jpg"))
    return np.stack([cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files])


def stage_scores(model: SOVQAE, clean: np.ndarray, device: str, half: bool
                 ) -> tuple[float, float]:
    """Held-out PSNR/SSIM through the restoration stage itself (uint8 in and out), blended
    in where engines change pixels, at the given precision."""
    rng = np.random.default_rng(1234)
    degraded = [degrade(c, rng) for c in clean]
    restored = Restorer.local(copy.deepcopy(model), device, 64, half=half).restore_crops(degraded)
    mask = lower_face_mask(clean.shape[1])[..., None]
    scores = [region_scores(c, np.clip(r * mask + d * (1 - mask) + 0.5, 0, 255).astype(np.uint8))
              for c, d, r in zip(clean, degraded, restored, strict=True)]
    return float(np.mean([s[0] for s in scores])), float(np.mean([s[1] for s in scores]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=Path, help="a folder of crops made by --save-crops")
    parser.add_argument("--seconds", type=float, default=20.0, help="generated clip length")
    parser.add_argument("--save-crops", type=Path)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--adversarial", default="auto", choices=["auto", "on", "off"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        crops = load_crops(args.crops) if args.crops else crops_from_clip(args.seconds,
                                                                          Path(tmp))
        if args.save_crops:
            save_crops(crops, args.save_crops)
            print(f"saved {len(crops)} crops to {args.save_crops}")
        space = default_space(crops.shape[1])
        config = TrainConfig(steps=args.steps, batch_size=args.batch, device=args.device,
                             adversarial=args.adversarial, checkpoint_every=args.steps)
        device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
            else args.device
        name = torch.cuda.get_device_name() if device == "cuda" else \
            f"cpu ({torch.get_num_threads()} threads)"
        print(f"{len(crops)} crops at {crops.shape[1]} px, {space}")
        print(f"device {name}, torch {torch.__version__}, {args.steps} steps of "
              f"{args.batch}, adversarial {config.uses_adversarial(device)}")
        started = time.perf_counter()
        result = train_sovqae(crops, space, config, Path(tmp) / "run")
        seconds = time.perf_counter() - started
    e = result.evaluation
    history = result.history
    print(f"trained in {seconds:.1f} s (evaluation included): {args.steps / seconds:.2f} "
          f"steps/s, {args.steps * args.batch / seconds:.1f} crops/s")
    print(f"loss first 10 steps {np.mean([r['loss'] for r in history[:10]]):.4f} -> last 10 "
          f"{np.mean([r['loss'] for r in history[-10:]]):.4f}")
    print(f"held out: PSNR {e.psnr_degraded:.2f} -> {e.psnr_restored:.2f} dB, SSIM "
          f"{e.ssim_degraded:.4f} -> {e.ssim_restored:.4f}, codes used {e.codes_used:.0%}, "
          f"alive {e.codes_alive:.0%}")
    if device == "cuda":
        _, val = split(crops, config.validation_fraction)
        for half in (False, True):
            p, q = stage_scores(result.model, val, device, half)
            print(f"restoration stage on CUDA, {'fp16' if half else 'fp32'}: held-out PSNR "
                  f"{p:.2f} dB, SSIM {q:.4f}")


if __name__ == "__main__":
    main()
