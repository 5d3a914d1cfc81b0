"""Audio -> articulation track, no learned weights.

Per video frame: how open the jaw/lips are (0 = closed, 1 = wide open) and how wide versus
rounded the lips are (-1 = rounded "oo", +1 = spread "ee"). Derived from energy in the
speech band, spectral centroid and a silence gate, smoothed with attack/release and shifted
slightly earlier, because the mouth starts to move before the sound comes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lipdub.audio.samples import Samples

RATE = 16_000
HOP_S = 0.010  # analysis every 10 ms, whatever the video frame rate
WINDOW_S = 0.025
SPEECH_BAND = (250.0, 3500.0)
ATTACK_S = 0.030  # how fast the mouth opens
RELEASE_S = 0.070  # how fast it closes again
LOOKAHEAD_S = 0.040
GATE_DB_ABOVE_FLOOR = 9.0  # below this the track is silence and the mouth closes


@dataclass(frozen=True)
class Articulation:
    openness: np.ndarray  # (frames,) float32 in [0, 1]
    width: np.ndarray  # (frames,) float32 in [-1, 1]


def _band_features(samples: Samples) -> tuple[np.ndarray, np.ndarray]:
    """Speech-band energy (dB) and spectral centroid every HOP_S, computed a minute at a time
    from just that minute's audio, so that a feature-length track needs neither a
    feature-length spectrogram nor its whole audio in memory."""
    hop, win, nfft = int(RATE * HOP_S), int(RATE * WINDOW_S), 512
    count = 1 + len(samples) // hop  # analysis windows centred on samples 0, hop, 2 hop...
    window = np.hanning(win).astype(np.float32)
    freqs = np.fft.rfftfreq(nfft, 1 / RATE)
    band = (freqs >= SPEECH_BAND[0]) & (freqs <= SPEECH_BAND[1])
    wide = (freqs >= 150) & (freqs <= 6000)
    energy_db = np.empty(count, dtype=np.float32)
    centroid = np.empty(count, dtype=np.float32)
    block = int(60 / HOP_S)
    for a in range(0, count, block):
        b = min(a + block, count)
        # Window k covers samples [k hop - win/2, k hop + win/2), zeros outside the track.
        lo, hi = a * hop - win // 2, (b - 1) * hop - win // 2 + win
        audio = np.zeros(hi - lo, dtype=np.float32)
        inside = np.asarray(samples[max(lo, 0):max(min(hi, len(samples)), 0)],
                            dtype=np.float32)
        audio[max(lo, 0) - lo:max(lo, 0) - lo + len(inside)] = inside
        frames = np.lib.stride_tricks.sliding_window_view(audio, win)[::hop]
        power = np.abs(np.fft.rfft(frames * window, n=nfft, axis=1)) ** 2
        energy_db[a:b] = 10 * np.log10(power[:, band].sum(1) + 1e-10)
        centroid[a:b] = ((power[:, wide] * freqs[wide]).sum(1)
                         / (power[:, wide].sum(1) + 1e-10))
    return energy_db, centroid


def _attack_release(x: np.ndarray) -> np.ndarray:
    up = 1 - np.exp(-HOP_S / ATTACK_S)
    down = 1 - np.exp(-HOP_S / RELEASE_S)
    out = np.empty_like(x)
    state = 0.0
    for i, v in enumerate(x):
        state += (up if v > state else down) * (v - state)
        out[i] = state
    return out


def articulation_track(samples_16k: Samples, fps: float, frame_count: int) -> Articulation:
    energy_db, centroid = _band_features(samples_16k)
    floor = np.percentile(energy_db, 10)
    peak = np.percentile(energy_db, 97)
    # Whole-track silence (or a constant tone) has no dynamics: keep the mouth closed.
    dynamic = max(peak - floor, 1e-6)
    gate = energy_db > floor + min(GATE_DB_ABOVE_FLOOR, 0.5 * dynamic)
    # Scale loudness within the speech itself, so syllables open and close the mouth.
    active = energy_db[gate] if gate.sum() > 10 else energy_db
    quiet, loud = np.percentile(active, 5), np.percentile(active, 97)
    level = np.clip((energy_db - quiet) / max(loud - quiet, 1e-6), 0, 1)
    openness = np.where(gate, level**1.3, 0.0)
    active_centroid = centroid[gate] if gate.any() else centroid
    mid = np.median(active_centroid)
    spread = np.percentile(active_centroid, 90) - np.percentile(active_centroid, 10) + 1e-6
    width = np.where(gate, np.clip((centroid - mid) / (0.5 * spread), -1, 1), 0.0)
    openness = _attack_release(openness)
    width = _attack_release(width)

    # Average each video frame's span, read LOOKAHEAD_S ahead.
    times = (np.arange(frame_count) / fps + LOOKAHEAD_S) / HOP_S
    span = max(1, int(round(1 / fps / HOP_S)))
    idx = np.clip(times.astype(int)[:, None] + np.arange(span)[None, :], 0, len(openness) - 1)
    beyond = times.astype(int) >= len(openness)  # past the end of the audio: mouth at rest
    per_frame_open = np.where(beyond, 0.0, openness[idx].mean(1))
    per_frame_width = np.where(beyond, 0.0, width[idx].mean(1))
    return Articulation(openness=per_frame_open.astype(np.float32),
                        width=per_frame_width.astype(np.float32))
