"""Restoration quality: PSNR and SSIM (no downloaded networks: LPIPS needs weights we cannot
fetch), measured where the engines change pixels, plus the losses training uses."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage.metrics import structural_similarity

from lipdub.restore.degrade import lower_face_mask


def _region(size: int) -> tuple[slice, slice]:
    ys, xs = np.nonzero(lower_face_mask(size) > 0.5)
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def region_scores(clean: np.ndarray, other: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM of `other` against `clean` over the lower-face region."""
    rows, cols = _region(clean.shape[0])
    a, b = clean[rows, cols], other[rows, cols]
    return psnr(a, b), float(structural_similarity(a, b, channel_axis=2, data_range=255))


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    g = torch.exp(-((torch.arange(size) - size // 2) ** 2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 - SSIM for (B, 3, H, W) tensors in [0, 1]."""
    window = _gaussian_window().to(x)
    mu_x = F.conv2d(x, window, groups=3)
    mu_y = F.conv2d(y, window, groups=3)
    sxx = F.conv2d(x * x, window, groups=3) - mu_x**2
    syy = F.conv2d(y * y, window, groups=3) - mu_y**2
    sxy = F.conv2d(x * y, window, groups=3) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return 1 - ssim.mean()


def gradient_loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L1 between image gradients: rewards sharp edges (lip lines, teeth) that L1 alone blurs."""
    dx = (x[..., :, 1:] - x[..., :, :-1]) - (y[..., :, 1:] - y[..., :, :-1])
    dy = (x[..., 1:, :] - x[..., :-1, :]) - (y[..., 1:, :] - y[..., :-1, :])
    return dx.abs().mean() + dy.abs().mean()
