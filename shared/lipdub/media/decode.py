"""Streaming decode: upright RGB frames at a constant rate, one at a time.

Variable-frame-rate sources are resampled to the stream's average rate by repeating or
dropping frames, so frame index k always means time k / fps. Memory holds one frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

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


# A forward jump longer than this is a seek, not a decode-and-skip (a film's segments start
# anywhere; decoding an hour to reach one would make segmenting quadratic).
SEEK_AFTER_FRAMES = 250


def iter_frames(info: VideoInfo, start: int = 0,
                convert: Callable[[av.VideoFrame], Any] | None = None) -> Iterator[Any]:
    """Yield upright RGB24 frames (H, W, 3) at `info.fps`, exactly `info.frame_count` of
    them from frame `start` on (frame k is time k / fps from the first frame). A later
    start seeks to the key frame before it and decodes forward: frame-accurate.
    `convert`: each decoded frame as the caller wants it instead (a master's planes;
    the caller has refused rotated sources)."""
    fps = float(info.fps)
    emitted = start
    last: np.ndarray | None = None
    skipped: av.VideoFrame | None = None  # the last frame before `start`, not yet converted
    with open_media(info.path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            t0 = _first_frame_time(container, stream) if start else None
            if start and stream.time_base is not None and t0 is not None:
                target = (t0 + (start - 0.5) / fps) / float(stream.time_base)
                container.seek(max(0, int(target)), backward=True, any_frame=False,
                               stream=stream)
            for decoded_count, frame in enumerate(container.decode(stream)):
                t = frame.time if frame.time is not None else decoded_count / fps
                if t0 is None:
                    t0 = t
                slot = round((t - t0) * fps)
                if slot < start:  # before the start: decoded only to reach it
                    skipped = frame
                    continue
                if last is None and skipped is not None and slot > start:  # a gap at start
                    last = _picture(skipped, convert)
                image = _picture(frame, convert)
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


def _picture(frame: av.VideoFrame, convert: Callable[[av.VideoFrame], Any] | None) -> Any:
    if convert is not None:
        return convert(frame)
    return upright(frame_to_rgb(frame), normalise_rotation(frame.rotation))


def _first_frame_time(container: av.container.InputContainer,
                      stream: av.video.stream.VideoStream) -> float | None:
    """The first frame's time: frame k is this plus k / fps (then rewinds the file)."""
    for frame in container.decode(stream):
        container.seek(0, backward=True, any_frame=False, stream=stream)
        return frame.time
    return None


def iter_frames_looped(info: VideoInfo, indices: Iterator[int],
                       convert: Callable[[av.VideoFrame], Any] | None = None) -> Iterator[Any]:
    """Frames for a sequence of source indices that mostly moves forwards: a jump back
    (loop mode) or far ahead (a segment's start) restarts the decoder at the frame wanted,
    so memory stays flat and nothing is decoded twice needlessly."""
    source: Iterator[Any] = iter(())
    position = -1 << 62  # nothing decoded yet
    current: Any = None
    for wanted in indices:
        if wanted < position or wanted - position > SEEK_AFTER_FRAMES:
            source = iter_frames(info, start=wanted, convert=convert)
            position = wanted - 1
        while position < wanted:
            current = next(source)
            position += 1
        assert current is not None
        yield current

