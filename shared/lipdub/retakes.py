"""Re-takes: a range with its own line, heard and lip-synced from the range's start in
place of what the sound track held there (whole-file FFmpeg work: the sound track with
the line laid in, the bed under it faded out and back over a few milliseconds, so that no
click marks the edit)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ffmpeg

from lipdub.errors import BadOptionError
from lipdub.media.finish import write_flac
from lipdub.media.probe import VideoInfo
from lipdub.ranges import FrameRange

FADE_S = 0.02


def retakes(ranges: list[FrameRange] | None,
            character: str | None = None) -> list[FrameRange]:
    """The ranges with their own line (for one character of a cast, when given)."""
    return [r for r in ranges or [] if r.audio is not None
            and (character is None or r.character == character)]


@contextmanager
def dub_sound(audio: Path | None, info: VideoInfo,
              ranges: list[FrameRange] | None) -> Iterator[Path]:
    """A dub's sound: `audio` with the ranges' own lines laid in (in a temporary file,
    removed after), or `audio` itself when no range has a line of its own."""
    lines = retakes(ranges)
    if not lines:
        if audio is None:
            raise BadOptionError("No new audio was given.",
                                 "Give the new audio, or ranges with their own lines.")
        yield audio
        return
    with tempfile.TemporaryDirectory(prefix="lipdub-retakes-") as folder:
        yield splice(audio, info, lines, Path(folder) / "sound.flac")


def splice(bed: Path | None, info: VideoInfo, lines: list[FrameRange], output: Path) -> Path:
    """`bed` (default: the video's own sound, or silence) with each range's line in its
    range, cut at the range's end. Written atomically, as FLAC; returns `output`."""
    fps = float(info.fps)
    if bed is not None:
        sound = ffmpeg.input(str(bed)).audio
    elif info.has_audio:
        sound = ffmpeg.input(str(info.path)).audio
    else:
        sound = ffmpeg.input(f"anullsrc=r=48000:cl=stereo:d={info.duration_s:.6f}",
                             f="lavfi").audio
    inside = "*".join(f"(1-clip((t-{r.start / fps:.6f})/{FADE_S},0,1)"
                      f"*clip(({r.stop / fps:.6f}-t)/{FADE_S},0,1))" for r in lines)
    if inside:
        sound = sound.filter("volume", volume=inside, eval="frame")
    clips = [ffmpeg.input(str(r.audio)).audio
             .filter("atrim", duration=(r.stop - r.start) / fps)
             .filter("afade", t="out", st=max(0.0, (r.stop - r.start) / fps - FADE_S),
                     d=FADE_S)
             .filter("adelay", delays=round(r.start / fps * 1000), all=1) for r in lines]
    mixed = ffmpeg.filter([sound, *clips], "amix", inputs=1 + len(clips),
                          duration="first", normalize=0) if clips else sound
    write_flac(mixed, output)
    return output
