"""Choose and build an engine by name: `auto` = wav2lip when its weights are at hand (a
local checkpoint, or a model server that holds them), else the weight-free warp engine."""

from __future__ import annotations

from pathlib import Path

from lipdub.engines.base import LipSyncEngine
from lipdub.errors import BadOptionError, EngineUnavailableError
from lipdub.inference.backends import LOCAL, is_remote

ENGINE_NAMES = ("auto", "wav2lip", "warp")


def resolve_engine_name(name: str, wav2lip_checkpoint: Path | None,
                        inference: str = LOCAL) -> str:
    if name not in ENGINE_NAMES:
        raise BadOptionError(f"--engine '{name}' is not known.", f"Use one of {ENGINE_NAMES}.")
    weights = wav2lip_checkpoint is not None or is_remote(inference)
    if name == "auto":
        return "wav2lip" if weights else "warp"
    if name == "wav2lip" and not weights:
        raise EngineUnavailableError(
            "The wav2lip engine needs the Wav2Lip weights, which LipDub does not bundle.",
            "Pass --wav2lip-checkpoint wav2lip_gan.pth (or set LIPDUB_WAV2LIP_CHECKPOINT), "
            "or use --engine warp, which needs no weights.",
        )
    return name


def build_engine(
    name: str, wav2lip_checkpoint: Path | None, device: str = "auto", batch_size: int = 16,
    inference: str = LOCAL, served_wav2lip: str = "wav2lip", cpu_runtime: str = "auto",
    model_cache: Path | None = None,
) -> LipSyncEngine:
    """One engine (see build_engines)."""
    return build_engines(1, name, wav2lip_checkpoint, device, batch_size, inference,
                         served_wav2lip, cpu_runtime, model_cache)[0]


def build_engines(
    count: int, name: str, wav2lip_checkpoint: Path | None, device: str = "auto",
    batch_size: int = 16, inference: str = LOCAL, served_wav2lip: str = "wav2lip",
    cpu_runtime: str = "auto", model_cache: Path | None = None,
) -> list[LipSyncEngine]:
    """`count` engines sharing one model (a cast: one engine per character, each with its
    own line and temporal state; the weights load once). `inference`: where the model
    runs (LIPDUB_INFERENCE: local, or a model server); `served_wav2lip`: which of the
    server's models runs it; `cpu_runtime`: how this process runs it on a CPU
    (lipdub.inference.runtimes.CpuRuntime); `model_cache`: where files made from the
    weights are kept (LIPDUB_MODEL_CACHE_DIR by default)."""
    resolved = resolve_engine_name(name, wav2lip_checkpoint, inference)
    if resolved == "wav2lip":
        from lipdub.engines.wav2lip import Wav2LipEngine
        from lipdub.inference.backends import wav2lip_predictor

        predictor = wav2lip_predictor(inference, wav2lip_checkpoint, device, served_wav2lip,
                                      cpu_runtime, model_cache)
        return [Wav2LipEngine(predictor, batch_size=batch_size) for _ in range(count)]
    from lipdub.engines.warp.engine import WarpEngine

    return [WarpEngine() for _ in range(count)]


def analysis_engine(resolved: str) -> LipSyncEngine:
    """An engine for the analysis pass alone (study, study_state) of an engine already
    resolved: no weights are loaded, no model server is reached."""
    if resolved == "wav2lip":
        from lipdub.engines.wav2lip import Wav2LipEngine

        return Wav2LipEngine(predictor=None)
    from lipdub.engines.warp.engine import WarpEngine

    return WarpEngine()
