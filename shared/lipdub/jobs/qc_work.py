"""A dub job's QC stage: the finished result measured against its source, face by face,
each against the line it speaks; the report kept with the job's results. A film's QC runs
in parts on any number of workers (like its render), joined into one report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lipdub.jobs.runner import WorkContext
from lipdub.jobs.workfiles import work_key
from lipdub.qc.thresholds import QCThresholds
from lipdub.storage import tenant_key
from lipdub.sync import SyncMode


@dataclass
class _Inputs:
    info: object  # VideoInfo
    result: Path
    plan: object  # SyncPlan
    faces: list  # DubbedFace


def _plan(ctx: WorkContext, sync_mode: SyncMode):  # noqa: ANN202 - (VideoInfo, SyncPlan)
    """The source and the output's frame plan, as the render made it."""
    from lipdub.audio.samples import decoded_once, output_plan
    from lipdub.media.probe import probe_video

    info = probe_video(ctx.local(ctx.work["video"]))
    return info, output_plan(info, decoded_once(ctx.local(ctx.work["audio"])), sync_mode)


def _inputs(ctx: WorkContext, sync_mode: SyncMode, ranges: list | None) -> _Inputs:
    from lipdub.analysis_io import load_analysis
    from lipdub.audio.samples import Padded, decoded_once
    from lipdub.qc.run import DubbedFace
    from lipdub.ranges import blend_weights, ranges_for

    if ctx.job.options.get("base_job"):
        ranges = None  # a version: outside its ranges is the earlier version's dub
    info, plan = _plan(ctx, sync_mode)
    sound = decoded_once(ctx.local(ctx.work["audio"]))
    cast = ctx.job.options.get("cast")
    if cast:
        faces = [DubbedFace(load_analysis(ctx.local(key)).track,
                            Padded(decoded_once(ctx.local(files["line"])), len(sound)),
                            blend_weights(ranges_for(ranges, member["character"]),
                                          plan.frame_count), member["character"])
                 for key, files, member in zip(ctx.work["cast_analyses"], ctx.work["cast"],
                                               cast, strict=True)]
    else:
        faces = [DubbedFace(load_analysis(ctx.local(ctx.work["analysis"])).track, sound,
                            blend_weights(ranges, plan.frame_count))]
    return _Inputs(info, ctx.local(ctx.work["result"]), plan, faces)


def qc_parts(ctx: WorkContext, sync_mode: SyncMode, part_seconds: float) -> list[dict] | None:
    """A film longer than a part: the output frames each part measures (None: one pass)."""
    info, plan = _plan(ctx, sync_mode)
    frames = plan.frame_count
    length = max(1, round(part_seconds * float(info.fps)))
    if frames <= length:
        return None
    owned = ctx.work.setdefault("owned", [])
    specs = []
    for index, start in enumerate(range(0, frames, length)):
        key = work_key(ctx.job, f"qc-{index:05d}.npz")
        owned += [key] if key not in owned else []
        specs.append({"start": start, "stop": min(frames, start + length), "key": key})
    return specs


def qc_part(ctx: WorkContext, spec: dict, sync_mode: SyncMode, ranges: list | None) -> dict:
    """One part's series, kept under a key the job owns."""
    from lipdub.qc.frames import save_series
    from lipdub.qc.run import measure_faces

    given = _inputs(ctx, sync_mode, ranges)
    series = measure_faces(given.info, given.result, given.plan, given.faces, ctx.progress,
                           range(spec["start"], spec["stop"]))
    path = ctx.folder / "qc-part.npz"
    save_series(series, path)
    ctx.store.put_file(spec["key"], path)
    return {"key": spec["key"], "start": spec["start"]}


def measure_job(ctx: WorkContext, sync_mode: SyncMode, ranges: list | None,
                thresholds: QCThresholds) -> None:
    """The report (from one pass, or the parts' series joined), under the job's results
    (`work["qc"]`), and its summary on the job's record (`work["qc_summary"]`, also in the
    terminal webhook)."""
    from lipdub.audio.samples import decoded_once
    from lipdub.qc.frames import joined, load_series
    from lipdub.qc.report import write_report
    from lipdub.qc.run import measure_faces, report_of

    given = _inputs(ctx, sync_mode, ranges)
    if ctx.parts:
        series = joined([load_series(ctx.local(part["key"]))
                         for part in sorted(ctx.parts, key=lambda part: part["start"])])
    else:
        series = measure_faces(given.info, given.result, given.plan, given.faces,
                               ctx.progress)
    video = ctx.local(ctx.work["video"])
    report = report_of(series, given.info, given.plan, given.faces, thresholds,
                       decoded_once(video) if given.info.has_audio else None,
                       ctx.work.get("timings", {}).get("passthrough_frames", 0))
    path = ctx.folder / "qc.json"
    write_report(report, path)
    key = tenant_key(ctx.job.tenant_id, "results", ctx.job.id, "qc.json")
    ctx.store.put_file(key, path)
    ctx.work["qc"], ctx.work["qc_summary"] = key, report.summary()
    # What review needs of each shot, on the job's record (the report may be large).
    ctx.work["qc_shots"] = [{"shot": s.shot, "face": s.face, "start": s.start_frame,
                             "stop": s.stop_frame, "flags": s.flags} for s in report.shots]
