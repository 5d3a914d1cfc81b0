"""Encode + mux: H.264 (yuv420p) video and AAC audio in MP4, written atomically.

The writer streams: each video frame is followed by the audio up to that frame's end time,
so packets interleave and nothing accumulates in memory.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from lipdub.audio.load import iter_audio
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
        sound: SoundFeed | None,
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
            if sound is not None:
                sound.stop()  # handed over for this output, which will not be
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
        self._sound = sound
        if sound is not None:
            sound.add_to(self._container)

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
            self._sound.until(frame_count / self.fps)

    def close(self) -> None:
        try:
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
        if self._sound is not None:
            self._sound.stop()
        with contextlib.suppress(Exception):
            self._container.close()
        self._tmp.unlink(missing_ok=True)


class SoundFeed:
    """A track's sample chunks encoded on a thread of its own, then muxed into an output
    in step with its picture so packets interleave: `until(t)` muxes the sound up to t
    seconds. The track is cut or padded with silence to `seconds` (the sync mode decided
    the length, not the track).

    Its own thread, and its own encoder (the output's stream is made from its template),
    so that it can start before the output exists: a dub starts it before its analysis
    pass, whose thread leaves part of a core idle, and the render's thread, a dub's
    bottleneck, no longer encodes sound (on two cores at 720p it spent 1.0 of its 8 s
    on AAC: benchmarks/RESULTS.md). It runs at most `lead` seconds ahead of the picture,
    so a film's sound is never held whole."""

    def __init__(self, chunks: Iterator[np.ndarray], seconds: Fraction | float, codec: str,
                 rate: int, layout: str, bit_rate: int | None = None,
                 lead: float = 10.0) -> None:
        # A null muxer's stream: an encoder whose parameters (extradata, priming) a real
        # output's stream copies. Its header opens the encoder here, on this thread.
        self._encoder_home = av.open(io.BytesIO(), mode="w", format="null")
        self._encoder = self._encoder_home.add_stream(codec, rate=rate)
        self._encoder.layout = layout
        if bit_rate is not None:
            self._encoder.bit_rate = bit_rate
        self._encoder_home.start_encoding()
        self._rate = rate
        self._total = round(seconds * rate)
        self._lead = round(lead * rate)
        self._wanted = 0  # samples the picture has reached
        self._encoded = 0  # samples handed to the encoder
        self._done = False
        self._error: BaseException | None = None
        self._stopped = self._closed = False
        self._packets: deque[av.Packet] = deque()
        self._changed = threading.Condition()
        self._output: tuple[av.container.OutputContainer, av.stream.Stream] | None = None
        self._thread = threading.Thread(target=self._encode_all, args=(chunks,),
                                        name="lipdub-sound", daemon=True)
        self._thread.start()

    def add_to(self, container: av.container.OutputContainer,
               language: str | None = None) -> av.stream.Stream:
        """The output stream this sound is muxed into (added before its header)."""
        stream = container.add_stream_from_template(self._encoder)
        if language:
            stream.metadata["language"] = language
        self._output = (container, stream)
        return stream

    def until(self, seconds: Fraction | float) -> None:
        self._mux_through(min(round(seconds * self._rate), self._total))

    def flush(self) -> None:
        """The rest of the track, the encoder's last packets included."""
        self._mux_through(None)
        self.stop()

    def stop(self) -> None:
        """Stop encoding (at the end, or when the output is being thrown away)."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        self._thread.join()
        if not self._closed:
            self._closed = True
            self._encoder_home.close()

    def _mux_through(self, target: int | None) -> None:
        assert self._output is not None, "add_to() an output first"
        with self._changed:
            self._wanted = self._total if target is None else max(self._wanted, target)
            self._changed.notify_all()
            self._changed.wait_for(lambda: self._done or self._stopped or (
                target is not None and self._encoded >= target))
            if self._error is not None:
                raise self._error
            ready = []
            while self._packets and (target is None or self._packets[0].pts < target):
                ready.append(self._packets.popleft())
        container, stream = self._output
        for packet in ready:  # outside the lock: the encoder thread goes on meanwhile
            packet.stream = stream
            container.mux(packet)

    def _encode_all(self, chunks: Iterator[np.ndarray] | None) -> None:
        try:
            channels = self._encoder.layout.nb_channels
            while self._encoded < self._total:
                with self._changed:
                    self._changed.wait_for(lambda: self._stopped
                                           or self._encoded < self._wanted + self._lead)
                    if self._stopped:
                        return
                chunk = next(chunks, None) if chunks is not None else None
                if chunk is None:  # past the track's end: silence, a second at a time
                    chunks = None
                    chunk = np.zeros((channels, self._rate), np.float32)
                elif chunk.shape[1] == 0:
                    continue  # an empty chunk: an encoder refuses a frame of no samples
                self._encode(chunk[:, :self._total - self._encoded])
            self._encode(None)
            with self._changed:
                self._done = True
                self._changed.notify_all()
        except BaseException as exc:  # handed to the caller's thread, raised there
            with self._changed:
                self._error, self._done = exc, True
                self._changed.notify_all()
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # a generator holding its input open

    def _encode(self, samples: np.ndarray | None) -> None:
        frame = None
        if samples is not None:
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp",
                                               layout=self._encoder.layout.name)
            frame.sample_rate, frame.pts = self._rate, self._encoded
            frame.time_base = Fraction(1, self._rate)
        packets = list(self._encoder.encode(frame))
        with self._changed:
            self._packets.extend(packets)
            self._encoded += 0 if samples is None else samples.shape[1]
            self._changed.notify_all()


def aac_sound(chunks: Iterator[np.ndarray], seconds: Fraction | float) -> SoundFeed:
    """(2, n) float32 chunks at AUDIO_RATE as the delivery output's sound: 192 kb/s stereo
    AAC, two minutes ahead at most (about 3 MB)."""
    return SoundFeed(chunks, seconds, "aac", AUDIO_RATE, "stereo", bit_rate=192_000,
                     lead=120.0)


def delivery_sound(sound: Path, seconds: Fraction | float) -> SoundFeed:
    """A sound file as the delivery output's sound."""
    return aac_sound(iter_audio(sound, AUDIO_RATE, "stereo"), seconds)
