"""A dub of several characters at once: the scene analysed once, the faces cast to the
characters, each face dubbed with its own character's line in one render pass, and the
output sounding like the full mix the user gives (or the lines mixed)."""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

import numpy as np

from lipdub.audio.samples import decoded_samples
from lipdub.blend import BlendMode
from lipdub.cast import MAX_CHARACTERS, Casting, Character, cast_characters
from lipdub.casting import line_activity
from lipdub.engines.base import LipSyncEngine
from lipdub.errors import BadOptionError
from lipdub.media.checks import check_dub_files
from lipdub.media.finish import mix_lines
from lipdub.media.probe import VideoInfo, probe_audio
from lipdub.outputs import Delivery, Output
from lipdub.pipeline import DubReport, Performer, render_cast, study_faces
from lipdub.progress import NullProgress, ProgressSink, StageClock
from lipdub.qc.thresholds import QCThresholds
from lipdub.ranges import FrameRange
from lipdub.retakes import retakes, splice
from lipdub.scene import Scene, analyse_scene
from lipdub.sync import SyncMode


def check_cast(characters: list[Character]) -> None:
    """What can be told without the video: names, their count, every line readable."""
    if not characters:
        raise BadOptionError("The cast is empty.", "Give at least one character.")
    if len(characters) > MAX_CHARACTERS:
        raise BadOptionError(f"The cast has {len(characters)} characters.",
                             f"Give at most {MAX_CHARACTERS} per job.")
    seen: set[str] = set()
    for i, character in enumerate(characters):
        if not character.name or character.name in seen:
            raise BadOptionError(f"cast[{i}].character '{character.name}' is empty or "
                                 "given twice.", "Give each character its own name.")
        seen.add(character.name)
        probe_audio(character.line)  # missing, unreadable or silent: said now, by name
        if character.original is not None:
            probe_audio(character.original)


def cast_scene(scene: Scene, characters: list[Character]) -> Casting:
    """Who plays whom, from the scene's analysis and the characters' lines."""
    for i, character in enumerate(characters):
        if character.face is None and scene.level_db is None:
            raise BadOptionError(
                f"cast[{i}] ('{character.name}') is to be found automatically, but the "
                "video has no sound to tell who is speaking.",
                "Give their face as a point or a box on a frame.")
    frames = len(scene.people.shot)
    lines: dict[str, np.ndarray] = {}
    for character in characters:
        # A dub keeps each line where it was said: the original line finds the face best,
        # and the new one stands in for it when it is not given.
        with decoded_samples(character.original or character.line) as samples:
            lines[character.name] = line_activity(samples, scene.fps, frames)
    return cast_characters(scene.people, scene.speaking(), characters, lines)


def dub_cast(video: Path, characters: list[Character], output: Path,
             engines: list[LipSyncEngine], mix: Path | None = None,
             sync_mode: SyncMode = SyncMode.CUT_OFF, detect_every: int = 5,
             progress: ProgressSink | None = None,
             ranges: list[FrameRange] | None = None,
             scene: Scene | None = None,
             out: Output | None = None,
             qc: QCThresholds | None = None,
             blend: BlendMode = BlendMode.STANDARD) -> tuple[DubReport, Casting, Scene]:
    """The whole cast dub in one call; one engine per character, in cast order. `scene`:
    a stored analysis of this video (an editor's corrected cast re-uses it); `out`: the
    output profile's plan (a delivery when None)."""
    progress = progress or NullProgress()
    started = time.perf_counter()
    check_cast(characters)
    with tempfile.TemporaryDirectory(prefix="lipdub-cast-") as folder:
        info = check_dub_files(video, mix, output, [r.audio for r in retakes(ranges)],
                               (out or Delivery()).suffixes)
        characters = with_retakes(characters, info, ranges, Path(folder))
        sound = cast_sound(characters, mix, info, ranges, Path(folder) / "mix.flac")
        clock = StageClock()
        with clock.time("faces", frames=info.frame_count if scene is None else 0):
            scene = scene or analyse_scene(info, detect_every, progress)
        with clock.time("casting", frames=info.frame_count):
            casting = cast_scene(scene, characters)
            performers = study_cast(info, casting, characters, engines)
        with ExitStack() as lines:
            for performer, character in zip(performers, characters, strict=True):
                performer.line = lines.enter_context(decoded_samples(character.line, folder))
                performer.blend = blend
            report = render_cast(video, sound, output, performers, sync_mode, progress,
                                 ranges=ranges, out=out, qc=qc)
    report.warnings += casting.warnings
    report.stages = {**clock.stages, **report.stages}
    report.seconds_total = time.perf_counter() - started
    return report, casting, scene


def with_retakes(characters: list[Character], info: VideoInfo,
                 ranges: list[FrameRange] | None, folder: Path) -> list[Character]:
    """Each character with their ranges' own lines laid into their line."""
    return [replace(c, line=splice(c.line, info, retakes(ranges, c.name),
                                   folder / f"line-{i}.flac"))
            if retakes(ranges, c.name) else c for i, c in enumerate(characters)]


def cast_sound(characters: list[Character], mix: Path | None, info: VideoInfo,
               ranges: list[FrameRange] | None, output: Path) -> Path:
    """What a cast's dub sounds like: the mix given, with the ranges' own lines laid in,
    or else the characters' lines (with theirs) mixed."""
    if mix is None:
        mix_lines([c.line for c in characters], output)
        return output
    return splice(mix, info, retakes(ranges), output) if retakes(ranges) else mix


def study_cast(info: VideoInfo, casting: Casting, characters: list[Character],
               engines: list[LipSyncEngine]) -> list[Performer]:
    tracks = [casting.tracks[c.name] for c in characters]
    return [Performer(engine, analysis, character=character.name)
            for engine, analysis, character in
            zip(engines, study_faces(info, engines, tracks), characters, strict=True)]

