"""Train a SOVQAE on one person's crops: degraded crops in, clean crops out. Seeded,
resumable (a checkpoint every few hundred steps), mixed precision on CUDA, a metrics log,
and an optional adversarial term (on by default for CUDA)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from lipdub.errors import LipDubError
from lipdub.inference.local import pick_device
from lipdub.restore.adversarial import PatchDiscriminator, discriminator_loss, generator_loss
from lipdub.restore.bands import laplacian_error
from lipdub.restore.degrade import degrade, lower_face_mask
from lipdub.restore.gate import Evaluation
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
    adversarial: str = "auto"  # on | off | auto (on for CUDA: it doubles a CPU step's cost)
    weight_adversarial: float = 0.05
    adversarial_start: float = 0.3  # fraction of the steps before the discriminator joins

    def uses_adversarial(self, device: str) -> bool:
        if self.adversarial not in ("on", "off", "auto"):
            raise ValueError(f"adversarial must be on, off or auto, not {self.adversarial!r}")
        return self.adversarial == "on" or (self.adversarial == "auto" and device == "cuda")


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
    weight = mask[0, ..., 0]
    detail_before = np.mean([laplacian_error(c, d, weight) for c, d in zip(clean, degraded,
                                                                           strict=True)])
    detail_after = np.mean([laplacian_error(c, r, weight) for c, r in zip(clean, restored_all,
                                                                          strict=True)])
    size = model.config.codebook_size
    used = torch.unique(torch.cat(codes)).numel() / size
    cluster = model.quantizer._codebook.cluster_size.flatten().cpu()
    alive = float((cluster >= model.quantizer._codebook.threshold_ema_dead_code).float().mean())
    return Evaluation(psnr_degraded=float(before[:, 0].mean()),
                      psnr_restored=float(after[:, 0].mean()),
                      ssim_degraded=float(before[:, 1].mean()),
                      ssim_restored=float(after[:, 1].mean()),
                      codes_used=float(used), codes_alive=alive,
                      detail_error_degraded=float(detail_before),
                      detail_error_restored=float(detail_after))


class TrainingDivergedError(LipDubError):
    code = "training_diverged"


class DegradedBatches:
    """Training batches (clean, degraded), made on worker threads one step ahead of the GPU.
    Each step's randomness comes from (seed, step) alone, so a resumed run sees exactly the
    batches a straight run would, and prefetching needs no shared generator."""

    def __init__(self, crops: np.ndarray, batch_size: int, seed: int) -> None:
        self.crops, self.batch_size, self.seed = crops, batch_size, seed
        # cv2 releases the GIL, so threads scale the per-crop degradation over cores.
        self.pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1))

    def _make(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, step])
        picks = rng.integers(0, len(self.crops), size=self.batch_size)
        seeds = rng.integers(0, 2**63, size=self.batch_size)
        clean = self.crops[picks]
        degraded = list(self.pool.map(lambda c, k: degrade(c, np.random.default_rng(k)),
                                      clean, seeds))
        return clean, np.stack(degraded)

    def submit(self, step: int) -> Future:
        return self.pool.submit(self._make, step)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


# Steps over which the rate rises from nothing: Adam's first steps move every weight by
# about the full rate whatever the gradient, which took the residual head (zero at the
# start: the input unchanged) to a visibly wrong face in one step.
WARMUP_STEPS = 50


def learning_rate(config: TrainConfig, step: int) -> float:
    """A linear warm-up, then cosine decay to 5%: the last steps at a small rate settle the
    fine detail (and PSNR)."""
    progress = min(step, config.steps) / config.steps
    warmup = min(1.0, (step + 1) / WARMUP_STEPS)
    return config.learning_rate * warmup * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * progress)))


def train_sovqae(
    crops: np.ndarray,
    model_config: SOVQAEConfig,
    config: TrainConfig,
    work_dir: Path,
    on_step: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train (or resume from `work_dir/checkpoint.pt`) and evaluate on held-out crops."""
    work_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    train_crops, val_crops = split(crops, config.validation_fraction)
    model = SOVQAE(model_config).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.learning_rate, betas=(0.5, 0.9))
    scaler = torch.amp.GradScaler(device, enabled=device == "cuda")
    critic = Critic(device, config) if config.uses_adversarial(device) else None
    history: list[dict] = []
    step = 0
    checkpoint = work_dir / "checkpoint.pt"
    if checkpoint.exists():
        state = torch.load(checkpoint, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scaler.load_state_dict(state["scaler"])
        if critic is not None:
            critic.load_state_dict(state["critic"])
        torch.set_rng_state(state["torch_rng"])
        if device == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"])  # k-means and dead-code restarts
        history, step = state["history"], state["step"]
    mask = lower_face_mask(model_config.resolution)
    focus = torch.from_numpy(0.2 + 0.8 * mask).to(device)[None, None]
    region = torch.from_numpy(mask).to(device)[None, None]
    adversarial_from = int(config.adversarial_start * config.steps)
    log = (work_dir / "metrics.jsonl").open("w")  # rewritten from the checkpoint on resume
    for record in history:
        log.write(json.dumps(record) + "\n")
    batches = DegradedBatches(train_crops, config.batch_size, config.seed)
    upcoming = batches.submit(step)
    non_finite = 0
    model.train()
    try:
        while step < config.steps:
            clean, degraded = upcoming.result()
            if step + 1 < config.steps:
                upcoming = batches.submit(step + 1)
            target, source = _to_tensor(clean, device), _to_tensor(degraded, device)
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(config, step)
            adversarial = critic is not None and step >= adversarial_from
            with torch.autocast(device_type=device, dtype=torch.float16,
                                enabled=device == "cuda"):
                restored, vq_loss, _ = model(source)
            # The losses in fp32: SSIM's variances (E[x^2] - mu^2) cancel catastrophically
            # in fp16, which sent CUDA training to NaN.
            restored = restored.float()
            # Restoration is only ever blended in where engines change pixels: spend the
            # model's capacity there.
            l1 = ((restored - target).abs() * focus).mean()
            loss = (l1 + config.weight_ssim * ssim_loss(restored, target)
                    + config.weight_gradient * gradient_loss(restored * focus, target * focus)
                    + vq_loss.float())
            if adversarial:
                # The critic sees what the stage delivers: restored pixels blended in.
                blended = restored * region + target * (1 - region)
                adversarial_g = critic.generator_loss(blended)
                loss = loss + config.weight_adversarial * adversarial_g
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            step += 1
            record = {"step": step, "loss": float(loss.detach()), "l1": float(l1.detach()),
                      "vq": float(vq_loss.detach())}
            if adversarial:
                record["adversarial_g"] = float(adversarial_g.detach())
                record["adversarial_d"] = critic.step(target, blended.detach())
            non_finite = 0 if np.isfinite(record["loss"]) else non_finite + 1
            if non_finite >= 20:
                raise TrainingDivergedError(
                    f"Training diverged: the loss was not finite for {non_finite} steps in a "
                    f"row (step {step}).",
                    "Lower the learning rate or train on the CPU (--device cpu), and report "
                    "this with the identity's footage.")
            history.append(record)
            log.write(json.dumps(record) + "\n")
            if on_step is not None:
                on_step(step, record)
            if step % config.checkpoint_every == 0 or step == config.steps:
                tmp = checkpoint.with_suffix(".tmp")
                torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict(),
                            "scaler": scaler.state_dict(),
                            "critic": critic.state_dict() if critic is not None else None,
                            "torch_rng": torch.get_rng_state(),
                            "cuda_rng": torch.cuda.get_rng_state() if device == "cuda"
                            else None,
                            "history": history, "step": step}, tmp)
                tmp.replace(checkpoint)
    finally:
        batches.close()
        log.close()
    evaluation = evaluate(model, val_crops)
    (work_dir / "evaluation.json").write_text(json.dumps(asdict(evaluation), indent=2))
    return TrainResult(model=model.eval(), history=history, evaluation=evaluation)


