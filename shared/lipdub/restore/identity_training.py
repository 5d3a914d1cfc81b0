"""Train an identity's restorer from footage: extract crops, optionally search the 'space'
(latent grid and codebook sizes), train, evaluate on held-out frames, store a version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lipdub.faces.select import FaceSelector
from lipdub.restore.crops import extract_crops
from lipdub.restore.identity import IdentityStore, IdentityVersion, check_name
from lipdub.restore.model import SOVQAEConfig
from lipdub.restore.spaces import default_space, search_space
from lipdub.restore.train import Evaluation, TrainConfig, TrainResult, train_sovqae
from lipdub.scratch import scratch_dir

StepCallback = Callable[[str, int, int], None]  # (what, done, total)


def restoration_score(e: Evaluation) -> float:
    """Gain over the degraded input: dB of PSNR plus SSIM gain on a comparable scale."""
    return (e.psnr_restored - e.psnr_degraded) + 20.0 * (e.ssim_restored - e.ssim_degraded)


def train_identity(
    videos: list[Path],
    name: str,
    store: IdentityStore,
    train_config: TrainConfig,
    search: bool = False,
    resolution: int | None = None,
    selector: FaceSelector | None = None,
    on_step: StepCallback | None = None,
    work_dir: Path | None = None,
) -> IdentityVersion:
    """Everything is checked (name, footage, faces) before any training starts."""
    check_name(name)
    crops, resolution = extract_crops(
        videos, resolution, selector=selector,
        on_progress=(lambda d, t: on_step("crops", d, t)) if on_step else None)
    candidates = search_space(resolution) if search else [default_space(resolution)]
    with scratch_dir("train") as tmp:
        root = work_dir or Path(tmp)
        tried: list[tuple[SOVQAEConfig, TrainResult, Path]] = []
        for n, space in enumerate(candidates):
            label = f"train {n + 1}/{len(candidates)} (latent {space.latent_size}, " \
                    f"codebook {space.codebook_size})"
            run_dir = root / f"latent{space.latent_size}-k{space.codebook_size}"
            result = train_sovqae(
                crops, space, train_config, run_dir,
                on_step=(lambda s, _r, lb=label: on_step(lb, s, train_config.steps))
                if on_step else None)
            tried.append((space, result, run_dir))
        best_space, best, best_dir = max(tried, key=lambda t: (t[1].evaluation.beats_input(),
                                                                restoration_score(t[1].evaluation)))
        info = {
            "videos": [str(v) for v in videos],
            "crops": len(crops),
            "config": best_space.to_dict(),
            "training": asdict(train_config),
            "evaluation": best.evaluation,
            # The quality gate: a version not better than its input is kept (to look at)
            # but never applied.
            "accepted": best.evaluation.beats_input(),
            "rejected_because": best.evaluation.shortfalls(),
            "first_loss": float(np.mean([r["loss"] for r in best.history[:10]])),
            "last_loss": float(np.mean([r["loss"] for r in best.history[-10:]])),
            "search": [{"latent_size": s.latent_size, "codebook_size": s.codebook_size,
                        "score": restoration_score(r.evaluation), "evaluation": r.evaluation}
                       for s, r, _ in tried],
        }
        return store.save(name, best.model, info, best_dir / "metrics.jsonl")
