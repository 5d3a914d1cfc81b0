"""SOVQAE training: speed (steps/s, crops/s) and what it reaches on held-out frames, on
CPU or CUDA (mixed precision, with the adversarial term when on). Figures are printed.

The crops are one person's aligned face crops from a generated talking clip, or from real
footage with `--video` (the real detection and tracking path). Held-out crops are the
last part of the footage (`--validation`). `--sheet PNG` saves held-out faces side by side
(clean | degraded | restored) to look at; `--formulation reconstruct` trains the earlier
formulation (the decoder's output is the face) for comparison. `--save-crops DIR` writes
the crops as JPEG files so that a machine without the media stack (a GPU box) can train on
exactly the same crops with `--crops DIR`.

    .venv/bin/python benchmarks/bench_restore_train.py --seconds 20 --save-crops .bench/crops
    python benchmarks/bench_restore_train.py --crops .bench/crops --steps 2000 --device cuda
    .venv/bin/python benchmarks/bench_restore_train.py --video ../shared/eval/real/speaker_a.mp4 \
        --resolution 128 --validation 0.2 --steps 500 --sheet .bench/faces.png
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from lipdub.restore.degrade import degrade, lower_face_mask
from lipdub.restore.metrics import region_scores
from lipdub.restore.model import RECONSTRUCT, RESIDUAL, SOVQAE
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


def save_sheet(model: SOVQAE, clean: np.ndarray, path: Path, rows: int = 6) -> None:
    """Held-out faces, one row each: clean | degraded | restored (the stage's blend)."""
    rng = np.random.default_rng(1234)
    picks = np.linspace(0, len(clean) - 1, rows).astype(int)
    degraded = [degrade(clean[i], rng) for i in picks]
    restored = Restorer.local(copy.deepcopy(model), "cpu", 16).restore_crops(degraded)
    mask = lower_face_mask(clean.shape[1])[..., None]
    lines = [np.concatenate([clean[i], d, np.clip(r * mask + d * (1 - mask) + 0.5, 0, 255)
                             .astype(np.uint8)], axis=1)
             for i, d, r in zip(picks, degraded, restored, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(lines), cv2.COLOR_RGB2BGR))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--crops", type=Path, help="a folder of crops made by --save-crops")
    parser.add_argument("--seconds", type=float, default=20.0, help="generated clip length")
    parser.add_argument("--video", type=Path, help="real footage of one person")
    parser.add_argument("--resolution", type=int, help="working resolution (default: from "
                        "the face size)")
    parser.add_argument("--validation", type=float, default=0.1,
                        help="the held-out fraction: the footage's last part")
    parser.add_argument("--formulation", default=RESIDUAL, choices=[RESIDUAL, RECONSTRUCT])
    parser.add_argument("--sheet", type=Path, help="save held-out faces side by side here")
    parser.add_argument("--save-crops", type=Path)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--adversarial", default="auto", choices=["auto", "on", "off"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        if args.crops:
            crops = load_crops(args.crops)
        elif args.video:
            from lipdub.restore.crops import extract_crops

            crops, _ = extract_crops([args.video], args.resolution)
        else:
            crops = crops_from_clip(args.seconds, Path(tmp))
        if args.save_crops:
            save_crops(crops, args.save_crops)
            print(f"saved {len(crops)} crops to {args.save_crops}")
        space = dataclasses.replace(default_space(crops.shape[1]),
                                    formulation=args.formulation)
        config = TrainConfig(steps=args.steps, batch_size=args.batch, device=args.device,
                             adversarial=args.adversarial, checkpoint_every=args.steps,
                             validation_fraction=args.validation)
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
    _, held_out = split(crops, config.validation_fraction)
    print(f"held out ({len(held_out)} crops, the footage's last part): PSNR "
          f"{e.psnr_degraded:.2f} -> {e.psnr_restored:.2f} dB, SSIM {e.ssim_degraded:.4f} -> "
          f"{e.ssim_restored:.4f}, detail error {e.detail_error_degraded:.3f} -> "
          f"{e.detail_error_restored:.3f}; codes used {e.codes_used:.0%}, alive "
          f"{e.codes_alive:.0%}")
    print("quality gate: " + ("passed" if e.beats_input() else
                              f"rejected ({'; '.join(e.shortfalls())})"))
    if args.sheet:
        save_sheet(result.model, held_out, args.sheet)
        print(f"held-out faces (clean | degraded | restored): {args.sheet}")
    if device == "cuda":
        _, val = split(crops, config.validation_fraction)
        for half in (False, True):
            p, q = stage_scores(result.model, val, device, half)
            print(f"restoration stage on CUDA, {'fp16' if half else 'fp32'}: held-out PSNR "
                  f"{p:.2f} dB, SSIM {q:.4f}")


if __name__ == "__main__":
    main()
