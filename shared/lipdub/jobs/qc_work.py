"""A dub job's QC stage: the finished result measured against its source, face by face,
each against the line it speaks; the report kept with the job's results."""

from __future__ import annotations

from lipdub.jobs.runner import WorkContext
from lipdub.qc.thresholds import QCThresholds
from lipdub.storage import tenant_key
from lipdub.sync import SyncMode


def measure_job(ctx: WorkContext, sync_mode: SyncMode, ranges: list | None,
                thresholds: QCThresholds) -> None:
    """Writes the report under the job's results (`work["qc"]`) and its summary into the
    job's record (`work["qc_summary"]`, also in the terminal webhook)."""
    from lipdub.analysis_io import load_analysis
    from lipdub.audio.load import FEATURE_RATE
    from lipdub.audio.samples import Padded, decoded_once
    from lipdub.media.probe import probe_video
    from lipdub.qc.report import write_report
    from lipdub.qc.run import DubbedFace, check_dub
    from lipdub.ranges import blend_weights, ranges_for
    from lipdub.sync import plan_sync

    if ctx.job.options.get("base_job"):
        ranges = None  # a version: outside its ranges is the earlier version's dub
    video, audio = ctx.local(ctx.work["video"]), ctx.local(ctx.work["audio"])
    info = probe_video(video)
    sound = decoded_once(audio)
    plan = plan_sync(info.frame_count, len(sound) / FEATURE_RATE, float(info.fps), sync_mode)
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
    report = check_dub(info, ctx.local(ctx.work["result"]), plan, faces, thresholds,
                       decoded_once(video) if info.has_audio else None, ctx.progress,
                       ctx.work.get("timings", {}).get("passthrough_frames", 0))
    path = ctx.folder / "qc.json"
    write_report(report, path)
    key = tenant_key(ctx.job.tenant_id, "results", ctx.job.id, "qc.json")
    ctx.store.put_file(key, path)
    ctx.work["qc"], ctx.work["qc_summary"] = key, report.summary()
    # What review needs of each shot, on the job's record (the report may be large).
    ctx.work["qc_shots"] = [{"shot": s.shot, "face": s.face, "start": s.start_frame,
                             "stop": s.stop_frame, "flags": s.flags} for s in report.shots]
