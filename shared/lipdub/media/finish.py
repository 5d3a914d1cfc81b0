"""Whole-file FFmpeg work on a finished dub (ffmpeg-python, driving the ffmpeg binary that
ships in the imageio-ffmpeg wheel): the picture stream-copied untouched, the sound optionally
loudness-normalised (EBU R128), into the delivery container. Written atomically."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import ffmpeg
import imageio_ffmpeg

from lipdub.errors import LipDubError

CONTAINERS = {"mp4": "mp4", "mov": "mov", "mkv": "matroska"}
# EBU R128 broadcast delivery: -23 LUFS integrated, -1 dBTP true peak.
LOUDNESS = {"I": -23, "TP": -1, "LRA": 11}


class FinishError(LipDubError):
    code = "encode_failed"


def finish(source: Path, output: Path, container: str = "mp4",
           normalise_loudness: bool = False) -> None:
    if container not in CONTAINERS:
        raise FinishError(f"Output format '{container}' is not supported.",
                          f"Use one of: {', '.join(CONTAINERS)}.")
    stream = ffmpeg.input(str(source))
    audio = stream.audio
    if normalise_loudness:  # two passes: measure, then one linear gain (no pumping)
        audio = audio.filter("loudnorm", **LOUDNESS, **_measure(source), linear="true")
    audio_codec = {"acodec": "aac", "audio_bitrate": "192k", "ar": 48_000} \
        if normalise_loudness else {"acodec": "copy"}
    extra = {"movflags": "+faststart"} if container in ("mp4", "mov") else {}
    _run_to(output, lambda partial: ffmpeg.output(
        stream.video, audio, str(partial), vcodec="copy", f=CONTAINERS[container],
        **audio_codec, **extra))


def _run_to(output: Path, job: Callable[[Path], ffmpeg.nodes.OutputStream]) -> None:
    """Run the FFmpeg job `job(partial)` writing a partial file, moved into place only
    on success: a reader never finds half a file."""
    partial = output.with_name(f".{output.name}.partial")
    try:
        job(partial).run(cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True,
                         quiet=True)
        partial.replace(output)
    except ffmpeg.Error as exc:
        raise _failed(exc) from exc
    finally:
        partial.unlink(missing_ok=True)


def _measure(source: Path) -> dict[str, str]:
    """loudnorm's first pass: the track's measured loudness, for the linear second pass."""
    job = ffmpeg.input(str(source)).audio.filter("loudnorm", **LOUDNESS, print_format="json")
    try:
        _, err = ffmpeg.output(job, "-", f="null").run(
            cmd=imageio_ffmpeg.get_ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        raise _failed(exc) from exc
    text = err.decode(errors="replace")
    stats = json.loads(text[text.rindex("{"):text.rindex("}") + 1])
    return {"measured_I": stats["input_i"], "measured_TP": stats["input_tp"],
            "measured_LRA": stats["input_lra"], "measured_thresh": stats["input_thresh"],
            "offset": stats["target_offset"]}


def _failed(exc: ffmpeg.Error) -> FinishError:
    tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
    return FinishError(f"FFmpeg could not finish the dub: {' / '.join(tail)}",
                       "Report this with the job id.")


def mix_lines(lines: list[Path], output: Path) -> None:
    """A cast's lines summed into one track (each character's stem as recorded: no
    level scaling, so a line sounds the same mixed as alone), as long as the longest."""
    inputs = [ffmpeg.input(str(line)).audio for line in lines]
    write_flac(ffmpeg.filter(inputs, "amix", inputs=len(inputs), duration="longest",
                             normalize=0) if len(inputs) > 1 else inputs[0], output)


def write_flac(sound, output: Path) -> None:  # noqa: ANN001 - an ffmpeg-python stream
    """An FFmpeg sound graph written to `output` atomically, as FLAC (lossless: the
    dub's own encode stays the one lossy step)."""
    _run_to(output, lambda partial: ffmpeg.output(sound, str(partial), acodec="flac",
                                                  f="flac"))


def review_copy(master: Path, dialogue_stream: int, output: Path) -> None:
    """The delivery's H.264/AAC MP4 made from a rendered master, not from a second dub:
    its picture, with its new dialogue stream. Written atomically."""
    source = ffmpeg.input(str(master))
    _run_to(output, lambda partial: ffmpeg.output(
        source.video, source[f"a:{dialogue_stream}"], str(partial), vcodec="libx264",
        crf=18, preset="veryfast", pix_fmt="yuv420p", acodec="aac", audio_bitrate="192k",
        ar=48_000, ac=2, f="mp4", movflags="+faststart"))
