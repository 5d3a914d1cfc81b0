"""The local backend's CPU runtimes dub alike: onnxruntime and torch (both float32) give
the same mouths within float rounding, bfloat16 within a stated tolerance; and the model
loads beside the analysis pass without hiding a bad checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipdub.engines.base import FaceCrop
from lipdub.engines.registry import build_engine
from lipdub.errors import BadCheckpointError
from lipdub.faces.crop import crop_box
from lipdub.inference.background import BackgroundPredictor
from lipdub.inference.runtimes import CpuRuntime
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video
from lipdub.pipeline import analyse_video, dub
from tests.media_helpers import read_frames

RUNTIMES = [CpuRuntime.TORCH, CpuRuntime.TORCH_BF16, CpuRuntime.ONNXRUNTIME]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.fixture(scope="module")
def mouths(talking_clip: Path, new_voice: Path, random_wav2lip_checkpoint: Path,
           tmp_path_factory: pytest.TempPathFactory) -> dict[CpuRuntime, np.ndarray]:
    """The generated mouth pixels of 24 frames from each runtime (before any encoding),
    all in one flat array."""
    from lipdub.audio.load import load_mono_16k

    cache = tmp_path_factory.mktemp("model-cache")
    track = analyse_video(talking_clip, build_engine("warp", None)).track
    frames = [f for f, _ in zip(iter_frames(probe_video(talking_clip)), range(24),
                                strict=False)]
    crops = [FaceCrop(i, f, crop_box(track.boxes[i], f.shape[:2]), i == 0)
             for i, f in enumerate(frames)]
    found = {}
    for runtime in RUNTIMES:
        engine = build_engine("wav2lip", random_wav2lip_checkpoint, "cpu",
                              cpu_runtime=runtime, model_cache=cache)
        engine.prepare(load_mono_16k(new_voice), 25.0)
        patches = engine.render(crops[:12]) + engine.render(crops[12:])
        found[runtime] = np.concatenate([p.pixels.reshape(-1) for p in patches])
    assert list((cache / "onnx").glob("wav2lip-*.onnx")), "the export is kept for next time"
    return found


def test_onnxruntime_gives_torchs_mouths(mouths: dict[CpuRuntime, np.ndarray]) -> None:
    difference = np.abs(mouths[CpuRuntime.ONNXRUNTIME].astype(int)
                        - mouths[CpuRuntime.TORCH].astype(int))
    # float32 both: only summation order may differ, so at most a rounding step (measured:
    # identical pixels on this test's crops).
    assert difference.max() <= 1, difference.max()
    assert (difference > 0).mean() < 0.01


def test_bfloat16_stays_within_its_stated_tolerance(
        mouths: dict[CpuRuntime, np.ndarray]) -> None:
    # bfloat16 keeps 8 bits of mantissa with float32 accumulation: measured on this test's
    # crops, max 2 levels and PSNR 55.2 dB against float32 (bounds: 8 levels, 50 dB).
    bf16, fp32 = mouths[CpuRuntime.TORCH_BF16], mouths[CpuRuntime.TORCH]
    assert np.abs(bf16.astype(int) - fp32.astype(int)).max() <= 8
    assert psnr(bf16, fp32) >= 50.0, psnr(bf16, fp32)


def test_a_dub_on_onnxruntime_equals_the_torch_dub(
        tmp_path: Path, talking_clip: Path, short_voice: Path,
        random_wav2lip_checkpoint: Path) -> None:
    outputs = {}
    for runtime in (CpuRuntime.TORCH, CpuRuntime.ONNXRUNTIME):
        engine = build_engine("wav2lip", random_wav2lip_checkpoint, "cpu",
                              cpu_runtime=runtime, model_cache=tmp_path / "cache")
        dub(talking_clip, short_voice, tmp_path / f"{runtime}.mp4", engine)
        outputs[runtime] = np.stack(read_frames(tmp_path / f"{runtime}.mp4"))
    assert outputs[CpuRuntime.TORCH].shape == outputs[CpuRuntime.ONNXRUNTIME].shape
    assert psnr(outputs[CpuRuntime.TORCH], outputs[CpuRuntime.ONNXRUNTIME]) >= 50.0


def test_a_bad_checkpoint_loading_beside_the_analysis_fails_the_dub(
        tmp_path: Path, talking_clip: Path, short_voice: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00" * 1000)
    engine = build_engine("wav2lip", bad, "cpu")  # nothing is loaded yet: no error
    assert isinstance(engine.predictor, BackgroundPredictor)
    out = tmp_path / "out.mp4"
    with pytest.raises(BadCheckpointError, match="is not a PyTorch checkpoint"):
        dub(talking_clip, short_voice, out, engine)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.pth"]


@pytest.mark.parametrize(("amx", "bf16", "expected"), [
    (True, True, CpuRuntime.TORCH_BF16),
    (False, True, CpuRuntime.TORCH),  # AVX512-BF16 alone: bfloat16 measured slower
    (True, False, CpuRuntime.TORCH),
])
def test_auto_runs_bfloat16_only_where_the_cpu_has_amx(
        monkeypatch: pytest.MonkeyPatch, amx: bool, bf16: bool, expected: CpuRuntime) -> None:
    import torch

    from lipdub.inference.local import resolve_cpu_runtime

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: bf16)
    assert resolve_cpu_runtime(CpuRuntime.AUTO) is expected
    for chosen in RUNTIMES:  # a runtime asked for by name is kept whatever the CPU
        assert resolve_cpu_runtime(chosen) is chosen
