"""A disk-backed store of decoded frames, for output orders that run backwards (bounce):
the frames live in a memory-mapped temp file, so RAM stays flat however long the video."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lipdub.scratch import scratch_dir


class DiskFrameCache:
    """Source frames [first, first + count), decoded once."""

    def __init__(self, height: int, width: int, count: int, first: int = 0) -> None:
        self._dir = scratch_dir("frames")
        self._first = first
        self._frames = np.lib.format.open_memmap(
            Path(self._dir.name) / "frames.npy", mode="w+", dtype=np.uint8,
            shape=(count, height, width, 3),
        )

    def put(self, index: int, rgb: np.ndarray) -> None:
        self._frames[index - self._first] = rgb

    def get(self, index: int) -> np.ndarray:
        return np.array(self._frames[index - self._first])

    def close(self) -> None:
        del self._frames
        self._dir.cleanup()
