"""Degrade clean face crops the way the lip-sync engines do, so that the restorer learns
exactly that repair, and learns to leave detail alone where an engine kept it. Measured on
real footage (benchmarks/bench_degradation.py, figures in benchmarks/RESULTS.md):

  warp     moves the person's own pixels: texture survives, only resampled (a sub-pixel
           bilinear warp), so nearly every band is kept
  wav2lip  generates the lower face at 96 x 96: the finest band is mostly gone, with the
           generator's own softness on top (its released weights cannot be run here: the
           blur range is an assumption, and the benchmark measures it when given weights)

Colour is not degraded: the restorer keeps the input's low frequencies (colour included)
by construction, and the composite colour-matches generated pixels."""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.composite import feathered_lower_face_mask

ENGINE_SIZE = 96  # Wav2Lip's working resolution
PROFILES = ("warp", "wav2lip")
GENERATOR_BLUR = (0.0, 0.7)  # Gaussian sigma range, in pixels of the 96 px output


def degrade(crop: np.ndarray, rng: np.random.Generator, profile: str | None = None) -> (
        np.ndarray):
    """(R, R, 3) uint8 clean crop -> degraded crop of the same size; the engine's profile
    drawn at random unless given."""
    size = crop.shape[0]
    profile = profile or PROFILES[int(rng.integers(len(PROFILES)))]
    if profile == "warp":
        shift = np.float32([[1, 0, rng.uniform(-0.5, 0.5)], [0, 1, rng.uniform(-0.5, 0.5)]])
        changed = cv2.warpAffine(crop, shift, (size, size), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REFLECT).astype(np.float32)
    elif profile == "wav2lip":
        small = cv2.resize(crop, (ENGINE_SIZE, ENGINE_SIZE), interpolation=cv2.INTER_AREA)
        sigma = rng.uniform(*GENERATOR_BLUR)
        if sigma > 0.05:
            small = cv2.GaussianBlur(small, (0, 0), sigma)
        changed = cv2.resize(small, (size, size),
                             interpolation=cv2.INTER_CUBIC).astype(np.float32)
    else:
        raise ValueError(f"unknown degradation profile {profile!r}; one of {PROFILES}")
    mask = lower_face_mask(size)[..., None]
    out = crop.astype(np.float32) * (1 - mask) + changed * mask
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def lower_face_mask(size: int) -> np.ndarray:
    """Where the engines change a face crop (and so where restoration applies)."""
    return feathered_lower_face_mask(size, size)
