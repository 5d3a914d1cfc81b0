"""What a dub job's output sounds like, made once in its probe stage: the job's audio, with
each range's own line (a re-take) laid in; for a cast, each character's line with their
re-takes, and the lines mixed when no mix was given. Later stages see plain files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lipdub.jobs.cast_work import characters

if TYPE_CHECKING:
    from lipdub.jobs.runner import WorkContext
    from lipdub.media.probe import VideoInfo
    from lipdub.ranges import FrameRange


def make_sound(ctx: WorkContext, info: VideoInfo, ranges: list[FrameRange] | None) -> None:
    # The media work is imported here: the gateway imports the job stages to plan jobs.
    from lipdub.cast_dub import cast_sound, with_retakes
    from lipdub.retakes import retakes, splice

    audio = ctx.local(ctx.work["audio"]) if "audio" in ctx.work else None
    if ctx.work.get("cast"):
        cast = characters(ctx)
        lines = with_retakes(cast, info, ranges, ctx.folder)
        for files, before, after in zip(ctx.work["cast"], cast, lines, strict=True):
            if after.line != before.line:
                files["line"] = ctx.keep(after.line, f"{after.line.stem}-retakes.flac")
        sound = cast_sound(lines, audio, info, ranges, ctx.folder / "sound.flac")
    elif retakes(ranges):
        sound = splice(audio, info, retakes(ranges), ctx.folder / "sound.flac")
    else:
        return
    if sound != audio:
        ctx.work["audio"] = ctx.keep(sound, sound.name)
