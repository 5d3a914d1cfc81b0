"""Encode + mux: H.264 (yuv420p) video and AAC audio in MP4, written atomically.

The writer streams: each video frame is followed by the audio up to that frame's end time,
so packets interleave and nothing accumulates in memory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from lipdub.errors import OutputNotWritableError
from lipdub.media.colour import rgb_to_frame

AUDIO_RATE = 48_000


DELIVERY_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")


def check_output_writable(output: Path, suffixes: tuple[str, ...] = DELIVERY_SUFFIXES) -> None:
    """Fail before any work if the output cannot be created."""
    parent = output.parent if str(output.parent) else Path(".")
    if output.is_dir():
        raise OutputNotWritableError(
            f"Output path '{output}' is a directory.", "Give a file name such as out.mp4."
        )
    if not parent.is_dir():
        raise OutputNotWritableError(
            f"Output folder '{parent}' does not exist.", "Create it first or choose another path."
        )
    if not os.access(parent, os.W_OK):
        raise OutputNotWritableError(
            f"Output folder '{parent}' is not writable.", "Choose a folder you can write to."
        )
    if output.suffix.lower() not in suffixes:
        raise OutputNotWritableError(
            f"Output '{output}' has an unsupported extension '{output.suffix}'.",
            "Use " + (f"{', '.join(suffixes[:-1])} or " if len(suffixes) > 1 else "")
            + suffixes[-1] + (" (.mp4 is the default)." if ".mp4" in suffixes else "."),
        )


def temp_path_for(output: Path) -> Path:
    # Same folder, so the final rename is atomic; keeps the extension for the muxer.
    return output.with_name(f".{output.stem}.{os.getpid()}.partial{output.suffix}")


class DubWriter:
    """Writes frames and the new audio track; `close()` moves the file into place."""

    def __init__(
        self,
        output: Path,
        width: int,
        height: int,
        fps: Fraction,
        audio_chunks: Iterator[np.ndarray] | None,
        total_frames: int,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        self.output = output
        self.fps = fps
        self.total_frames = total_frames
        self.frames_written = 0
        self._tmp = temp_path_for(output)
        # yuv420p needs even sizes: odd sources get one replicated edge row/column.
        self._pad = (height % 2, width % 2)
        try:
            self._container = av.open(str(self._tmp), mode="w")
        except (OSError, av.error.FFmpegError) as exc:
            raise OutputNotWritableError(
                f"Cannot write '{output}': {exc}.", "Choose a folder you can write to."
            ) from exc
        self._video = self._container.add_stream("libx264", rate=fps)
        self._video.width = width + self._pad[1]
        self._video.height = height + self._pad[0]
        self._video.pix_fmt = "yuv420p"
        self._video.options = {"crf": str(crf), "preset": preset}
        # Frame threads: x264 encodes while the caller prepares the next frames (slice
        # threads, PyAV's default, make each call wait): 200 720p frames 1.59 -> 1.33 s.
        # One per core, not x264's 1.5 per core: each holds frames in flight. On 2 cores
        # at 1080p the third thread raised a segment worker's peak by 32 MB (647 -> 679
        # MiB over ten segments) for 8% of the encoder's own speed.
        self._video.thread_type = "FRAME"
        self._video.codec_context.thread_count = len(os.sched_getaffinity(0))
        self._video.codec_context.time_base = Fraction(1) / fps
        self._audio = None
        self._sound: SoundFeed | None = None
        if audio_chunks is not None:
            self._audio = self._container.add_stream("aac", rate=AUDIO_RATE)
            self._audio.layout = "stereo"
            self._audio.bit_rate = 192_000
            self._sound = SoundFeed(self._container, self._audio, audio_chunks)

    def __enter__(self) -> DubWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, rgb: np.ndarray) -> None:
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = rgb_to_frame(np.ascontiguousarray(rgb))
        frame.pts = self.frames_written
        frame.time_base = Fraction(1) / self.fps
        for packet in self._video.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1
        self._write_audio_until(self.frames_written)

    def _write_audio_until(self, frame_count: int) -> None:
        if self._sound is not None:
            self._sound.until(min(frame_count, self.total_frames) / self.fps)

    def close(self) -> None:
        try:
            self._write_audio_until(self.total_frames)
            for packet in self._video.encode(None):
                self._container.mux(packet)
            if self._sound is not None:
                self._sound.flush()
            self._container.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self._tmp, self.output)

    def abort(self) -> None:
        # Already failing: the temp file goes whether or not the container closes cleanly.
        with contextlib.suppress(Exception):
            self._container.close()
        self._tmp.unlink(missing_ok=True)


class SoundFeed:
    """A track's sample chunks encoded in step with the picture, so the muxer interleaves
    them: `until(t)` encodes up to t seconds. Past the chunks' end it is silence (the sync
    mode decided the length, not the track)."""

    def __init__(self, container: av.container.OutputContainer, stream: av.AudioStream,
                 chunks: Iterator[np.ndarray]) -> None:
        self._container, self._stream = container, stream
        self._chunks: Iterator[np.ndarray] | None = chunks
        self._pending = np.zeros((stream.layout.nb_channels, 0), np.float32)
        self._written = 0

    def until(self, seconds: Fraction | float) -> None:
        target = round(seconds * self._stream.rate)
        while self._written + self._pending.shape[1] < target:
            chunk = next(self._chunks, None) if self._chunks is not None else None
            if chunk is None:
                chunk = np.zeros((self._pending.shape[0],
                                  target - self._written - self._pending.shape[1]), np.float32)
                self._chunks = None
            self._pending = np.concatenate([self._pending, chunk], axis=1)
        take = target - self._written
        if take <= 0:
            return
        samples, self._pending = self._pending[:, :take], self._pending[:, take:]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp",
                                           layout=self._stream.layout.name)
        frame.sample_rate, frame.pts = self._stream.rate, self._written
        frame.time_base = Fraction(1, self._stream.rate)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._written += take

    def flush(self) -> None:
        for packet in self._stream.encode(None):
            self._container.mux(packet)
