"""Train a SOVQAE on one person's crops: degraded crops in, clean crops out. Seeded,
resumable (a checkpoint every few hundred steps), mixed precision on CUDA, a metrics log."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lipdub.restore.degrade import degrade, lower_face_mask
from lipdub.restore.metrics import gradient_loss, region_scores, ssim_loss
from lipdub.restore.model import SOVQAE, SOVQAEConfig


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 2e-3
    seed: int = 0
    validation_fraction: float = 0.1
    checkpoint_every: int = 250
    weight_ssim: float = 0.5  # the 'perceptual' terms: structure and edges (no downloaded
    weight_gradient: float = 0.5  # feature networks are available to us)
    device: str = "auto"


@dataclass
class Evaluation:
    psnr_degraded: float
    psnr_restored: float
    ssim_degraded: float
    ssim_restored: float
    codes_used: float  # fraction of the codebook used on the validation crops
    codes_alive: float  # fraction whose EMA usage is above the dead-code threshold

    def beats_input(self) -> bool:
        return (self.psnr_restored > self.psnr_degraded
                and self.ssim_restored > self.ssim_degraded)


@dataclass
class TrainResult:
    model: SOVQAE
    history: list[dict] = field(default_factory=list)
    evaluation: Evaluation | None = None


def split(crops: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Hold out the last frames (later in the footage), not a random sample: neighbouring
    frames are near duplicates and would leak."""
    n_val = max(4, int(len(crops) * fraction))
    return crops[:-n_val], crops[-n_val:]


def _device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _to_tensor(batch: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(batch).to(device).permute(0, 3, 1, 2).float() / 255.0


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t.clamp(0, 1) * 255 + 0.5).byte().permute(0, 2, 3, 1).cpu().numpy()


def evaluate(model: SOVQAE, clean: np.ndarray, seed: int = 1234,
             batch_size: int = 32) -> Evaluation:
    rng = np.random.default_rng(seed)
    degraded = np.stack([degrade(c, rng) for c in clean])
    device = next(model.parameters()).device
    model.eval()
    restored, codes = [], []
    with torch.inference_mode():
        for a in range(0, len(clean), batch_size):
            out, _, idx = model(_to_tensor(degraded[a : a + batch_size], str(device)))
            restored.append(_to_uint8(out))
            codes.append(idx.flatten().cpu())
    # Score what the restoration stage delivers: restored pixels blended in only where the
    # engine changed the face, exactly as `Restorer.apply` does.
    mask = lower_face_mask(model.config.resolution)[None, ..., None]
    restored_all = np.clip(np.concatenate(restored) * mask + degraded * (1 - mask) + 0.5, 0,
                           255).astype(np.uint8)
    before = np.array([region_scores(c, d) for c, d in zip(clean, degraded, strict=True)])
    after = np.array([region_scores(c, r) for c, r in zip(clean, restored_all, strict=True)])
    size = model.config.codebook_size
    used = torch.unique(torch.cat(codes)).numel() / size
    cluster = model.quantizer._codebook.cluster_size.flatten().cpu()
    alive = float((cluster >= model.quantizer._codebook.threshold_ema_dead_code).float().mean())
    return Evaluation(psnr_degraded=float(before[:, 0].mean()),
                      psnr_restored=float(after[:, 0].mean()),
                      ssim_degraded=float(before[:, 1].mean()),
                      ssim_restored=float(after[:, 1].mean()),
                      codes_used=float(used), codes_alive=alive)


def train_sovqae(
    crops: np.ndarray,
    model_config: SOVQAEConfig,
    config: TrainConfig,
    work_dir: Path,
    on_step: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train (or resume from `work_dir/checkpoint.pt`) and evaluate on held-out crops."""
    work_dir.mkdir(parents=True, exist_ok=True)
    device = _device(config.device)
    torch.manual_seed(config.seed)
    random.seed(config.seed)
    train_crops, val_crops = split(crops, config.validation_fraction)
    model = SOVQAE(model_config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=(0.5, 0.9))
    # Cosine decay: the last steps at a small rate settle the fine detail (and PSNR).
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(s, config.steps)
                                                             / config.steps)))
    scaler = torch.amp.GradScaler(device, enabled=device == "cuda")
    rng = np.random.default_rng(config.seed)
    history: list[dict] = []
    step = 0
    checkpoint = work_dir / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        schedule.load_state_dict(state["schedule"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        history, step = state["history"], state["step"]
    mask = lower_face_mask(model_config.resolution)
    focus = torch.from_numpy(0.2 + 0.8 * mask).to(device)[None, None]
    log = (work_dir / "metrics.jsonl").open("w")  # rewritten from the checkpoint on resume
    for record in history:
        log.write(json.dumps(record) + "\n")
    model.train()
    try:
        while step < config.steps:
            picks = rng.integers(0, len(train_crops), size=config.batch_size)
            clean = train_crops[picks]
            degraded = np.stack([degrade(c, rng) for c in clean])
            target, source = _to_tensor(clean, device), _to_tensor(degraded, device)
            with torch.autocast(device_type=device, dtype=torch.float16,
                                enabled=device == "cuda"):
                restored, vq_loss, _ = model(source)
                restored = restored.float()
                # Restoration is only ever blended in where engines change pixels: spend
                # the model's capacity there.
                l1 = ((restored - target).abs() * focus).mean()
                loss = (l1 + config.weight_ssim * ssim_loss(restored, target)
                        + config.weight_gradient * gradient_loss(restored * focus,
                                                                 target * focus) + vq_loss)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            schedule.step()
            step += 1
            record = {"step": step, "loss": float(loss.detach()), "l1": float(l1.detach()),
                      "vq": float(vq_loss.detach())}
            history.append(record)
            log.write(json.dumps(record) + "\n")
            if on_step is not None:
                on_step(step, record)
            if step % config.checkpoint_every == 0 or step == config.steps:
                tmp = checkpoint.with_suffix(".tmp")
                torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                            "schedule": schedule.state_dict(),
                            "rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                            "history": history, "step": step}, tmp)
                tmp.replace(checkpoint)
    finally:
        log.close()
    evaluation = evaluate(model, val_crops)
    (work_dir / "evaluation.json").write_text(json.dumps(asdict(evaluation), indent=2))
    return TrainResult(model=model.eval(), history=history, evaluation=evaluation)
