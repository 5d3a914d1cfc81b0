"""Wav2Lip's mel features, exactly as the reference defines them (see docs/wav2lip.md).

librosa-compatible (Slaney mel scale and area normalisation, centred reflect-padded STFT),
written with numpy so the core does not pull in librosa/numba.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lipdub.audio.samples import Samples

SAMPLE_RATE = 16_000
N_FFT = 800
HOP = 200
N_MELS = 80
FMIN, FMAX = 55.0, 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0
MEL_FRAMES_PER_SECOND = SAMPLE_RATE / HOP  # 80


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = hz / f_sp
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_region = hz >= min_log_hz
    mels[log_region] = min_log_mel + np.log(hz[log_region] / min_log_hz) / logstep
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    hz = f_sp * mels
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    log_region = mels >= min_log_mel
    hz[log_region] = min_log_hz * np.exp(logstep * (mels[log_region] - min_log_mel))
    return hz


@lru_cache(maxsize=1)
def mel_filterbank() -> np.ndarray:
    """(80, 401) triangular filters with Slaney area normalisation."""
    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, 1 + N_FFT // 2)
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(np.array([FMIN]))[0],
                                        _hz_to_mel(np.array([FMAX]))[0], N_MELS + 2))
    widths = np.diff(mel_points)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    return weights


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    # Periodic Hann, as scipy.signal.get_window('hann', N, fftbins=True) / librosa use.
    n = np.arange(N_FFT)
    return 0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)


def mel_frame_count(sample_count: int) -> int:
    """Columns of the centred STFT: one every HOP samples, the first centred on sample 0."""
    return 1 + sample_count // HOP


def _reflect(indices: np.ndarray, n: int) -> np.ndarray:
    """np.pad(mode="reflect") as an index map (valid while the pad is shorter than n)."""
    indices = np.abs(indices)
    over = indices >= n
    indices[over] = 2 * (n - 1) - indices[over]
    return indices


def mel_columns(samples_16k: Samples, first: int, last: int) -> np.ndarray:
    """Columns [first, last) of `wav2lip_mel(samples_16k)`, computed from just the audio they
    cover (only that is read), so a long track never needs its whole spectrogram, or its
    whole audio, in memory."""
    if isinstance(samples_16k, np.ndarray):
        samples_16k = samples_16k.reshape(-1)
    n = len(samples_16k)
    if n <= N_FFT // 2:
        raise ValueError("wav2lip_mel needs more than 25 ms of audio")
    first, last = max(0, first), min(last, mel_frame_count(n))
    if last <= first:
        return np.zeros((N_MELS, 0), dtype=np.float32)
    starts = np.arange(first, last) * HOP - N_FFT // 2
    idx = _reflect(starts[:, None] + np.arange(N_FFT)[None, :], n)
    # The samples these columns read, and the one before them (for pre-emphasis).
    lo = max(int(idx.min()) - 1, 0)
    x = np.asarray(samples_16k[lo:int(idx.max()) + 1])
    # Pre-emphasis y[i] = x[i] - 0.97 x[i-1] is local, so it can be taken per sample index.
    emphasised = x[idx - lo].astype(np.float64) - PREEMPHASIS * x[np.maximum(idx - 1, 0) - lo]
    emphasised[idx == 0] = x[0]  # (sample 0 is read, lo == 0, whenever idx holds it)
    magnitude = np.abs(np.fft.rfft(emphasised * _hann(), axis=1)).T  # (401, columns)
    db = 20.0 * np.log10(np.maximum(1e-5, mel_filterbank() @ magnitude)) - REF_LEVEL_DB
    normalised = 2 * MAX_ABS_VALUE * ((db - MIN_LEVEL_DB) / -MIN_LEVEL_DB) - MAX_ABS_VALUE
    return np.clip(normalised, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def wav2lip_mel(samples_16k: Samples) -> np.ndarray:
    """Mono float audio at 16 kHz -> normalised log-mel spectrogram of shape (80, T)."""
    if isinstance(samples_16k, np.ndarray):
        samples_16k = samples_16k.reshape(-1)
    total = mel_frame_count(len(samples_16k))
    block = 4096  # about 50 s of audio at a time keeps the working set small
    return np.concatenate([mel_columns(samples_16k, a, a + block)
                           for a in range(0, total, block)], axis=1)


def mel_window_start(frame_index: int, fps: float, total_columns: int, width: int = 16) -> int:
    """First mel column of the window driving video frame `frame_index` (reference rule)."""
    start = int(frame_index * MEL_FRAMES_PER_SECOND / fps)
    return max(0, min(start, total_columns - width))


def mel_window(mel: np.ndarray, frame_index: int, fps: float, width: int = 16) -> np.ndarray:
    """The (80, 16) window that drives video frame `frame_index` (reference indexing)."""
    start = mel_window_start(frame_index, fps, mel.shape[1], width)
    window = mel[:, start : start + width]
    if window.shape[1] < width:  # audio shorter than 0.2 s: pad with the quietest value
        window = np.pad(window, ((0, 0), (0, width - window.shape[1])),
                        constant_values=-MAX_ABS_VALUE)
    return window
