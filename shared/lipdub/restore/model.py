"""The Space-Optimised VQ autoencoder: encoder -> vector quantiser -> decoder.

The 'space' parameters are the latent grid size (resolution / 2**downsamples) and the
codebook size; the codebook uses EMA updates, k-means initialisation and dead-code restarts
(vector-quantize-pytorch).

What it outputs (LaDTalk's point: the lip-sync output already has the right shape, what it
lost is the person's fine texture): the input crop plus a high-frequency residual. The
decoder, which sees the identity's codes and the input's own full-resolution features,
predicts a residual whose low-pass is taken out, so structure, position and colour always
come from the input and only detail is added. Its last layer starts at zero, so an untrained
restorer returns its input unchanged. (Identities trained before this are "reconstruct":
the decoder's sigmoid output is the face; they still load and run.)"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from vector_quantize_pytorch import VectorQuantize

RESIDUAL, RECONSTRUCT = "residual", "reconstruct"
# The residual's low-pass cut-off (Gaussian sigma, pixels of a 128 px crop, scaled with
# the crop): what the engines keep (bands coarser than about 2-4 px, measured by
# benchmarks/bench_degradation.py) is never changed.
DETAIL_SIGMA = 2.0


@dataclass(frozen=True)
class SOVQAEConfig:
    resolution: int = 128  # face crops are resized to resolution x resolution
    latent_size: int = 16  # latent grid is latent_size x latent_size
    codebook_size: int = 512
    code_dim: int = 64
    base_channels: int = 16
    formulation: str = RESIDUAL  # or RECONSTRUCT (identities trained before residuals)

    @property
    def downsamples(self) -> int:
        ratio = self.resolution // self.latent_size
        if ratio < 1 or ratio & (ratio - 1) or self.resolution % self.latent_size:
            raise ValueError(
                f"latent_size {self.latent_size} must divide resolution {self.resolution} "
                "by a power of two")
        return ratio.bit_length() - 1

    def to_dict(self) -> dict:
        return asdict(self)


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, 1, 1),
            nn.GroupNorm(8, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _channels(config: SOVQAEConfig, level: int) -> int:
    return config.base_channels * min(2**level, 4)


class DetailHead(nn.Module):
    """Decoder features + the input crop -> the input plus a high-frequency residual."""

    def __init__(self, channels: int, resolution: int) -> None:
        super().__init__()
        self.skip = nn.Conv2d(3, channels, 3, 1, 1)  # the input's own edges, at full size
        self.out = nn.Sequential(nn.GroupNorm(8, 2 * channels), nn.SiLU(),
                                 nn.Conv2d(2 * channels, 3, 3, 1, 1))
        nn.init.zeros_(self.out[-1].weight)  # untrained: the input, unchanged
        nn.init.zeros_(self.out[-1].bias)
        sigma = DETAIL_SIGMA * resolution / 128
        radius = int(np.ceil(3 * sigma))
        taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
        self.register_buffer("taps", torch.tensor(taps / taps.sum(), dtype=torch.float32))

    def low_pass(self, x: torch.Tensor) -> torch.Tensor:
        """Separable Gaussian blur per channel, edges reflected."""
        radius = self.taps.numel() // 2
        c = x.shape[1]
        rows = self.taps.to(x.dtype).view(1, 1, 1, -1).expand(c, 1, 1, -1)
        x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode="reflect"), rows, groups=c)
        cols = self.taps.to(x.dtype).view(1, 1, -1, 1).expand(c, 1, -1, 1)
        return F.conv2d(F.pad(x, (0, 0, radius, radius), mode="reflect"), cols, groups=c)

    def forward(self, features: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        residual = self.out(torch.cat([features, self.skip(crops * 2 - 1)], dim=1))
        return (crops + residual - self.low_pass(residual)).clamp(0, 1)


class Reconstruction(nn.Module):
    """The earlier formulation: the decoder's output is the face itself."""

    def forward(self, features: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(features)


class SOVQAE(nn.Module):
    """Degraded face crop (B, 3, R, R) in [0, 1] -> restored crop, plus VQ loss and codes."""

    def __init__(self, config: SOVQAEConfig) -> None:
        super().__init__()
        if config.formulation not in (RESIDUAL, RECONSTRUCT):
            raise ValueError(f"unknown SOVQAE formulation {config.formulation!r}")
        self.config = config
        levels = config.downsamples
        enc: list[nn.Module] = [nn.Conv2d(3, _channels(config, 0), 3, 1, 1)]
        for level in range(levels):
            cin, cout = _channels(config, level), _channels(config, level + 1)
            # Residual blocks only below full resolution: that is where their cost is low.
            enc += ([ResBlock(cin)] if level > 0 else []) + [nn.Conv2d(cin, cout, 4, 2, 1)]
        top = _channels(config, levels)
        enc += [ResBlock(top), nn.GroupNorm(8, top), nn.SiLU(), nn.Conv2d(top, config.code_dim, 1)]
        self.encoder = nn.Sequential(*enc)
        self.quantizer = VectorQuantize(
            dim=config.code_dim, codebook_size=config.codebook_size, decay=0.9,
            commitment_weight=0.25, kmeans_init=True, kmeans_iters=10,
            threshold_ema_dead_code=2, accept_image_fmap=True,
        )
        dec: list[nn.Module] = [nn.Conv2d(config.code_dim, top, 3, 1, 1), ResBlock(top)]
        for level in reversed(range(levels)):
            cin, cout = _channels(config, level + 1), _channels(config, level)
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1)]
            dec += [ResBlock(cout)] if level > 0 else []
        if config.formulation == RESIDUAL:
            self.decoder = nn.Sequential(*dec)
            self.head: nn.Module = DetailHead(_channels(config, 0), config.resolution)
        else:
            dec += [nn.GroupNorm(8, _channels(config, 0)), nn.SiLU(),
                    nn.Conv2d(_channels(config, 0), 3, 3, 1, 1)]
            self.decoder = nn.Sequential(*dec)
            self.head = Reconstruction()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.encoder(x * 2 - 1)
        quantized, codes, vq_loss = self.quantizer(z)
        return self.head(self.decoder(quantized), x), vq_loss.mean(), codes

    @torch.inference_mode()
    def restore(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[0]


def save_sovqae(model: SOVQAE, path) -> None:  # noqa: ANN001 - str or Path
    torch.save({"config": model.config.to_dict(), "state_dict": model.state_dict()}, path)


def load_sovqae(path, device: str = "cpu") -> SOVQAE:  # noqa: ANN001 - str or Path
    raw = torch.load(path, map_location="cpu", weights_only=True)
    # Saved before the formulation was recorded: those are reconstructions.
    model = SOVQAE(SOVQAEConfig(**{"formulation": RECONSTRUCT, **raw["config"]}))
    model.load_state_dict(raw["state_dict"], strict=True)
    return model.to(device).eval()


class SOVQAEInference(nn.Module):
    """The restoring path of a trained SOVQAE as a plain network (encoder, nearest code,
    decoder) that torch.export and every serving backend run: the same outputs as
    SOVQAE.restore(), without the training machinery of the quantiser."""

    def __init__(self, model: SOVQAE) -> None:
        super().__init__()
        quantizer = model.quantizer
        self.encoder, self.decoder, self.head = model.encoder, model.decoder, model.head
        self.project_in, self.project_out = quantizer.project_in, quantizer.project_out
        self.register_buffer("codebook", quantizer._codebook.embed[0].detach().clone())

    def forward(self, crops: torch.Tensor) -> torch.Tensor:
        z = self.encoder(crops * 2 - 1)
        b, d, h, w = z.shape
        flat = self.project_in(z.permute(0, 2, 3, 1).reshape(b * h * w, d))
        codes = torch.cdist(flat, self.codebook.to(flat.dtype)).argmin(dim=1)
        quantized = self.project_out(self.codebook.to(flat.dtype)[codes])
        return self.head(self.decoder(quantized.reshape(b, h, w, d).permute(0, 3, 1, 2)), crops)
