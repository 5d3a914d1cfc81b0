"""The stages of a dub job. Each reads and writes artifacts in the object store (keys kept
in the job's work manifest), so consecutive stages may run on different workers, and a stage
interrupted anywhere simply runs again:

  probe   stage the inputs in the object store (URLs fetched once), check them and the limits
  faces   the analysis pass: face track + what the engine studied -> analysis artifact
  identity  with restore "auto" only: train a restorer on this footage's own face
  lip-sync  the render pass: engine, restoration, composite and picture encode stream
          together, batch by batch (as separate stages each would write and re-read the
          whole film as raw frames) -> the dubbed render
  encode  whole-file FFmpeg work: the picture stream-copied, the sound loudness-normalised
          when asked, into the delivery container -> the result, under a new key
  publish the result becomes the job's; the working artifacts are removed
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from sqlalchemy import select

from lipdub.config import Settings, get_settings
from lipdub.db.models import Job, JobState
from lipdub.engines.registry import build_engine
from lipdub.faces.select import FaceSelector
from lipdub.jobs.identities import load_restorer, restorer_from, training_progress
from lipdub.jobs.inputs import InputKind, input_kind
from lipdub.jobs.runner import Stage, WorkContext, WorkResult, _suffix
from lipdub.media.finish import finish
from lipdub.media.probe import probe_audio
from lipdub.pipeline import analyse_video, dub, render_video
from lipdub.progress import ProgressSink
from lipdub.storage import StoreUnavailableError, tenant_key
from lipdub.sync import SyncMode


def dub_file(video: Path, audio: Path, output: Path, options: dict,
             progress: ProgressSink, restorer=None) -> dict:  # noqa: ANN001 - Restorer
    """A whole dub in one call (the same core the CLI uses)."""
    settings = get_settings()
    with closing(_engine(settings, options)) as engine:
        report = dub(video, audio, output, engine, _sync(options), _face(options),
                     settings.detect_every, progress, restorer)
    return _timings(report)


def _engine(s: Settings, options: dict):  # noqa: ANN202 - LipSyncEngine
    return build_engine(options.get("engine", "auto"), s.wav2lip_checkpoint, s.device,
                        s.wav2lip_batch_size, s.inference, s.served_wav2lip)


def _sync(options: dict) -> SyncMode:
    return SyncMode(options.get("sync_mode", "cut_off"))


def _face(options: dict) -> FaceSelector:
    return FaceSelector.parse(options.get("face", "largest"))


def _timings(report) -> dict:  # noqa: ANN001 - DubReport
    return {"seconds_total": report.seconds_total, "output_frames": report.output_frames,
            "face_frames": report.face_frames, "passthrough_frames": report.passthrough_frames,
            "stages": {k: {"seconds": v.seconds, "frames": v.frames}
                       for k, v in report.stages.items()},
            "warnings": report.warnings}


def local_copies(job_id: str) -> Path:
    """This machine's copies of a job's stored inputs, shared by its stages when they run
    on the same worker (a film is downloaded once, not once per stage)."""
    return Path(tempfile.gettempdir()) / "lipdub-jobs" / job_id


def _local(ctx: WorkContext, key: str) -> Path:
    folder = local_copies(ctx.job.id)
    path = folder / key.replace("/", "_")
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        ctx.store.get_file(key, partial)
        partial.replace(path)
    return path


def _work_key(ctx: WorkContext, name: str) -> str:
    return tenant_key(ctx.job.tenant_id, "work", ctx.job.id, name)


def _stage_input(ctx: WorkContext, uri: str, name: str) -> str:
    """The object-store key of an input: an upload is already stored; anything else is
    fetched once and stored with the job's working files."""
    if input_kind(uri) is InputKind.UPLOAD:
        return ctx.inputs.upload(uri, ctx.job.tenant_id, ctx.session).storage_key
    local = ctx.fetch(uri, name)
    key = _work_key(ctx, name + _suffix(uri))
    ctx.store.put_file(key, local)
    ctx.work.setdefault("owned", []).append(key)
    return key


def _restores_itself(job) -> bool:  # noqa: ANN001 - Job
    return (job.options or {}).get("restore") == "auto"


