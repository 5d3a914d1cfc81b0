"""Streaming decode: upright RGB frames at a constant rate, one at a time.

Variable-frame-rate sources are resampled to the stream's average rate by repeating or
dropping frames, so frame index k always means time k / fps. Memory holds one frame.
"""

from __future__ import annotations

from collections.abc import Iterator

import av
import numpy as np

from lipdub.errors import CorruptMediaError, EmptyMediaError
from lipdub.media.colour import frame_to_rgb
from lipdub.media.probe import VideoInfo, normalise_rotation, open_media

# A source that ends this much earlier than its header says is reported as truncated.
_TRUNCATION_TOLERANCE_S = 1.0


def upright(image: np.ndarray, rotation_cw: int) -> np.ndarray:
    if rotation_cw == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=-(rotation_cw // 90)))


def iter_frames(info: VideoInfo) -> Iterator[np.ndarray]:
    """Yield exactly `info.frame_count` upright RGB24 frames (H, W, 3) at `info.fps`."""
    fps = float(info.fps)
    emitted = 0
    last: np.ndarray | None = None
    t0: float | None = None
    with open_media(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            for decoded_count, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else decoded_count / fps
                if t0 is None:
                    t0 = t
                slot = round((t - t0) * fps)
                rotation = normalise_rotation(frame.rotation)
                image = upright(frame_to_rgb(frame), rotation)
                # Fill any gap (VFR or dropped frames) by holding the previous picture.
                while emitted < slot and emitted < info.frame_count:
                    yield last if last is not None else image
                    emitted += 1
                last = image
                if emitted == slot and emitted < info.frame_count:
                    yield image
                    emitted += 1
        except av.error.FFmpegError as exc:
            raise CorruptMediaError(
                f"'{info.path}' is damaged: decoding stopped at frame {emitted} ({exc}).",
                "Re-export or re-download the file.",
            ) from exc
    if last is None:
        raise EmptyMediaError(
            f"'{info.path}' has a video stream with no frames.", "Give a video with footage."
        )
    missing = info.frame_count - emitted
    if missing > _TRUNCATION_TOLERANCE_S * fps:
        raise CorruptMediaError(
            f"'{info.path}' is truncated: its header says {info.frame_count} frames but only "
            f"{emitted} could be decoded.",
            "Re-export or re-download the complete file.",
        )
    for _ in range(missing):
        yield last


def iter_frames_looped(info: VideoInfo, indices: Iterator[int]) -> Iterator[np.ndarray]:
    """Frames for a sequence of source indices that only moves forwards, except for jumps
    back to 0 (loop mode): each jump restarts the decoder, so memory stays flat."""
    source = iter_frames(info)
    position = -1
    current: np.ndarray | None = None
    for wanted in indices:
        if wanted < position:
            source = iter_frames(info)
            position = -1
        while position < wanted:
            current = next(source)
            position += 1
        assert current is not None
        yield current

