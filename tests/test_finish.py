"""The encode stage's whole-file FFmpeg work: the picture is stream-copied (bit-identical
packets), the sound is brought to EBU R128 loudness when asked, the container is the one
asked for, and nothing half-written is left on failure."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import av
import imageio_ffmpeg
import pytest

from lipdub.media.finish import FinishError, finish


def _loudness_lufs(path: Path) -> float:
    run = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-nostats", "-i", str(path), "-af",
                          "ebur128", "-f", "null", "-"], capture_output=True, text=True)
    return float(re.findall(r"I:\s+(-?[\d.]+) LUFS", run.stderr)[-1])


def _video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(video=0) if p.size]


def test_picture_copied_sound_normalised_container_as_asked(talking_clip: Path,
                                                            tmp_path: Path) -> None:
    quiet = tmp_path / "quiet.mp4"  # the same clip, 10 dB down
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(talking_clip),
                    "-c:v", "copy", "-af", "volume=-10dB", "-c:a", "aac", str(quiet)],
                   check=True)
    talking_clip = quiet
    out = tmp_path / "out.mkv"
    finish(talking_clip, out, "mkv", normalise_loudness=True)
    with av.open(str(out)) as container:
        assert container.format.name.startswith("matroska")
    assert _video_packets(out) == _video_packets(talking_clip)  # untouched picture
    before, after = _loudness_lufs(talking_clip), _loudness_lufs(out)
    assert abs(after - (-23)) < 1.0 and abs(before - (-23)) > 5.0, (before, after)
    plain = tmp_path / "plain.mov"
    finish(talking_clip, plain, "mov")
    assert abs(_loudness_lufs(plain) - before) < 0.2  # untouched sound when not asked


def test_bad_format_or_input_fails_cleanly(tmp_path: Path) -> None:
    with pytest.raises(FinishError, match="'avi' is not supported"):
        finish(tmp_path / "x.mp4", tmp_path / "o.avi", "avi")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    with pytest.raises(FinishError, match="FFmpeg could not finish"):
        finish(broken, tmp_path / "o.mp4", "mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]  # nothing partial
