"""The 'space' settings of a SOVQAE (latent grid and codebook sizes) that training uses by
default and that `--search` tries."""

from __future__ import annotations

from lipdub.restore.model import SOVQAEConfig


def default_space(resolution: int) -> SOVQAEConfig:
    return SOVQAEConfig(resolution=resolution, latent_size=resolution // 4, codebook_size=512)


def search_space(resolution: int) -> list[SOVQAEConfig]:
    return [
        SOVQAEConfig(resolution=resolution, latent_size=resolution // 8, codebook_size=512),
        SOVQAEConfig(resolution=resolution, latent_size=resolution // 4, codebook_size=256),
        SOVQAEConfig(resolution=resolution, latent_size=resolution // 4, codebook_size=1024),
    ]
