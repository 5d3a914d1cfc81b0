"""Speech-like audio: syllables of a glottal pulse train through vowel formants, with
fricative bursts, intonation and pauses. Seeded, so every test gets the same signal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

# First three formants (Hz) of a few vowels.
VOWELS = {
    "a": (730, 1090, 2440), "e": (530, 1840, 2480), "i": (270, 2290, 3010),
    "o": (570, 840, 2410), "u": (300, 870, 2240),
}


@dataclass(frozen=True)
class SpeechSpec:
    seconds: float
    sample_rate: int = 16_000
    seed: int = 0
    pitch_hz: float = 140.0
    pause_every_s: float = 2.0  # a phrase break (silence) about this often
    pause_s: float = 0.5


def _resonator(signal: np.ndarray, freq: float, bandwidth: float, rate: int) -> np.ndarray:
    r = np.exp(-np.pi * bandwidth / rate)
    theta = 2 * np.pi * freq / rate
    return lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], signal)


def _syllable(rng: np.random.Generator, seconds: float, pitch: float, rate: int) -> np.ndarray:
    n = int(seconds * rate)
    t = np.arange(n) / rate
    f0 = pitch * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6)))
    phase = np.cumsum(f0 / rate)
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    glottal = lfilter([1.0], [1, -0.97], pulses)  # spectral tilt of the voice source
    formants = VOWELS[rng.choice(list(VOWELS))]
    voiced = sum(_resonator(glottal, f, 80 + 40 * k, rate) for k, f in enumerate(formants))
    envelope = np.sin(np.pi * np.clip(t / seconds, 0, 1)) ** 1.5
    out = voiced * envelope
    if rng.random() < 0.4:  # a consonant: a short noise burst at the start
        m = min(n, int(rng.uniform(0.03, 0.08) * rate))
        burst = rng.standard_normal(m) * np.hanning(m)
        out[:m] += 0.3 * np.std(out) * burst / max(np.std(burst), 1e-9)
    return out


def speech_like(spec: SpeechSpec) -> np.ndarray:
    """Mono float32 in [-1, 1]."""
    rng = np.random.default_rng(spec.seed)
    rate = spec.sample_rate
    total = int(spec.seconds * rate)
    parts: list[np.ndarray] = [np.zeros(int(0.25 * rate))]
    since_pause = 0.0
    while sum(len(p) for p in parts) < total:
        if since_pause >= spec.pause_every_s:
            parts.append(np.zeros(int(spec.pause_s * rng.uniform(0.8, 1.4) * rate)))
            since_pause = 0.0
            continue
        seconds = rng.uniform(0.12, 0.32)
        syllable = _syllable(rng, seconds, spec.pitch_hz * rng.uniform(0.9, 1.15), rate)
        parts.append(syllable * rng.uniform(0.35, 1.0))
        gap = rng.uniform(0.02, 0.12)
        parts.append(np.zeros(int(gap * rate)))
        since_pause += seconds + gap
    audio = np.concatenate(parts)[:total]
    audio += 1e-4 * rng.standard_normal(total)  # a little room noise, as real tracks have
    return (0.6 * audio / max(np.abs(audio).max(), 1e-9)).astype(np.float32)


def write_wav(path: str, samples: np.ndarray, sample_rate: int = 16_000) -> None:
    """16-bit PCM WAV via PyAV, so tests exercise the same decoder users' files go through."""
    import av

    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)[None, :]
    with av.open(path, mode="w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=sample_rate)
        stream.layout = "mono"
        if pcm.size:  # an empty track is still a valid (zero-length) file
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
