"""What can be wrong with a dub's files, checked first: before any face or lip-sync model
loads (seconds, and their log lines), a missing, empty or broken input and an output that
cannot be written are reported. Light on purpose: PyAV only."""

from __future__ import annotations

from pathlib import Path

from lipdub.media.encode import check_output_writable
from lipdub.media.probe import VideoInfo, probe_audio, probe_video


def check_dub_files(video: Path, audio: Path, output: Path) -> VideoInfo:
    check_output_writable(output)
    info = probe_video(video)
    probe_audio(audio)  # fails with its own message if there is no audio track
    return info
