"""Helpers the tests share: read back what the platform wrote, measure mouths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from lipdub.audio.load import load_mono_16k
from lipdub.engines.warp.landmarks import LandmarkTracker
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video


@dataclass(frozen=True)
class Output:
    frames: int
    fps: float
    width: int
    height: int
    video_seconds: float
    audio_seconds: float
    audio_codec: str
    video_codec: str
    pix_fmt: str


def inspect_output(path: Path) -> Output:
    """Counts every decoded frame (not the header's estimate) and the audio's real length."""
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        fps = float(v.average_rate)
        frames = sum(1 for _ in container.decode(v))
    with av.open(str(path)) as container:
        a = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(a))
        rate = a.codec_context.sample_rate
        audio_codec = a.codec_context.name
    with av.open(str(path)) as container:
        v = container.streams.video[0]
        return Output(frames=frames, fps=fps, width=v.codec_context.width,
                      height=v.codec_context.height, video_seconds=frames / fps,
                      audio_seconds=samples / rate, audio_codec=audio_codec,
                      video_codec=v.codec_context.name, pix_fmt=v.codec_context.pix_fmt)


def read_frames(path: Path) -> list[np.ndarray]:
    return list(iter_frames(probe_video(path)))


def mouth_openness(path: Path, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Inner-lip gap / eye distance per frame, measured with Face Mesh on the file itself
    (within `box` when given: Face Mesh needs help to find small faces)."""
    tracker = LandmarkTracker(smoothing=0.0, static=True)
    values = []
    for frame in read_frames(path):
        h, w = frame.shape[:2]
        shape = tracker.measure(frame, box or (0, 0, w, h))
        values.append(np.nan if shape is None else shape.lip_gap() / shape.eye_distance)
    tracker.close()
    return np.array(values)


def loudness_envelope(audio_path: Path, fps: float, frames: int) -> np.ndarray:
    """RMS level (dB) of each video frame's span of the track: an independent measure."""
    samples = load_mono_16k(audio_path)
    hop = 16_000 / fps
    out = np.full(frames, -100.0)
    for k in range(frames):
        chunk = samples[int(k * hop) : int((k + 1) * hop)]
        if len(chunk):
            out[k] = 20 * np.log10(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)) + 1e-5)
    return out


def best_lag_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 2) -> float:
    best = -1.0
    for lag in range(-max_lag, max_lag + 1):
        x, y = (a[lag:], b[: len(b) - lag]) if lag >= 0 else (a[:lag], b[-lag:])
        ok = ~(np.isnan(x) | np.isnan(y))
        if ok.sum() > 10:
            best = max(best, float(np.corrcoef(x[ok], y[ok])[0, 1]))
    return best


def write_video(path: Path, frames: list[np.ndarray], *, fps: int = 25, codec: str = "libx264",
                pix_fmt: str = "yuv420p", display_rotation: int = 0,
                pts_ms: list[int] | None = None) -> Path:
    """A video-only file written directly with PyAV (rotation metadata, VFR timestamps,
    other codecs and bit depths), for the decoder's edge cases."""
    from fractions import Fraction

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = pix_fmt
        if display_rotation:
            stream.set_display_rotation(display_rotation)
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], Fraction(1, 1000)
            else:
                frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def ffmpeg_decode(path: Path, width: int, height: int) -> np.ndarray:
    """Decode with the ffmpeg program (autorotate on): an independent reference."""
    import subprocess

    import imageio_ffmpeg

    raw = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo",
         "-pix_fmt", "rgb24", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)
