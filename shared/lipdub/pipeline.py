"""One dub, stage by stage: probe -> audio -> faces (analysis pass) -> engine -> composite
-> encode. Frames stream through in bounded batches; nothing holds the whole video."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lipdub.audio.samples import Padded, Samples, decoded_samples, output_plan
from lipdub.blend import BlendMode, shaped
from lipdub.engines.base import FaceCrop, LipSyncEngine, MouthPatch
from lipdub.faces.crop import crop_box
from lipdub.faces.select import FaceSelector
from lipdub.faces.track import FaceTrack, analyse_faces
from lipdub.media.checks import check_dub_files
from lipdub.media.decode import iter_frames, iter_frames_looped
from lipdub.media.encode import SoundFeed
from lipdub.media.formats import read_format
from lipdub.media.frame_cache import DiskFrameCache
from lipdub.media.probe import VideoInfo, probe_video
from lipdub.memory import release_free_memory
from lipdub.outputs import Delivery, FrameWriter, Output
from lipdub.progress import NullProgress, ProgressSink, StageClock, StageTiming
from lipdub.ranges import FrameRange, blend_weights, check_inside, ranges_for
from lipdub.retakes import dub_sound, retakes
from lipdub.sync import SyncMode, SyncPlan
from lipdub.threads import pipeline_threads

if TYPE_CHECKING:
    from lipdub.qc.report import QCReport
    from lipdub.qc.thresholds import QCThresholds
    from lipdub.restore.stage import Restorer

log = logging.getLogger(__name__)

# The analysis pass lets the engine look at every Nth face frame (e.g. to find teeth).
STUDY_EVERY = 5


@dataclass
class DubReport:
    output: Path
    engine: str
    sync_mode: str
    fps: float
    width: int
    height: int
    source_frames: int
    output_frames: int
    face_frames: int  # output frames whose face was re-synced
    passthrough_frames: int  # output frames written untouched (no usable face)
    shots: int
    seconds_total: float
    stages: dict[str, StageTiming] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    outside_ranges: int = 0  # output frames left as filmed: outside every range asked for
    source_format: str = ""  # the source as an editor describes it (media.formats)
    qc: QCReport | None = None  # the QC pass's report, when one was asked for


@dataclass(frozen=True)
class Span:
    """A part of the output to render (a film's segment): output frames `frames`, picture
    only (the join muxes the whole new audio once). The `warmup` frames before it go
    through the engine unwritten, so that its temporal state runs on across a cut made
    inside a shot as if the film were rendered in one piece."""

    frames: range
    warmup: int = 8


@dataclass
class Analysis:
    """What the analysis pass learned: the face track and what the engine studied of the
    source faces. Small (24 bytes a frame plus the engine's notes), so it can be stored
    between the stages of a job."""

    track: FaceTrack
    study: object


@dataclass
class Performer:
    """One face dubbed with its own line: the one face of a plain dub, or a character of a
    cast (each with its own engine, so each face keeps its own temporal state)."""

    engine: LipSyncEngine
    analysis: Analysis
    line: Samples | None = None  # its own line, 16 kHz; None: the dub's audio
    character: str | None = None  # a cast's character (ranges may name it)
    blend: BlendMode = BlendMode.STANDARD  # how far the new mouth reaches into the face


def dub(
    video: Path,
    audio: Path | None,
    output: Path,
    engine: LipSyncEngine,
    sync_mode: SyncMode = SyncMode.CUT_OFF,
    face: FaceSelector | None = None,
    detect_every: int = 5,
    progress: ProgressSink | None = None,
    restorer: Restorer | None = None,
    ranges: list[FrameRange] | None = None,
    out: Output | None = None,
    qc: QCThresholds | None = None,
    blend: BlendMode = BlendMode.STANDARD,
) -> DubReport:
    """The whole dub in one call: the analysis pass, then the render pass. `ranges`: dub
    only these output frames (with fades at their edges); the rest stays as filmed. A
    range with its own line is heard there (and `audio` may then be None: the video's own
    sound around the lines). `qc`: measure the output after (report.qc)."""
    progress = progress or NullProgress()
    clock = StageClock()
    started = time.perf_counter()
    out = out or Delivery()
    with clock.time("probe"):
        info = check_dub_files(video, audio, output, [r.audio for r in retakes(ranges)],
                               out.suffixes)
    with ExitStack() as stack:
        with clock.time("audio"):
            sound = stack.enter_context(dub_sound(audio, info, ranges))
            samples = stack.enter_context(decoded_samples(sound))
        plan = _plan(info, samples, sync_mode, ranges)
        # The new sound is encoded while the analysis pass runs: that pass's thread leaves
        # part of a core idle, and the render's is a dub's bottleneck.
        feed = out.sound(sound, plan.frame_count / info.fps)
        if feed is not None:
            stack.callback(feed.stop)
        cache = (stack.enter_context(closing(DiskFrameCache(info.height, info.width,
                                                             info.frame_count)))
                 if sync_mode is SyncMode.BOUNCE else None)  # filled by the analysis pass
        analysis = _analyse(info, engine, face or FaceSelector(mode="largest"), detect_every,
                            cache, clock, progress)
        return _render_all(info, sound, output, [Performer(engine, analysis, blend=blend)],
                           sync_mode,
                           cache, clock, progress, restorer, started, samples=samples,
                           ranges=ranges, out=out, qc=qc, feed=feed)


def analyse_video(video: Path, engine: LipSyncEngine, face: FaceSelector | None = None,
                  detect_every: int = 5, progress: ProgressSink | None = None) -> Analysis:
    """The analysis pass alone (a job's 'faces' stage)."""
    info = probe_video(video)
    return _analyse(info, engine, face or FaceSelector(mode="largest"), detect_every, None,
                    StageClock(), progress or NullProgress())


def render_video(video: Path, audio: Path, output: Path, engine: LipSyncEngine,
                 analysis: Analysis, sync_mode: SyncMode = SyncMode.CUT_OFF,
                 progress: ProgressSink | None = None,
                 restorer: Restorer | None = None, span: Span | None = None,
                 samples: Samples | None = None,
                 ranges: list[FrameRange] | None = None,
                 out: Output | None = None, base: Path | None = None,
                 blend: BlendMode = BlendMode.STANDARD) -> DubReport:
    """The render pass alone, from a stored analysis (a job's lip-sync stage): engine,
    restoration, composite and encode stream together, frame batch by frame batch. With a
    `span`, only that part of the output, picture only. `samples`: the audio already
    decoded (a film's segments share one decode). `ranges`: as for dub(). `base`: an
    earlier dub of the same video and sound whose frames fill everything outside the
    ranges (a new version re-running some shots)."""
    return render_cast(video, audio, output, [Performer(engine, analysis, blend=blend)],
                       sync_mode, progress, restorer, span, samples, ranges, out, base=base)


def render_cast(video: Path, audio: Path, output: Path, performers: list[Performer],
                sync_mode: SyncMode = SyncMode.CUT_OFF,
                progress: ProgressSink | None = None,
                restorer: Restorer | None = None, span: Span | None = None,
                samples: Samples | None = None,
                ranges: list[FrameRange] | None = None,
                out: Output | None = None, qc: QCThresholds | None = None,
                base: Path | None = None) -> DubReport:
    """render_video for several faces at once, each with its own line (`audio` is what
    the output sounds like: the full mix). `qc`: measure the output after (report.qc)."""
    progress = progress or NullProgress()
    clock = StageClock()
    started = time.perf_counter()
    with clock.time("probe"):
        info = check_dub_files(video, audio, output, suffixes=(out or Delivery()).suffixes)
    for performer in performers:
        performer.engine.load_study_state(performer.analysis.study)
    try:
        return _render_all(info, audio, output, performers, sync_mode, None, clock,
                           progress, restorer, started, span, samples, ranges, out, qc,
                           base)
    finally:
        release_free_memory()  # a worker renders segment after segment: stay flat


def _render_all(info: VideoInfo, audio: Path, output: Path, performers: list[Performer],
                sync_mode: SyncMode, cache: DiskFrameCache | None,
                clock: StageClock, progress: ProgressSink, restorer: Restorer | None,
                started: float, span: Span | None = None,
                samples: Samples | None = None,
                ranges: list[FrameRange] | None = None,
                out: Output | None = None, qc: QCThresholds | None = None,
                base: Path | None = None, feed: SoundFeed | None = None) -> DubReport:
    out = out or Delivery()
    with ExitStack() as stack:
        stack.enter_context(pipeline_threads())
        if samples is None:
            with clock.time("audio"):
                # On disk, read a slice at a time: a film's track is never in memory.
                samples = stack.enter_context(decoded_samples(audio))
        fps = float(info.fps)
        plan = _plan(info, samples, sync_mode, ranges)
        with clock.time("audio"):
            for performer in performers:
                line = performer.line
                performer.engine.prepare(samples if line is None
                                         else Padded(line, len(samples)), fps)
        if cache is None and sync_mode is SyncMode.BOUNCE:
            cache = stack.enter_context(_bounce_cache(info, plan, span, clock))
        weights = [blend_weights(ranges_for(ranges, p.character), plan.frame_count)
                   for p in performers]
        report = _render(info, audio, output, performers, plan, cache, clock, progress,
                         restorer, span, weights, out, base, feed)
        if qc is not None and span is None and out.playable:
            with clock.time("qc", frames=report.output_frames):
                report.qc = _check(info, output, plan, performers, samples, weights, qc,
                                   progress, report.passthrough_frames, stack)
    report.seconds_total = time.perf_counter() - started
    report.stages = clock.stages
    source = read_format(info.path)
    report.source_format = source.describe()
    if lost := out.dropped(source):
        report.warnings.append(
            f"The output (H.264, 8-bit 4:2:0, one stereo AAC track) does not keep the "
            f"source's {', '.join(lost)}.")
    if report.face_frames == 0:
        report.warnings.append(
            "No face was found in any frame: the video was passed through unchanged with the "
            "new audio."
        )
    return report


def _plan(info: VideoInfo, samples: Samples, sync_mode: SyncMode,
          ranges: list[FrameRange] | None) -> SyncPlan:
    plan = output_plan(info, samples, sync_mode)
    check_inside(ranges or [], plan.frame_count, info.fps)  # before any rendering
    return plan


def _check(info: VideoInfo, output: Path, plan: SyncPlan, performers: list[Performer],
           samples: Samples, weights: list[np.ndarray | None], thresholds: QCThresholds,
           progress: ProgressSink, passthrough: int, stack: ExitStack) -> QCReport:
    """The QC pass over the finished output: each face against its own line."""
    from lipdub.qc.run import DubbedFace, check_dub

    original = stack.enter_context(decoded_samples(info.path)) if info.has_audio else None
    faces = [DubbedFace(p.analysis.track, samples if p.line is None
                        else Padded(p.line, len(samples)), w, p.character or "")
             for p, w in zip(performers, weights, strict=True)]
    return check_dub(info, output, plan, faces, thresholds, original, progress, passthrough)


def _analyse(
    info: VideoInfo,
    engine: LipSyncEngine,
    selector: FaceSelector,
    detect_every: int,
    cache: DiskFrameCache | None,
    clock: StageClock,
    progress: ProgressSink,
) -> Analysis:
    progress.start("faces", info.frame_count)
    studies = _StudyThread(engine)

    def look(i: int, rgb: np.ndarray, box: np.ndarray | None) -> None:
        if cache is not None:
            cache.put(i, rgb)
        studies.study(i, rgb, box)
        progress.advance("faces")

    with (pipeline_threads(), clock.time("faces", frames=info.frame_count),
          closing(studies)):
        track = analyse_faces(iter_frames(info), info.frame_count, selector, detect_every,
                              on_frame=look)
        studies.wait()
    progress.finish("faces")
    return Analysis(track=track, study=engine.study_state())


class _StudyThread:
    """The engine's study of the analysis pass's faces, on a thread of its own: the pass's
    own thread is its bottleneck, and at 720p the study (a face-landmark model every
    STUDY_EVERY frames) was a quarter of its work while half a core stood idle
    (benchmarks/RESULTS.md). In order, one at a time, so
    the engine learns exactly what it would have in line; a few frames held at most."""

    HELD = 4

    def __init__(self, engine: LipSyncEngine) -> None:
        self._engine = engine
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="lipdub-study")
        self._queued: list[Future] = []

    def study(self, i: int, rgb: np.ndarray, box: np.ndarray | None) -> None:
        if box is None or i % STUDY_EVERY:
            return
        self._queued.append(self._thread.submit(_study, self._engine, i, rgb, box))
        while len(self._queued) > self.HELD:
            self._queued.pop(0).result()  # raises what the study raised

    def wait(self) -> None:
        while self._queued:
            self._queued.pop(0).result()

    def close(self) -> None:
        for queued in self._queued:  # the pass failed: what is not begun is not needed
            queued.cancel()
        self._thread.shutdown(wait=True)


def study_faces(info: VideoInfo, engines: list[LipSyncEngine],
                tracks: list[FaceTrack]) -> list[Analysis]:
    """Each engine studies its own face (the analysis pass's study, for faces known only
    after a whole pass: a cast's)."""
    with pipeline_threads(), closing(iter_frames(info)) as frames:
        for i, rgb in enumerate(frames):
            for engine, track in zip(engines, tracks, strict=True):
                if i < track.frame_count and not np.isnan(track.boxes[i, 0]):
                    _study(engine, i, rgb, track.boxes[i])
    return [Analysis(track, engine.study_state())
            for engine, track in zip(engines, tracks, strict=True)]


def _study(engine: LipSyncEngine, i: int, rgb: np.ndarray, box: np.ndarray | None) -> None:
    """The engine looks at every STUDY_EVERY-th frame's face (its padded crop)."""
    if box is not None and i % STUDY_EVERY == 0:
        padded = crop_box(box, rgb.shape[:2])
        if padded is not None:
            engine.study(i, rgb, padded)


def _output_frames(plan: SyncPlan, span: Span | None) -> range:
    """The output frames a render goes through: a span's with its warm-up, or all."""
    if span is None:
        return range(plan.frame_count)
    return range(max(0, span.frames.start - span.warmup), span.frames.stop)


@contextmanager
def _bounce_cache(info: VideoInfo, plan: SyncPlan, span: Span | None,
                  clock: StageClock) -> Iterator[DiskFrameCache]:
    """Bounce plays the source backwards, so the source frames this render reads (for a
    film's segment, a segment's worth) are decoded once into a disk cache first."""
    needed = plan.source_indices[_output_frames(plan, span)]
    lo, hi = int(needed.min()), int(needed.max()) + 1
    cache = DiskFrameCache(info.height, info.width, hi - lo, first=lo)
    try:
        with clock.time("decode", frames=hi - lo), closing(iter_frames(info, lo)) as frames:
            for i, rgb in zip(range(lo, hi), frames, strict=False):
                cache.put(i, rgb)
        yield cache
    finally:
        cache.close()


def _source_frames(info: VideoInfo, indices: np.ndarray, cache: DiskFrameCache | None,
                   convert: Callable | None = None) -> Iterator:
    if cache is not None:
        return (cache.get(int(i)) for i in indices)
    return iter_frames_looped(info, iter(int(i) for i in indices), convert)


def _render(
    info: VideoInfo,
    audio: Path,
    output: Path,
    performers: list[Performer],
    plan: SyncPlan,
    cache: DiskFrameCache | None,
    clock: StageClock,
    progress: ProgressSink,
    restorer: Restorer | None,
    span: Span | None = None,
    # Per performer, per output frame: how much new mouth (None: all of it everywhere).
    weights: list[np.ndarray | None] | None = None,
    out: Output | None = None,
    base: Path | None = None,
    feed: SoundFeed | None = None,  # the new sound, begun (None: begun here)
) -> DubReport:
    out = out or Delivery()
    wanted = span.frames if span is not None else range(plan.frame_count)
    first = _output_frames(plan, span).start
    weights = weights or [None] * len(performers)
    engine_name = performers[0].engine.name
    track_shots = performers[0].analysis.track.shot
    report = DubReport(
        output=output, engine=engine_name, sync_mode=plan.mode.value, fps=float(info.fps),
        width=info.width, height=info.height, source_frames=info.frame_count,
        output_frames=len(wanted), face_frames=0, passthrough_frames=0,
        shots=int(track_shots.max()) + 1 if len(track_shots) else 0, seconds_total=0.0,
    )
    progress.start("lip-sync", len(wanted))
    frames = _source_frames(info, plan.source_indices[first:wanted.stop], cache, out.convert)
    # An earlier version's frames, in step with the output: kept wherever nothing is dubbed.
    kept = _source_frames(probe_video(base), np.arange(first, wanted.stop), None,
                          out.convert) if base is not None else None
    if span is not None:
        feed = None  # a part of a film: picture only
    elif feed is None:
        feed = out.sound(audio, len(wanted) / info.fps)
    # (frame, each performer's crop or None, whether it is written: warm-up frames are not)
    pending: list[tuple[np.ndarray, list[FaceCrop | None], bool]] = []
    previous_source = [-2] * len(performers)
    # One batch's engine work runs (on a model server, or in torch, which frees the GIL)
    # while this thread composites, restores and encodes the batch before it and decodes
    # the next: a remote engine's round trip is hidden behind the CPU work. Batches stay in
    # order; at most two are held.
    renderer = ThreadPoolExecutor(1, thread_name_prefix="lipdub-render")
    in_flight: list[tuple[list, Future]] = []
    batch_size = min(p.engine.batch_size for p in performers)

    def render(crops: list[list[FaceCrop]]) -> list[list[MouthPatch]]:
        with clock.time(engine_name, frames=sum(map(len, crops))):
            return [p.engine.render(c) for p, c in zip(performers, crops, strict=True)]

    def finish(writer: FrameWriter) -> None:
        everything, patches_due = in_flight.pop(0)
        by_crop = [iter(patches) for patches in patches_due.result()]
        # Warm-up frames went through the engines (their state); they are not written.
        batch: list[tuple[np.ndarray, list[MouthPatch | None]]] = []
        for frame, crops, keep in everything:
            patches = [_faded(_blended(next(by_crop[p]), performers[p].blend), weights[p],
                              crop.frame_index)
                       if crop is not None else None for p, crop in enumerate(crops)]
            if keep:
                batch.append((frame, patches))
        with clock.time("composite", frames=len(batch)):
            finished = [out.composited(frame, patches) for frame, patches in batch]
        # The restorer is one person's: the first performer's face.
        faces = [i for i, (_, patches) in enumerate(batch) if patches[0] is not None]
        if restorer is not None and faces:
            with clock.time("restore", frames=len(faces)):
                lead = [batch[i][1][0] for i in faces]
                restored = restorer.apply([finished[i] for i in faces],
                                          [patch.box for patch in lead], lead)
                for i, frame in zip(faces, restored, strict=True):
                    finished[i] = frame
        with clock.time("encode", frames=len(finished)):
            for frame in finished:
                writer.write(frame)
        progress.advance("lip-sync", len(batch))

    def flush(writer: FrameWriter) -> None:
        crops = [[c[p] for _, c, _ in pending if c[p] is not None]
                 for p in range(len(performers))]
        in_flight.append((list(pending), renderer.submit(render, crops)))
        pending.clear()
        while len(in_flight) > 1:
            finish(writer)

    shots = track_shots[plan.source_indices[wanted.start:wanted.stop]]
    with renderer, ExitStack() as stack:
        if feed is not None:
            stack.callback(feed.stop)  # stopped whatever happens; after close, a no-op
        writer = stack.enter_context(out.writer(output, info, audio, feed, shots))
        for k in range(first, wanted.stop):
            keep = k >= wanted.start
            source = int(plan.source_indices[k])
            with clock.time("decode", frames=1):
                frame = next(frames)
                earlier = next(kept, None) if kept is not None else None
            crops: list[FaceCrop | None] = []
            for p, performer in enumerate(performers):
                crop = None
                if weights[p] is not None and weights[p][k] == 0:
                    previous_source[p] = -2  # the next range starts its state afresh
                else:
                    crop = _crop(performer.analysis.track, out.rgb(frame), k, source,
                                 previous_source[p])
                    previous_source[p] = source
                crops.append(crop)
            if all(w is not None and w[k] == 0 for w in weights):
                report.outside_ranges += keep
                frame = earlier if earlier is not None else frame
            elif any(crop is not None for crop in crops):
                report.face_frames += keep
            else:
                report.passthrough_frames += keep
            pending.append((frame, crops, keep))
            if len(pending) >= batch_size:
                flush(writer)
        flush(writer)
        while in_flight:
            finish(writer)
    progress.finish("lip-sync")
    return report


def _crop(track: FaceTrack, frame: np.ndarray, k: int, source: int,
          previous_source: int) -> FaceCrop | None:
    """Output frame k's crop of one face (None where the face is not on screen)."""
    box = track.boxes[source]
    padded = None if np.isnan(box[0]) else crop_box(box, frame.shape[:2])
    if padded is None:
        return None
    # Temporal state resets on cuts and wherever the output jumps (loop/bounce).
    restart = bool(track.shot_starts[source]) or abs(source - previous_source) != 1
    return FaceCrop(frame_index=k, frame=frame, box=padded, shot_start=restart)


def _blended(patch: MouthPatch, mode: BlendMode) -> MouthPatch:
    return patch if mode is BlendMode.STANDARD else replace(patch,
                                                            mask=shaped(patch.mask, mode))


def _faded(patch: MouthPatch | None, weights: np.ndarray | None,
           k: int) -> MouthPatch | None:
    """The patch faded in or out at a range's edge (as it is, outside any fade)."""
    if patch is None or weights is None or weights[k] >= 1:
        return patch
    return replace(patch, mask=patch.mask * weights[k])