class Critic:
    """The discriminator with its own optimiser and loss scaler."""

    def __init__(self, device: str, config: TrainConfig) -> None:
        self.device = device
        # Its own seed, so switching the critic on leaves the first steps' randomness alone.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed + 1)
            self.net = PatchDiscriminator().to(device)
        self.optimiser = torch.optim.Adam(self.net.parameters(), lr=config.learning_rate / 4,
                                          betas=(0.5, 0.9))
        self.scaler = torch.amp.GradScaler(device, enabled=device == "cuda")

    def generator_loss(self, fake: torch.Tensor) -> torch.Tensor:
        # The critic is a fixed judge during the generator's step: no gradients for it.
        self.net.requires_grad_(False)
        try:
            with torch.autocast(device_type=self.device, dtype=torch.float16,
                                enabled=self.device == "cuda"):
                logits = self.net(fake)
            return generator_loss(logits.float())
        finally:
            self.net.requires_grad_(True)

    def step(self, real: torch.Tensor, fake: torch.Tensor) -> float:
        with torch.autocast(device_type=self.device, dtype=torch.float16,
                            enabled=self.device == "cuda"):
            real_logits, fake_logits = self.net(real), self.net(fake)
        loss = discriminator_loss(real_logits.float(), fake_logits.float())
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        return float(loss.detach())

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimiser": self.optimiser.state_dict(),
                "scaler": self.scaler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.scaler.load_state_dict(state["scaler"])
