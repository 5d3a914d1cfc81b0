"""What can be wrong with a dub's files, checked first: before any face or lip-sync model
loads (seconds, and their log lines), a missing, empty or broken input and an output that
cannot be written are reported. Light on purpose: PyAV only."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lipdub.media.encode import DELIVERY_SUFFIXES, check_output_writable
from lipdub.media.formats import check_progressive, read_format
from lipdub.media.probe import VideoInfo, probe_audio, probe_video


def check_dub_files(video: Path, audio: Path | None, output: Path,
                    more_audio: Iterable[Path] = (),
                    suffixes: tuple[str, ...] = DELIVERY_SUFFIXES) -> VideoInfo:
    """`audio` None: a dub whose sound is made from other lines (`more_audio`: a cast's,
    or ranges' own). `suffixes`: the output's allowed extensions (a master's differ)."""
    check_output_writable(output, suffixes)
    info = probe_video(video)
    check_progressive(video, read_format(video))
    for sound in [audio] if audio is not None else []:
        probe_audio(sound)  # fails with its own message if there is no audio track
    for line in more_audio:
        probe_audio(line)
    return info
