"""A decoded voice track kept on disk and read a slice at a time, so that the lip-sync
features of a feature-length track never need the whole track in memory (two hours of
mono float32 at 16 kHz is 460 MB, and a segment's render needs a minute of it).

Engines take `Samples`: anything with a length and contiguous slicing, which a numpy
array is too (tests and short clips pass arrays)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from lipdub.audio.load import FEATURE_RATE, check_enough_audio, iter_audio
from lipdub.sync import SyncMode, SyncPlan, plan_sync

if TYPE_CHECKING:
    from lipdub.media.probe import VideoInfo


class Samples(Protocol):
    """Mono float32 audio at 16 kHz: its length, and `samples[a:b]` as an array."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice) -> np.ndarray: ...


class SampleFile:
    """Raw float32 samples in a file; each slice is read from disk (not memory-mapped:
    mapped pages would count in the reader's RSS once touched)."""

    def __init__(self, path: Path, count: int) -> None:
        self.path, self.count = path, count

    @classmethod
    def open(cls, path: Path) -> SampleFile:
        """A file `decode_to` wrote."""
        return cls(path, path.stat().st_size // 4)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, step = key.indices(self.count)
        if step != 1:
            raise ValueError("SampleFile reads contiguous slices only")
        with self.path.open("rb") as f:
            return np.fromfile(f, np.float32, count=max(0, stop - start),
                               offset=start * 4)


class Padded:
    """`samples` followed by silence up to `length`: a character's line that ends before
    the scene does is silent after its end (a mouth closes, it does not repeat the last
    sound)."""

    def __init__(self, samples: Samples, length: int) -> None:
        self.samples, self.length = samples, max(length, len(samples))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, key: slice) -> np.ndarray:
        start, stop, _ = key.indices(self.length)
        stop = max(start, stop)
        have = self.samples[start:min(stop, len(self.samples))] if start < len(self.samples) \
            else np.zeros(0, np.float32)
        return np.concatenate([have, np.zeros(stop - start - len(have), np.float32)])


def decode_to(audio: Path | str, path: Path) -> SampleFile:
    """The audio track of `audio` decoded to `path`, a chunk at a time; atomic (a reader
    never finds half a track). The same samples as load_mono_16k, bit for bit."""
    partial, count = path.with_name(f".{path.name}.partial"), 0
    try:
        with partial.open("wb") as f:
            for chunk in iter_audio(audio, FEATURE_RATE, "mono"):
                np.ascontiguousarray(chunk[0], dtype=np.float32).tofile(f)
                count += chunk.shape[1]
        check_enough_audio(audio, count)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return SampleFile(path, count)


def output_plan(info: VideoInfo, line: Samples, mode: SyncMode) -> SyncPlan:
    """Which source frame each output frame shows, for this video and this line (16 kHz):
    worked out alike by a dub, each segment's render, the probe stage and the QC."""
    return plan_sync(info.frame_count, len(line) / FEATURE_RATE, float(info.fps), mode)


def decoded_once(audio: Path) -> SampleFile:
    """The track of a file this process owns (a job's local copy of its input), decoded
    next to it the first time and reused after: a worker rendering many segments of one
    film decodes its voice once, not once per segment."""
    cached = audio.with_name(f"{audio.name}.16k.f32")
    return SampleFile.open(cached) if cached.exists() else decode_to(audio, cached)


@contextmanager
def decoded_samples(audio: Path | str, folder: Path | None = None) -> Iterator[SampleFile]:
    """The audio track of `audio` decoded to a temporary raw file, deleted after."""
    fd, name = tempfile.mkstemp(prefix="lipdub-voice-", suffix=".f32", dir=folder)
    os.close(fd)
    path = Path(name)
    try:
        yield decode_to(audio, path)
    finally:
        path.unlink(missing_ok=True)
