"""Wav2Lip mel features against an independent computation (librosa) of the same definition."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from lipdub.audio.mel import mel_columns, mel_window, wav2lip_mel
from lipdub.samples.speech import SpeechSpec, speech_like


def reference_mel(y: np.ndarray) -> np.ndarray:
    """The reference recipe written with librosa, as the original repository computes it."""
    emphasised = np.append(y[0], y[1:] - 0.97 * y[:-1])
    spec = np.abs(librosa.stft(emphasised, n_fft=800, hop_length=200, win_length=800,
                               center=True, pad_mode="reflect"))
    basis = librosa.filters.mel(sr=16_000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ spec)) - 20
    return np.clip(8 * (db + 100) / 100 - 4, -4, 4)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_mel_matches_librosa_reference(seed: int) -> None:
    y = speech_like(SpeechSpec(seconds=3.0, seed=seed)).astype(np.float64)
    ours = wav2lip_mel(y)
    ref = reference_mel(y)
    assert ours.shape == ref.shape == (80, 1 + len(y) // 200)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-3


def test_mel_edges_use_reflect_padding() -> None:
    # A loud start: zero padding (newer librosa's default) would change the first frame.
    y = speech_like(SpeechSpec(seconds=1.0, seed=5)).astype(np.float64)
    y[:400] = 0.5 * np.sin(np.arange(400) * 0.3)
    zero_padded = np.clip(
        8 * (20 * np.log10(np.maximum(1e-5, librosa.filters.mel(
            sr=16_000, n_fft=800, n_mels=80, fmin=55, fmax=7600) @ np.abs(librosa.stft(
                np.append(y[0], y[1:] - 0.97 * y[:-1]), n_fft=800, hop_length=200,
                center=True, pad_mode="constant")))) - 20 + 100) / 100 - 4, -4, 4)
    ours = wav2lip_mel(y)
    assert np.abs(ours[:, 0] - reference_mel(y)[:, 0]).max() < 1e-3
    assert np.abs(ours[:, 0] - zero_padded[:, 0]).max() > 1e-2


def test_mel_window_indexing_follows_reference() -> None:
    mel = np.arange(80 * 100, dtype=np.float32).reshape(80, 100)
    assert np.array_equal(mel_window(mel, 0, 25.0), mel[:, 0:16])
    assert np.array_equal(mel_window(mel, 10, 25.0), mel[:, 32:48])  # int(10 * 80 / 25) = 32
    assert np.array_equal(mel_window(mel, 7, 29.97), mel[:, 18:34])  # int(7 * 80 / 29.97)
    assert np.array_equal(mel_window(mel, 40, 25.0), mel[:, 84:100])  # past the end: last 16


def test_mel_columns_computed_piecewise_equal_the_whole() -> None:
    y = speech_like(SpeechSpec(seconds=2.0, seed=4))
    whole = wav2lip_mel(y)
    for first, last in [(0, 16), (37, 53), (whole.shape[1] - 16, whole.shape[1])]:
        assert np.array_equal(mel_columns(y, first, last), whole[:, first:last])
