"""The Wav2Lip generator: loads released-format checkpoints unchanged, rejects others."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from lipdub.errors import BadCheckpointError, InputNotFoundError
from lipdub.inference.local import LocalPredictor
from lipdub.models.wav2lip import (
    SyncNetColor,
    Wav2Lip,
    load_wav2lip_checkpoint,
    save_wav2lip_checkpoint,
)


def test_random_checkpoint_in_released_format_loads_and_runs(
    random_wav2lip_checkpoint: Path,
) -> None:
    raw = torch.load(random_wav2lip_checkpoint, weights_only=True)
    assert all(k.startswith("module.") for k in raw["state_dict"])
    assert "module.face_encoder_blocks.1.2.conv_block.0.weight" in raw["state_dict"]
    assert "module.output_block.1.weight" in raw["state_dict"]
    model = load_wav2lip_checkpoint(random_wav2lip_checkpoint)
    assert not model.training
    with torch.inference_mode():
        out = model(torch.rand(2, 1, 80, 16), torch.rand(2, 6, 96, 96))
    assert out.shape == (2, 3, 96, 96)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    # Every tensor came from the file, unchanged.
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, raw["state_dict"][f"module.{name}"])


def test_spatial_sizes_follow_the_reference_layout() -> None:
    model = Wav2Lip().eval()
    sizes = []
    x = torch.rand(1, 6, 96, 96)
    with torch.inference_mode():
        for block in model.face_encoder_blocks:
            x = block(x)
            sizes.append(x.shape[-1])
        audio = model.audio_encoder(torch.rand(1, 1, 80, 16))
    assert sizes == [96, 48, 24, 12, 6, 3, 1]
    assert audio.shape == (1, 512, 1, 1)


def test_syncnet_checkpoint_is_rejected_naming_the_first_bad_key(tmp_path: Path) -> None:
    path = tmp_path / "syncnet.pth"
    state = {f"module.{k}": v for k, v in SyncNetColor().state_dict().items()}
    torch.save({"state_dict": state}, path)
    with pytest.raises(BadCheckpointError, match="key 'face_encoder_blocks"):
        load_wav2lip_checkpoint(path)


def test_wrong_shapes_and_extra_keys_are_rejected(tmp_path: Path) -> None:
    state = {f"module.{k}": v for k, v in Wav2Lip().state_dict().items()}
    bad_shape = dict(state)
    bad_shape["module.output_block.1.weight"] = torch.zeros(4, 32, 1, 1)
    torch.save({"state_dict": bad_shape}, tmp_path / "shape.pth")
    with pytest.raises(BadCheckpointError, match="output_block.1.weight"):
        load_wav2lip_checkpoint(tmp_path / "shape.pth")
    extra = dict(state)
    extra["module.something_else"] = torch.zeros(1)
    torch.save({"state_dict": extra}, tmp_path / "extra.pth")
    with pytest.raises(BadCheckpointError, match="unexpected key 'something_else'"):
        load_wav2lip_checkpoint(tmp_path / "extra.pth")


def test_non_checkpoints_fail_clearly(tmp_path: Path) -> None:
    (tmp_path / "text.pth").write_text("not a checkpoint")
    with pytest.raises(BadCheckpointError, match="not a PyTorch checkpoint"):
        load_wav2lip_checkpoint(tmp_path / "text.pth")
    torch.save({"weights": {}}, tmp_path / "nostate.pth")
    with pytest.raises(BadCheckpointError, match="no 'state_dict'"):
        load_wav2lip_checkpoint(tmp_path / "nostate.pth")
    with pytest.raises(InputNotFoundError):
        load_wav2lip_checkpoint(tmp_path / "missing.pth")


def test_folded_batchnorm_predictor_matches_the_plain_model(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = Wav2Lip().eval()
    for module in model.modules():  # non-trivial statistics, as trained weights have
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.1, 0.1)
    save_wav2lip_checkpoint(model, tmp_path / "w.pth")
    reloaded = load_wav2lip_checkpoint(tmp_path / "w.pth")
    rng = np.random.default_rng(0)
    faces = rng.random((3, 6, 96, 96), dtype=np.float32)
    mel = rng.standard_normal((3, 1, 80, 16)).astype(np.float32)
    with torch.inference_mode():
        expected = reloaded(torch.from_numpy(mel), torch.from_numpy(faces)).numpy()
    got = LocalPredictor(copy.deepcopy(reloaded), "cpu")(mel, faces)
    assert np.abs(got - expected).max() < 1e-4


def test_engine_feeds_the_reference_mel_windows_even_for_very_short_audio() -> None:
    """Per-batch mel windows equal the reference's windows of the whole spectrogram; a track
    under 0.2 s (fewer columns than one window) gets the reference's padded window."""
    from lipdub.audio.mel import mel_window, wav2lip_mel
    from lipdub.engines.base import FaceCrop
    from lipdub.engines.wav2lip import Wav2LipEngine

    seen: list[np.ndarray] = []

    def predictor(mel: np.ndarray, faces: np.ndarray) -> np.ndarray:
        seen.append(mel[:, 0])
        return np.zeros((len(mel), 3, 96, 96), np.float32)

    rng = np.random.default_rng(3)
    frame = rng.integers(0, 255, (120, 120, 3), np.uint8)
    crops = [FaceCrop(frame_index=k, frame=frame, box=(10, 10, 110, 110), shot_start=k == 0)
             for k in (0, 7, 30)]
    for seconds in (2.0, 0.1):
        audio = rng.standard_normal(int(16_000 * seconds)).astype(np.float32) * 0.1
        engine = Wav2LipEngine(predictor)
        engine.prepare(audio, 25.0)
        engine.render(crops)
        whole = wav2lip_mel(audio)
        expected = np.stack([mel_window(whole, c.frame_index, 25.0) for c in crops])
        assert seen[-1].shape == (3, 80, 16)
        np.testing.assert_allclose(seen[-1], expected, atol=1e-3)
