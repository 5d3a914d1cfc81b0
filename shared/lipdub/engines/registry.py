"""Choose and build an engine by name: `auto` = wav2lip when weights are configured, else
the weight-free warp engine."""

from __future__ import annotations

from pathlib import Path

from lipdub.engines.base import LipSyncEngine
from lipdub.errors import BadOptionError, EngineUnavailableError

ENGINE_NAMES = ("auto", "wav2lip", "warp")


def resolve_engine_name(name: str, wav2lip_checkpoint: Path | None) -> str:
    if name not in ENGINE_NAMES:
        raise BadOptionError(f"--engine '{name}' is not known.", f"Use one of {ENGINE_NAMES}.")
    if name == "auto":
        return "wav2lip" if wav2lip_checkpoint is not None else "warp"
    if name == "wav2lip" and wav2lip_checkpoint is None:
        raise EngineUnavailableError(
            "The wav2lip engine needs the Wav2Lip weights, which LipDub does not bundle.",
            "Pass --wav2lip-checkpoint wav2lip_gan.pth (or set LIPDUB_WAV2LIP_CHECKPOINT), "
            "or use --engine warp, which needs no weights.",
        )
    return name


def build_engine(
    name: str, wav2lip_checkpoint: Path | None, device: str = "auto", batch_size: int = 16
) -> LipSyncEngine:
    resolved = resolve_engine_name(name, wav2lip_checkpoint)
    if resolved == "wav2lip":
        from lipdub.engines.wav2lip import Wav2LipEngine
        from lipdub.inference.local import LocalPredictor
        from lipdub.models.wav2lip import load_wav2lip_checkpoint

        assert wav2lip_checkpoint is not None
        model = load_wav2lip_checkpoint(wav2lip_checkpoint)
        return Wav2LipEngine(LocalPredictor(model, device), batch_size=batch_size)
    from lipdub.engines.warp.engine import WarpEngine

    return WarpEngine()
