"""The Wav2Lip generator (Prajwal et al., 2020) and a loader for the released checkpoints.

Layer layout and parameter names follow the reference exactly (docs/wav2lip.md), so
`wav2lip.pth` / `wav2lip_gan.pth` load unchanged with a strict key check.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from lipdub.errors import BadCheckpointError
from lipdub.models.files import WAV2LIP_HINT, require_file
from lipdub.models.layers import Conv2d, Conv2dTranspose, residual


def _audio_encoder(extra_256_residual: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        Conv2d(1, 32, 3, 1, 1), residual(32), residual(32),
        Conv2d(32, 64, 3, (3, 1), 1), residual(64), residual(64),
        Conv2d(64, 128, 3, 3, 1), residual(128), residual(128),
        Conv2d(128, 256, 3, (3, 2), 1), residual(256),
    ]
    if extra_256_residual:
        layers.append(residual(256))
    layers += [Conv2d(256, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0)]
    return nn.Sequential(*layers)


class Wav2Lip(nn.Module):
    """face (B, 6, 96, 96) + mel (B, 1, 80, 16) -> face (B, 3, 96, 96) in [0, 1], BGR."""

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(6, 16, 7, 1, 3)),
            nn.Sequential(Conv2d(16, 32, 3, 2, 1), residual(32), residual(32)),
            nn.Sequential(Conv2d(32, 64, 3, 2, 1), residual(64), residual(64), residual(64)),
            nn.Sequential(Conv2d(64, 128, 3, 2, 1), residual(128), residual(128)),
            nn.Sequential(Conv2d(128, 256, 3, 2, 1), residual(256), residual(256)),
            nn.Sequential(Conv2d(256, 512, 3, 2, 1), residual(512)),
            nn.Sequential(Conv2d(512, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0)),
        ])
        self.audio_encoder = _audio_encoder()
        self.face_decoder_blocks = nn.ModuleList([
            nn.Sequential(Conv2d(512, 512, 1, 1, 0)),
            nn.Sequential(Conv2dTranspose(1024, 512, 3, 1, 0), residual(512)),
            nn.Sequential(Conv2dTranspose(1024, 512, 3, 2, 1, 1), residual(512), residual(512)),
            nn.Sequential(Conv2dTranspose(768, 384, 3, 2, 1, 1), residual(384), residual(384)),
            nn.Sequential(Conv2dTranspose(512, 256, 3, 2, 1, 1), residual(256), residual(256)),
            nn.Sequential(Conv2dTranspose(320, 128, 3, 2, 1, 1), residual(128), residual(128)),
            nn.Sequential(Conv2dTranspose(160, 64, 3, 2, 1, 1), residual(64), residual(64)),
        ])
        self.output_block = nn.Sequential(
            Conv2d(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1, 1, 0), nn.Sigmoid()
        )

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        x = self.audio_encoder(mel)
        features = []
        f = face
        for block in self.face_encoder_blocks:
            f = block(f)
            features.append(f)
        for block in self.face_decoder_blocks:
            x = block(x)
            x = torch.cat((x, features.pop()), dim=1)
        return self.output_block(x)


class SyncNetColor(nn.Module):
    """The lip-sync expert: 5 lower-half crops (B, 15, 48, 96) and mel (B, 1, 80, 16) ->
    L2-normalised embeddings whose cosine similarity is the sync probability."""

    def __init__(self) -> None:
        super().__init__()
        self.face_encoder = nn.Sequential(
            Conv2d(15, 32, 7, 1, 3),
            Conv2d(32, 64, 5, (1, 2), 1), residual(64), residual(64),
            Conv2d(64, 128, 3, 2, 1), residual(128), residual(128), residual(128),
            Conv2d(128, 256, 3, 2, 1), residual(256), residual(256),
            Conv2d(256, 512, 3, 2, 1), residual(512), residual(512),
            Conv2d(512, 512, 3, 2, 1), Conv2d(512, 512, 3, 1, 0), Conv2d(512, 512, 1, 1, 0),
        )
        self.audio_encoder = _audio_encoder(extra_256_residual=True)

    def forward(self, mel: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = nn.functional.normalize(self.audio_encoder(mel).flatten(1), p=2, dim=1)
        f = nn.functional.normalize(self.face_encoder(faces).flatten(1), p=2, dim=1)
        return a, f


def save_wav2lip_checkpoint(model: Wav2Lip, path: Path) -> None:
    """Save in the released format: {"state_dict": {"module." + name: tensor}}."""
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 0, "global_epoch": 0}, path)


def load_wav2lip_checkpoint(path: Path | str, device: str = "cpu") -> Wav2Lip:
    """Load a released Wav2Lip generator checkpoint unchanged; returns the model in eval mode."""
    path = require_file(Path(path), "Wav2Lip checkpoint", WAV2LIP_HINT)
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for non-checkpoints
        raise BadCheckpointError(
            f"'{path}' is not a PyTorch checkpoint ({type(exc).__name__}).",
            "Give the released wav2lip.pth or wav2lip_gan.pth file.",
        ) from exc
    if not isinstance(raw, dict) or "state_dict" not in raw or not isinstance(
        raw["state_dict"], dict
    ):
        raise BadCheckpointError(
            f"'{path}' is not a Wav2Lip checkpoint: it has no 'state_dict' entry.",
            "Give the released wav2lip.pth or wav2lip_gan.pth file.",
        )
    state = {k.removeprefix("module."): v.float() if v.is_floating_point() else v
             for k, v in raw["state_dict"].items() if isinstance(v, torch.Tensor)}
    # Built without initial values (random init of 36M weights is a fifth of a second of
    # start-up); the checkpoint's tensors become the weights.
    with torch.device("meta"):
        model = Wav2Lip()
    expected = model.state_dict()
    for name, tensor in expected.items():
        if name not in state:
            raise BadCheckpointError(
                f"'{path}' is not a Wav2Lip generator checkpoint: key '{name}' is missing.",
                "Give wav2lip.pth or wav2lip_gan.pth (not the SyncNet expert or another model).",
            )
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise BadCheckpointError(
                f"'{path}' does not fit Wav2Lip: '{name}' has shape {tuple(state[name].shape)}, "
                f"expected {tuple(tensor.shape)}.",
                "Give wav2lip.pth or wav2lip_gan.pth.",
            )
    unexpected = sorted(set(state) - set(expected))
    if unexpected:
        raise BadCheckpointError(
            f"'{path}' is not a Wav2Lip generator checkpoint: unexpected key '{unexpected[0]}'.",
            "Give wav2lip.pth or wav2lip_gan.pth (not the SyncNet expert or another model).",
        )
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval()
