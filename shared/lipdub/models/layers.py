"""Wav2Lip's building blocks; parameter names match the released checkpoints."""

from __future__ import annotations

import torch
from torch import nn


class Conv2d(nn.Module):
    """Conv + BatchNorm + ReLU, optionally residual (the input is added before the ReLU)."""

    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int | tuple[int, int],
                 padding: int, residual: bool = False) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class Conv2dTranspose(nn.Module):
    def __init__(self, cin: int, cout: int, kernel_size: int, stride: int, padding: int,
                 output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout),
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def residual(channels: int) -> Conv2d:
    return Conv2d(channels, channels, 3, 1, 1, residual=True)
