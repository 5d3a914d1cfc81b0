"""The quality gate on an identity's restorer: held-out faces restored by it must beat the
degraded input on every measure, or it is never applied (no torch here: the gateway
reports verdicts without loading models)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# "Better" means measurably better: each error at least MIN_GAIN smaller than the input's
# (the mean squared error, 1 - SSIM, the detail error). A restorer within that of its
# input does nothing worth its cost, and a barely trained one sits there, a hair above or
# below by chance.
MIN_GAIN = 0.01
PSNR_GAIN_DB = -10 * math.log10(1 - MIN_GAIN)  # the MSE 1% lower: 0.044 dB

@dataclass
class Evaluation:
    """Held-out quality of the degraded input and of the restored output: PSNR and SSIM
    (higher is better) and the Laplacian's error (high-frequency detail; lower is better),
    over the lower face."""

    psnr_degraded: float
    psnr_restored: float
    ssim_degraded: float
    ssim_restored: float
    codes_used: float  # fraction of the codebook used on the validation crops
    codes_alive: float  # fraction whose EMA usage is above the dead-code threshold
    # Absent (None) in identities stored before the gate measured it.
    detail_error_degraded: float | None = None
    detail_error_restored: float | None = None

    def shortfalls(self) -> list[str]:
        """Each measure on which the restored faces are not better than the input."""
        found = []
        if self.psnr_restored < self.psnr_degraded + PSNR_GAIN_DB:
            found.append(f"PSNR {self.psnr_degraded:.2f} -> {self.psnr_restored:.2f} dB")
        if 1 - self.ssim_restored > (1 - self.ssim_degraded) * (1 - MIN_GAIN):
            found.append(f"SSIM {self.ssim_degraded:.4f} -> {self.ssim_restored:.4f}")
        if (self.detail_error_degraded is not None and self.detail_error_restored is not None
                and self.detail_error_restored > self.detail_error_degraded * (1 - MIN_GAIN)):
            found.append(f"detail error {self.detail_error_degraded:.3f} -> "
                         f"{self.detail_error_restored:.3f}")
        return found

    def beats_input(self) -> bool:
        return not self.shortfalls()


def rejection(info: dict) -> list[str]:
    """Why a version must not restore faces (empty: it may): each held-out measure on
    which its restored faces were not better than the degraded input."""
    if "evaluation" not in info:
        return ["no held-out evaluation was recorded"]
    return Evaluation(**info["evaluation"]).shortfalls()


def skipped_warning(what: str, reasons: list[str]) -> str:
    """`what`: the restorer, e.g. "Identity 'ana' v2"."""
    return (f"{what} was not applied: on held-out footage its restored faces were not "
            f"better than the degraded input ({'; '.join(reasons)}). The dub has no "
            "restoration; train again with more footage or more steps.")
