"""Decode the audio track of any audio or video file with PyAV (FFmpeg inside its wheel)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from lipdub.errors import CorruptMediaError, EmptyMediaError
from lipdub.media.probe import first_audio_stream, open_media

FEATURE_RATE = 16_000


def iter_audio(path: Path | str, sample_rate: int, layout: str) -> Iterator[np.ndarray]:
    """Yield (channels, n) float32 chunks of the first audio stream, resampled."""
    with open_media(path) as container:
        stream = first_audio_stream(container, path)
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    yield out.to_ndarray()
            for out in resampler.resample(None):
                yield out.to_ndarray()
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(
                f"'{path}' has a damaged audio stream ({exc}).", "Re-export the audio file."
            ) from exc


def load_mono_16k(path: Path | str) -> np.ndarray:
    """The whole track as mono float32 at 16 kHz (what the lip-sync features are made from)."""
    chunks = [c[0] for c in iter_audio(path, FEATURE_RATE, "mono")]
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    check_enough_audio(path, samples.size)
    return samples


def check_enough_audio(path: Path | str, count: int) -> None:
    if count < FEATURE_RATE // 25:  # less than one video frame of sound
        raise EmptyMediaError(
            f"'{path}' has an audio stream with no usable audio (zero length).",
            "Give an audio file with the new voice track.",
        )