def dub_stages(settings: Settings, check_inputs: Callable[[Path, Path], None]) -> list[Stage]:
    """The stages of a dub, with this worker's settings (engine weights, device, limits)."""

    def probe(ctx: WorkContext) -> None:
        ctx.progress.start("fetch", 2)
        ctx.work["video"] = _stage_input(ctx, ctx.job.video_uri, "video")
        ctx.progress.advance("fetch")
        ctx.work["audio"] = _stage_input(ctx, ctx.job.audio_uri, "audio")
        video, audio = _local(ctx, ctx.work["video"]), _local(ctx, ctx.work["audio"])
        check_inputs(video, audio)
        probe_audio(audio)  # no audio track: fail now, with its own message
        ctx.progress.finish("fetch")

    def faces(ctx: WorkContext) -> None:
        video = _local(ctx, ctx.work["video"])
        with closing(_engine(settings, ctx.job.options)) as engine:
            analysis = analyse_video(video, engine, _face(ctx.job.options),
                                     settings.detect_every, ctx.progress)
        path = ctx.folder / "analysis.pkl"
        # Written and read only by this platform's own workers, inside its own store.
        path.write_bytes(pickle.dumps(analysis, protocol=pickle.HIGHEST_PROTOCOL))
        key = _work_key(ctx, "analysis.pkl")
        ctx.store.put_file(key, path)
        ctx.work["analysis"] = key
        ctx.work.setdefault("owned", []).append(key)

    def identity(ctx: WorkContext) -> None:
        """restore: auto: this footage's own person, trained on the footage itself."""
        from lipdub.restore.identity import IdentityStore
        from lipdub.restore.identity_training import train_identity
        from lipdub.restore.train import TrainConfig

        trained = train_identity(
            [_local(ctx, ctx.work["video"])], f"job-{ctx.job.id}",
            IdentityStore(ctx.folder / "identity"),
            TrainConfig(steps=settings.restore_steps, batch_size=settings.restore_batch_size,
                        device=settings.device),
            selector=_face(ctx.job.options),
            on_step=training_progress(ctx, settings.restore_steps, 1))
        key = _work_key(ctx, "restorer.pt")
        ctx.store.put_file(key, trained.path / "restorer.pt")
        ctx.work["restorer"] = key
        ctx.work.setdefault("owned", []).append(key)

    def lip_sync(ctx: WorkContext) -> None:
        options = ctx.job.options
        video, audio = _local(ctx, ctx.work["video"]), _local(ctx, ctx.work["audio"])
        analysis = pickle.loads(_local(ctx, ctx.work["analysis"]).read_bytes())  # noqa: S301
        restorer = None
        if "restorer" in ctx.work:
            restorer = restorer_from(ctx, ctx.work["restorer"], settings)
        elif options.get("identity"):
            restorer = load_restorer(ctx, options["identity"], settings)
        output = ctx.folder / "render.mp4"
        with closing(_engine(settings, options)) as engine:
            report = render_video(video, audio, output, engine, analysis, _sync(options),
                                  ctx.progress, restorer)
        key = _work_key(ctx, "render.mp4")
        ctx.store.put_file(key, output)
        ctx.work["render"], ctx.work["timings"] = key, _timings(report)
        ctx.work.setdefault("owned", []).append(key)

    def encode(ctx: WorkContext) -> None:
        options = ctx.job.options
        container = options.get("output_format", "mp4")
        ctx.progress.start("encode", 1)
        output = ctx.folder / f"result.{container}"
        started = time.perf_counter()
        finish(_local(ctx, ctx.work["render"]), output, container,
               bool(options.get("normalise_loudness")))
        ctx.work["timings"]["stages"]["finish"] = {
            "seconds": time.perf_counter() - started, "frames": 0}
        ctx.job.stage = "upload"
        # One key per job: a stage that is killed and run again overwrites its own upload
        # (nothing orphaned); a published result is never written again, since a finished
        # job runs no stage.
        key = tenant_key(ctx.job.tenant_id, "results", ctx.job.id, f"result.{container}")
        ctx.store.put_file(key, output)
        ctx.work["result"] = key
        ctx.progress.finish("encode")

    def publish(ctx: WorkContext) -> WorkResult:
        for key in ctx.work.get("owned", []):
            ctx.store.delete(key)
        shutil.rmtree(local_copies(ctx.job.id), ignore_errors=True)
        return WorkResult(ctx.work["result"], ctx.work["timings"])

    return [Stage("probe", probe), Stage("faces", faces),
            Stage("identity", identity, applies=_restores_itself),
            Stage("lip-sync", lip_sync), Stage("encode", encode), Stage("publish", publish)]


def prune_local_copies(sessions) -> int:  # noqa: ANN001 - sessionmaker
    """Remove this machine's copies of inputs of jobs that have finished: a worker that ran
    only a job's first stages is not the one whose publish stage cleans up."""
    root = local_copies("-").parent
    folders = {p.name: p for p in root.iterdir() if p.is_dir()} if root.exists() else {}
    if not folders:
        return 0
    with sessions() as session:
        finished = list(session.scalars(select(Job.id).where(
            Job.id.in_(folders), Job.state.in_([s for s in JobState if s.terminal]))))
    for job_id in finished:
        shutil.rmtree(folders[job_id], ignore_errors=True)
    return len(finished)


def discard_work(store, job) -> None:  # noqa: ANN001 - ObjectStore, Job
    """A job that ended without publishing: remove its working artifacts and local copies
    (its inputs' uploads and any stored result stay). What the store will not delete now
    (full, down) stays listed, and the job is marked for the maintenance sweep."""
    left = []
    for key in (job.work or {}).get("owned", []):
        try:
            store.delete(key)
        except StoreUnavailableError:
            left.append(key)
    if left or job.cleanup_pending:
        job.work = {**(job.work or {}), "owned": left}
        job.cleanup_pending = bool(left)
    shutil.rmtree(local_copies(job.id), ignore_errors=True)


def collect_garbage(sessions, store) -> int:  # noqa: ANN001 - sessionmaker, ObjectStore
    """Retry the clean-up of finished jobs whose store refused it; returns how many jobs are
    clean now."""
    with sessions() as session:
        jobs = list(session.scalars(select(Job).where(Job.cleanup_pending.is_(True))
                                    .limit(100)))
        for job in jobs:
            discard_work(store, job)
        session.commit()
        return sum(not job.cleanup_pending for job in jobs)
