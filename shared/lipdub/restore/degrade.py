"""Degrade clean face crops the way lip-sync engines do, so the restorer learns exactly that
repair: the lower face down to 96 px and back, blurred, slightly off in colour, and blended
into the clean crop through a feathered seam."""

from __future__ import annotations

import cv2
import numpy as np

from lipdub.composite import feathered_lower_face_mask

ENGINE_SIZE = 96  # Wav2Lip's working resolution


def degrade(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(R, R, 3) uint8 clean crop -> degraded crop of the same size."""
    size = crop.shape[0]
    small = cv2.resize(crop, (ENGINE_SIZE, ENGINE_SIZE), interpolation=cv2.INTER_AREA)
    blurry = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    sigma = rng.uniform(0.3, 1.5) * size / 128
    blurry = cv2.GaussianBlur(blurry, (0, 0), sigma)
    gain = rng.uniform(0.96, 1.04, size=3).astype(np.float32)
    offset = rng.uniform(-4, 4, size=3).astype(np.float32)
    blurry = blurry * gain + offset
    mask = lower_face_mask(size)[..., None]
    out = crop.astype(np.float32) * (1 - mask) + blurry * mask
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def lower_face_mask(size: int) -> np.ndarray:
    """Where the engines change a face crop (and so where restoration applies)."""
    return feathered_lower_face_mask(size, size)
