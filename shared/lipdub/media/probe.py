"""Probe a media file: what streams it has, and the facts the pipeline needs about them."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from lipdub.errors import (
    CorruptMediaError,
    EmptyMediaError,
    InputNotFoundError,
    NoAudioStreamError,
    NotMediaError,
    NoVideoStreamError,
)


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # as displayed, i.e. after rotation
    height: int
    fps: Fraction  # the stream's average rate; output is constant-rate at this rate
    frame_count: int  # estimated at the constant output rate
    duration_s: float
    rotation: int  # degrees the decoded picture must be turned to display upright
    codec: str
    pix_fmt: str
    has_audio: bool


@dataclass(frozen=True)
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    duration_s: float
    codec: str


def open_media(path: Path | str) -> av.container.InputContainer:
    """Open a file for reading, turning FFmpeg's failures into errors a user can act on."""
    p = Path(path)
    if not p.exists():
        raise InputNotFoundError(f"'{p}' does not exist.", "Check the path and try again.")
    if not p.is_file():
        raise InputNotFoundError(f"'{p}' is not a file.", "Give the path of a media file.")
    if p.stat().st_size == 0:
        raise EmptyMediaError(f"'{p}' is empty (0 bytes).", "Give a file that holds media.")
    try:
        return av.open(str(p), mode="r")
    except av.error.InvalidDataError as exc:
        raise NotMediaError(
            f"'{p}' could not be read as media: it is not a media file, or it is truncated "
            f"or damaged (FFmpeg: {exc.strerror}).",
            "Give a complete video or audio file (mp4, mov, mkv, wav, ...).",
        ) from exc
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(
            f"'{p}' could not be opened: {exc}.", "Re-export or re-download the file."
        ) from exc


def _duration_s(container: av.container.InputContainer, stream: av.stream.Stream) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return 0.0


def probe_video(path: Path | str) -> VideoInfo:
    with open_media(path) as container:
        if not container.streams.video:
            raise NoVideoStreamError(
                f"'{path}' has no video stream.", "Give a video file with the face footage."
            )
        stream = container.streams.video[0]
        ctx = stream.codec_context
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not fps or fps <= 0:
            raise CorruptMediaError(
                f"'{path}' has a video stream with no usable frame rate.",
                "Re-encode it at a fixed frame rate (e.g. ffmpeg -r 25).",
            )
        duration = _duration_s(container, stream)
        frame_count = round(duration * fps) if duration > 0 else int(stream.frames or 0)
        width, height = ctx.width, ctx.height
        rotation = first_frame_rotation(container, stream)
        if rotation in (90, 270):
            width, height = height, width
        return VideoInfo(
            path=Path(path),
            width=width,
            height=height,
            fps=Fraction(fps),
            frame_count=frame_count,
            duration_s=duration,
            rotation=rotation,
            codec=ctx.name,
            pix_fmt=ctx.pix_fmt or "unknown",
            has_audio=bool(container.streams.audio),
        )


def first_frame_rotation(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> int:
    """Decode one frame to read its display rotation (PyAV exposes it per frame)."""
    try:
        for frame in container.decode(stream):
            return normalise_rotation(frame.rotation)
    except av.error.FFmpegError as exc:
        raise CorruptMediaError(
            f"'{container.name}' could not be decoded: {exc}.",
            "The file may be truncated or damaged; re-export it.",
        ) from exc
    raise EmptyMediaError(
        f"'{container.name}' has a video stream with no frames.", "Give a video with footage."
    )


def normalise_rotation(degrees_ccw: float) -> int:
    """PyAV reports the display matrix angle counter-clockwise; return the clockwise turn
    (0, 90, 180 or 270) that makes the picture upright."""
    return int(round(-degrees_ccw / 90.0)) % 4 * 90


def first_audio_stream(container: av.container.InputContainer,
                       path: Path | str) -> av.audio.stream.AudioStream:
    if not container.streams.audio:
        raise NoAudioStreamError(
            f"'{path}' has no audio stream.", "Give a file with the new voice track."
        )
    return container.streams.audio[0]


def probe_audio(path: Path | str) -> AudioInfo:
    with open_media(path) as container:
        stream = first_audio_stream(container, path)
        ctx = stream.codec_context
        return AudioInfo(
            path=Path(path),
            sample_rate=ctx.sample_rate,
            channels=ctx.channels,
            duration_s=_duration_s(container, stream),
            codec=ctx.name,
        )
