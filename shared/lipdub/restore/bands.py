"""Detail by frequency band, measured where the engines change a face: how much of each
band a face crop holds (to see what an engine's output loses, and make the training
degradation lose the same), and the high-frequency error the quality gate scores.

Bands are differences of Gaussians an octave apart, in pixels of a 128 px crop (scaled
with the crop): band 0 is the finest detail (pores, lip lines, teeth edges), the last is
the coarse shape that an engine's output keeps."""

from __future__ import annotations

import cv2
import numpy as np

OCTAVES = (0.5, 1.0, 2.0, 4.0, 8.0)  # Gaussian sigmas at 128 px; bands lie between them
BAND_NAMES = tuple(f"{a:g}-{b:g}px" for a, b in zip(OCTAVES, OCTAVES[1:], strict=False))


def _gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)


def band_energies(rgb: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Mean squared amplitude of each band of a crop, weighted by `weight` (H, W)."""
    gray, scale = _gray(rgb), rgb.shape[0] / 128
    blurred = [cv2.GaussianBlur(gray, (0, 0), s * scale) for s in OCTAVES]
    total = float(weight.sum()) or 1.0
    return np.array([float(((a - b) ** 2 * weight).sum()) / total
                     for a, b in zip(blurred, blurred[1:], strict=False)])


def laplacian_error(clean: np.ndarray, other: np.ndarray, weight: np.ndarray) -> float:
    """Mean absolute difference of the two crops' Laplacians (grey levels), weighted: the
    high-frequency error (edges in the wrong place, or missing)."""
    lap = [cv2.Laplacian(_gray(x), cv2.CV_32F, ksize=3) for x in (clean, other)]
    return float((np.abs(lap[0] - lap[1]) * weight).sum() / (float(weight.sum()) or 1.0))
