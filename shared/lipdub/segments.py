"""Film-scale dubbing: the output cut into segments of bounded length at shot boundaries
(inside a shot only when a shot is longer than a segment), rendered independently (any
worker, any order; each a picture-only file starting on a key frame), then joined by
stream copy with the whole new audio muxed once, sample-accurate.

The analysis pass runs once over the whole film (cheap), so face boxes continue across
every cut; the render of a segment starts a few frames early (Span.warmup) so that the
engine's temporal state does too."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import ffmpeg
import imageio_ffmpeg
import numpy as np

from lipdub.audio.samples import Samples, decoded_samples, output_plan
from lipdub.engines.base import LipSyncEngine
from lipdub.errors import LipDubError
from lipdub.faces.select import FaceSelector
from lipdub.faces.track import FaceTrack
from lipdub.media.encode import AUDIO_RATE
from lipdub.media.probe import VideoInfo, probe_video
from lipdub.pipeline import Analysis, Span, analyse_video, render_video
from lipdub.sync import SyncMode, SyncPlan

if TYPE_CHECKING:
    from lipdub.restore.stage import Restorer

DEFAULT_SEGMENT_SECONDS = 60.0


class JoinError(LipDubError):
    code = "join_failed"


@dataclass(frozen=True)
class Segment:
    index: int
    start: int  # output frames [start, stop)
    stop: int

    @property
    def frames(self) -> range:
        return range(self.start, self.stop)


def shot_boundaries(track: FaceTrack, plan: SyncPlan) -> np.ndarray:
    """Output frames where a new shot starts: a cut in the source, or a jump of the output
    through it (loop, bounce)."""
    source = plan.source_indices
    if len(source) < 2:
        return np.zeros(0, dtype=np.int64)
    jumps = source[1:] != source[:-1] + 1
    cuts = track.shot_starts[source[1:]]
    return np.flatnonzero(jumps | cuts) + 1


def plan_segments(track: FaceTrack, plan: SyncPlan, fps: Fraction,
                  max_seconds: float = DEFAULT_SEGMENT_SECONDS) -> list[Segment]:
    """Segments of at most `max_seconds`, each cut at the last shot boundary it reaches
    (past its first quarter, so none is needlessly short), or at the limit inside a shot
    longer than that. One segment when the output is short."""
    total, limit = plan.frame_count, max(1, round(max_seconds * float(fps)))
    boundaries = shot_boundaries(track, plan)
    cuts, start = [], 0
    while total - start > limit:
        near = boundaries[(boundaries > start + limit // 4) & (boundaries <= start + limit)]
        start = int(near[-1]) if len(near) else start + limit
        cuts.append(start)
    edges = [0, *cuts, total]
    return [Segment(i, a, b) for i, (a, b) in enumerate(zip(edges, edges[1:], strict=False))]


def join_segments(parts: list[Path], audio: Path, frame_count: int, fps: Fraction,
                  output: Path) -> None:
    """The segments' pictures joined by stream copy (no re-encoding), with the new audio
    resampled, padded or cut to exactly the picture's length and encoded once. Atomic."""
    partial = output.with_name(f".{output.name}.partial")
    listing = output.with_name(f".{output.name}.segments.txt")
    # The concat demuxer's list: one quoted absolute path a line (quotes escaped).
    listing.write_text("".join("file '{}'\n".format(str(p.resolve()).replace("'", "'\\''"))
                               for p in parts))
    samples = round(frame_count / fps * AUDIO_RATE)
    picture = ffmpeg.input(str(listing), f="concat", safe=0)
    sound = (ffmpeg.input(str(audio)).audio
             .filter("aresample", AUDIO_RATE)
             .filter("apad", whole_len=samples)
             .filter("atrim", end_sample=samples))
    job = ffmpeg.output(picture.video, sound, str(partial), vcodec="copy", acodec="aac",
                        audio_bitrate="192k", ac=2, ar=AUDIO_RATE, f="mp4",
                        movflags="+faststart")
    try:
        job.run(cmd=imageio_ffmpeg.get_ffmpeg_exe(), overwrite_output=True, quiet=True)
        partial.replace(output)
    except ffmpeg.Error as exc:
        tail = (exc.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
        raise JoinError(f"FFmpeg could not join the segments: {' / '.join(tail)}",
                        "Report this with the job id.") from exc
    finally:
        partial.unlink(missing_ok=True)
        listing.unlink(missing_ok=True)


def plan_for(video: Path, samples: Samples, analysis: Analysis, sync_mode: SyncMode,
             max_seconds: float) -> tuple[VideoInfo, SyncPlan, list[Segment]]:
    """The output's frame plan and its segments, as every worker computes them alike."""
    info = probe_video(video)
    plan = output_plan(info, samples, sync_mode)
    return info, plan, plan_segments(analysis.track, plan, info.fps, max_seconds)


def dub_in_segments(video: Path, audio: Path, output: Path,
                    make_engine: Callable[[], LipSyncEngine], folder: Path,
                    sync_mode: SyncMode = SyncMode.CUT_OFF, face: FaceSelector | None = None,
                    detect_every: int = 5, max_seconds: float = DEFAULT_SEGMENT_SECONDS,
                    restorer: Restorer | None = None) -> list[Segment]:
    """A whole dub in segments on this machine, one after another (the job platform runs
    them on many workers): the analysis once, each segment rendered by a fresh engine, as
    on another worker, then the join. Segment files go in `folder`."""
    with closing(make_engine()) as engine:
        analysis = analyse_video(video, engine, face, detect_every)
    parts = []
    with decoded_samples(audio, folder) as samples:
        info, _, segments = plan_for(video, samples, analysis, sync_mode, max_seconds)
        for segment in segments:
            part = folder / f"segment-{segment.index:05d}.mp4"
            with closing(make_engine()) as engine:
                render_video(video, audio, part, engine, analysis, sync_mode,
                             restorer=restorer, span=Span(segment.frames), samples=samples)
            parts.append(part)
    join_segments(parts, audio, segments[-1].stop, info.fps, output)
    return segments
