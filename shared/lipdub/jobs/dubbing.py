"""The work of a dub job: fetch the inputs, check limits, run the same core pipeline the CLI
uses (with the tenant's identity restorer when asked), store the result under a new key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lipdub.config import get_settings
from lipdub.db.models import new_id
from lipdub.engines.registry import build_engine
from lipdub.faces.select import FaceSelector
from lipdub.jobs.runner import WorkContext, WorkResult
from lipdub.pipeline import dub
from lipdub.progress import ProgressSink
from lipdub.storage import tenant_key
from lipdub.sync import SyncMode


def dub_file(video: Path, audio: Path, output: Path, options: dict,
             progress: ProgressSink, restorer=None) -> dict:  # noqa: ANN001 - Restorer
    settings = get_settings()
    engine = build_engine(options.get("engine", "auto"), settings.wav2lip_checkpoint,
                          settings.device, settings.wav2lip_batch_size)
    report = dub(video, audio, output, engine, SyncMode(options.get("sync_mode", "cut_off")),
                 FaceSelector.parse(options.get("face", "largest")), settings.detect_every,
                 progress, restorer)
    return {"seconds_total": report.seconds_total, "output_frames": report.output_frames,
            "face_frames": report.face_frames, "passthrough_frames": report.passthrough_frames,
            "stages": {k: {"seconds": v.seconds, "frames": v.frames}
                       for k, v in report.stages.items()},
            "warnings": report.warnings}


def dub_work(check_inputs: Callable[[Path, Path], None],
             restorer_for: Callable[[WorkContext, str], object]) -> Callable[[WorkContext],
                                                                             WorkResult]:
    """`restorer_for(ctx, identity_name)` loads the tenant's identity restorer."""

    def work(ctx: WorkContext) -> WorkResult:
        job = ctx.job
        ctx.progress.start("fetch", 2)
        video = ctx.fetch(job.video_uri, "video")
        ctx.progress.advance("fetch")
        audio = ctx.fetch(job.audio_uri, "audio")
        ctx.progress.finish("fetch")
        check_inputs(video, audio)
        identity = job.options.get("identity")
        restorer = restorer_for(ctx, identity) if identity else None
        output = ctx.folder / "result.mp4"
        timings = dub_file(video, audio, output, dict(job.options), ctx.progress, restorer)
        job.stage = "upload"
        key = tenant_key(job.tenant_id, "results", job.id, f"{new_id()}.mp4")
        ctx.store.put_file(key, output)
        return WorkResult(key, timings)

    return work
