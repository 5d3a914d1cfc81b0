"""The optional adversarial term (VQGAN-style, hinge loss): a small PatchGAN discriminator
that judges the lower face, where restoration is blended in. L1/SSIM alone favour a slightly
smooth average; the adversarial term pushes toward the person's real high-frequency texture.
It costs a second network's forward and backward per step, so it is on by default only for
the CUDA configuration."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class PatchDiscriminator(nn.Module):
    """(B, 3, R, R) in [0, 1] -> (B, 1, R/8, R/8) realness logits, one per ~46 px patch."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels

        def down(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 4, 2, 1), nn.GroupNorm(8, cout), nn.LeakyReLU(0.2)]

        self.body = nn.Sequential(
            nn.Conv2d(3, c, 4, 2, 1), nn.LeakyReLU(0.2),
            *down(c, 2 * c), *down(2 * c, 4 * c),
            nn.Conv2d(4 * c, 4 * c, 3, 1, 1), nn.GroupNorm(8, 4 * c), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * c, 1, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x * 2 - 1)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean())


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    return -fake_logits.mean()
