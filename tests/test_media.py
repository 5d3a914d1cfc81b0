"""Decoding edge cases: rotation metadata, variable frame rate, odd sizes, 10-bit sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lipdub.errors import (
    CorruptMediaError,
    EmptyMediaError,
    InputNotFoundError,
    NoAudioStreamError,
    NotMediaError,
    NoVideoStreamError,
)
from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_audio, probe_video
from tests.media_helpers import ffmpeg_decode, read_frames, write_video


def _numbered_frames(n: int, height: int = 96, width: int = 160) -> list[np.ndarray]:
    """Frame i is a flat grey of level 8 * i with a white block top-left (shows orientation)."""
    frames = []
    for i in range(n):
        image = np.full((height, width, 3), 8 * i + 20, dtype=np.uint8)
        image[:20, :40] = 255
        frames.append(image)
    return frames


def test_rotated_phone_footage_decodes_upright_like_ffmpeg(tmp_path: Path) -> None:
    upright = _numbered_frames(6)
    stored = [np.ascontiguousarray(np.rot90(f, k=1)) for f in upright]
    path = write_video(tmp_path / "phone.mp4", stored, display_rotation=-90)
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (160, 96, 90)
    ours = np.stack(read_frames(path))
    reference = ffmpeg_decode(path, 160, 96)
    assert ours.shape == reference.shape == (6, 96, 160, 3)
    assert np.abs(ours.astype(int) - reference).mean() < 1.0
    assert ours[0, :20, :40].mean() > 200  # the marker is top-left again


def test_variable_frame_rate_is_resampled_to_the_average_rate(tmp_path: Path) -> None:
    # 25 frames over 1 s with irregular spacing (gaps and bursts).
    pts = [0, 30, 50, 120, 160, 170, 200, 280, 300, 330, 360, 440, 480, 500, 520, 600, 640,
           650, 700, 760, 800, 850, 880, 920, 960]
    path = write_video(tmp_path / "vfr.mp4", _numbered_frames(len(pts)), pts_ms=pts)
    info = probe_video(path)
    frames = read_frames(path)
    assert len(frames) == info.frame_count
    fps = float(info.fps)
    levels = [int(round((f[50:, 80:].mean() - 20) / 8)) for f in frames]
    for k, level in enumerate(levels):
        # Output frame k shows the source frame on screen at time k / fps (within half a frame).
        t = 1000 * k / fps
        shown = max(i for i, p in enumerate(pts) if p <= t + 500 / fps)
        assert level in (shown, shown - 1), (k, level, shown)
    assert levels == sorted(levels)  # time never runs backwards


def test_odd_sized_source_decodes(tmp_path: Path) -> None:
    odd = write_video(tmp_path / "odd.mp4", _numbered_frames(5, 95, 161), pix_fmt="yuv444p")
    info = probe_video(odd)
    assert (info.width, info.height) == (161, 95)
    frames = read_frames(odd)
    assert len(frames) == 5 and frames[0].shape == (95, 161, 3)


def test_10_bit_source_decodes_to_8_bit_rgb(tmp_path: Path) -> None:
    deep = write_video(tmp_path / "deep.mov", _numbered_frames(5), codec="prores",
                       pix_fmt="yuv422p10le")
    info = probe_video(deep)
    assert "10" in info.pix_fmt
    frames = read_frames(deep)
    assert len(frames) == 5 and frames[0].dtype == np.uint8
    assert abs(float(frames[3][50:, 80:].mean()) - (8 * 3 + 20)) < 3


def test_bad_inputs_raise_specific_errors(tmp_path: Path, talking_clip: Path,
                                          new_voice: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        probe_video(tmp_path / "nope.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(EmptyMediaError, match="empty"):
        probe_video(tmp_path / "empty.mp4")
    (tmp_path / "notes.mp4").write_text("these are my notes, not a video\n" * 50)
    with pytest.raises(NotMediaError, match="could not be read as media"):
        probe_video(tmp_path / "notes.mp4")
    with pytest.raises(NoVideoStreamError, match="no video stream"):
        probe_video(new_voice)
    video_only = write_video(tmp_path / "silent.mp4", _numbered_frames(3))
    with pytest.raises(NoAudioStreamError, match="no audio stream"):
        probe_audio(video_only)
    data = talking_clip.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises((CorruptMediaError, NotMediaError)):
        list(iter_frames(probe_video(truncated)))
