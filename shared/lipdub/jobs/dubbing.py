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
  qc      the result measured against its source, shot by shot (sync, pauses, seam, colour,
          jitter) -> the QC report beside the result (not for patches: no picture to measure)
  publish the result becomes the job's; the working artifacts are removed
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack, closing
from pathlib import Path
from typing import TYPE_CHECKING

from lipdub.blend import BlendMode
from lipdub.config import Settings
from lipdub.engines.registry import analysis_engine, build_engines, resolve_engine_name
from lipdub.faces.select import FaceSelector
from lipdub.jobs.cast_work import analysis_source, cast_faces, performers, stage_cast
from lipdub.jobs.identities import load_restorer, restorer_from, training_progress
from lipdub.jobs.inputs import InputKind, input_kind
from lipdub.jobs.review import base_result
from lipdub.jobs.runner import Stage, WorkContext, WorkResult, _suffix
from lipdub.jobs.sound_work import make_sound
from lipdub.jobs.workfiles import local_copies, work_key
from lipdub.media.finish import finish
from lipdub.media.formats import check_progressive, read_format
from lipdub.media.probe import probe_audio, probe_video
from lipdub.output_profiles import OutputProfile, master_suffix
from lipdub.storage import tenant_key
from lipdub.sync import SyncMode

# The media work (pipeline, segments, analysis files; the face models and torch behind
# them) is imported by the stages that run it: the gateway builds job plans from this
# module and must start without them.
if TYPE_CHECKING:
    from lipdub.pipeline import Span


def _engine(s: Settings, options: dict):  # noqa: ANN202 - LipSyncEngine
    return _engines(s, options.get("engine", "auto"), 1)[0]


def _engines(s: Settings, name: str, count: int) -> list:
    return build_engines(count, name, s.wav2lip_checkpoint, s.device, s.wav2lip_batch_size,
                         s.inference, s.served_wav2lip, s.cpu_runtime, s.model_cache_dir)


def _cast(job) -> bool:  # noqa: ANN001 - Job
    return bool((job.options or {}).get("cast"))


def _sync(options: dict) -> SyncMode:
    # A master keeps every frame of its source: the dialogue is padded or cut to it.
    return SyncMode.SILENCE if _master(options) \
        else SyncMode(options.get("sync_mode", "cut_off"))


def _master(options: dict) -> bool:
    """A master (match) or a master's patches (patch): the source's own format."""
    return options.get("output_profile") in (OutputProfile.MATCH, OutputProfile.PATCH)


def _patches(options: dict) -> bool:
    return options.get("output_profile") == OutputProfile.PATCH


def _dialogue(options: dict):  # noqa: ANN202 - media.master.Dialogue
    from lipdub.media.master import Dialogue

    return Dialogue(options.get("replace_audio_stream"), options.get("dialogue_language"))


def _face(options: dict) -> FaceSelector:
    return FaceSelector.parse(options.get("face", "largest"))


def _ranges(options: dict, video: Path):  # noqa: ANN202 - list[FrameRange] | None
    """The output frames to dub (None: all of them), checked against the video's rate;
    the video is probed only when the job names ranges. (Their own lines are in the
    job's sound already: the probe stage laid them in.)"""
    from lipdub.ranges import parse_ranges

    specs = options.get("ranges")
    return parse_ranges(specs, probe_video(video).fps) if specs else None


def _timings(report) -> dict:  # noqa: ANN001 - DubReport
    return {"seconds_total": report.seconds_total, "output_frames": report.output_frames,
            "face_frames": report.face_frames, "passthrough_frames": report.passthrough_frames,
            "outside_ranges": report.outside_ranges,
            "source_format": report.source_format,
            "stages": {k: {"seconds": v.seconds, "frames": v.frames}
                       for k, v in report.stages.items()},
            "warnings": report.warnings}


def _merged(parts: list[dict]) -> dict:
    """The timings of a dub rendered in segments: frames and seconds summed (seconds are
    worker-seconds: segments run side by side)."""
    counted = ("seconds_total", "output_frames", "face_frames", "passthrough_frames",
               "outside_ranges")
    merged: dict = {**dict.fromkeys(counted, 0), "stages": {}, "warnings": [],
                    "source_format": parts[0].get("source_format", "") if parts else ""}
    for part in parts:
        for key in counted:
            merged[key] += part.get(key, 0)  # parts stored before ranges have none
        for stage, timing in part["stages"].items():
            total = merged["stages"].setdefault(stage, {"seconds": 0.0, "frames": 0})
            total["seconds"] += timing["seconds"]
            total["frames"] += timing["frames"]
        merged["warnings"] += [w for w in part["warnings"] if w not in merged["warnings"]]
    return merged


def _stage_input(ctx: WorkContext, uri: str, name: str) -> str:
    """The object-store key of an input: an upload is already stored; anything else is
    fetched once and stored with the job's working files."""
    if input_kind(uri) is InputKind.UPLOAD:
        return ctx.inputs.upload(uri, ctx.job.tenant_id, ctx.session).storage_key
    return ctx.keep(ctx.fetch(uri, name), name + _suffix(uri))


def _restores_itself(job) -> bool:  # noqa: ANN001 - Job
    return (job.options or {}).get("restore") == "auto"


def dub_stages(settings: Settings, check_inputs: Callable[[Path, Path], None]) -> list[Stage]:
    """The stages of a dub, with this worker's settings (engine weights, device, limits).
    The engine is resolved once, in probe, and recorded in the job's work: every later
    stage, on whichever worker, uses that one."""

    def engine_of(ctx: WorkContext) -> str:
        # Jobs probed before the engine was recorded resolve it now.
        return ctx.work.get("engine") or resolve_engine_name(
            ctx.job.options.get("engine", "auto"), settings.wav2lip_checkpoint,
            settings.inference)

    def probe(ctx: WorkContext) -> None:
        ctx.progress.start("fetch", 2)
        ctx.work["engine"] = engine_of(ctx)
        ctx.work["video"] = _stage_input(ctx, ctx.job.video_uri, "video")
        ctx.progress.advance("fetch")
        options = ctx.job.options
        if _cast(ctx.job):
            # A wrong reuse_analysis fails now (admission checked it: this is a retry).
            analysis_source(ctx.session, ctx.job.tenant_id, ctx.job.video_uri, options)
            stage_cast(ctx, lambda uri, name: _stage_input(ctx, uri, name))
        if ctx.job.audio_uri is not None:
            ctx.work["audio"] = _stage_input(ctx, ctx.job.audio_uri, "audio")
        video = ctx.local(ctx.work["video"])
        info = probe_video(video)
        source = read_format(video)
        ctx.work["source_format"] = source.to_dict()
        check_progressive(video, source)
        if _master(options):  # what the source allows, said before any work
            from lipdub.media.master import plan_match

            plan_match(source, info, _dialogue(options))
            # The result: the master itself, or the patches' timeline and files, zipped.
            ctx.work["result_suffix"] = ".zip" if _patches(options) else master_suffix(video)
        ranges = None
        if options.get("ranges"):  # wrong ranges fail now, not after the analysis
            from lipdub.ranges import check_characters, parse_ranges

            check_characters(options["ranges"],
                             [c["character"] for c in options.get("cast") or []])
            ranges = parse_ranges(options["ranges"], info.fps, locate=lambda uri, what:
                                  ctx.local(_stage_input(ctx, uri, what.replace(" ", "-"))))
        if options.get("base_job"):  # a new version: the earlier result fills the rest
            ctx.work["base"] = base_result(ctx.session, ctx.job)
        make_sound(ctx, info, ranges)
        audio = ctx.local(ctx.work["audio"])
        check_inputs(video, audio)
        probe_audio(audio)  # no audio track: fail now, with its own message
        if ranges:
            from lipdub.audio.samples import decoded_once, output_plan
            from lipdub.ranges import check_inside

            plan = output_plan(info, decoded_once(audio), _sync(options))
            check_inside(ranges, plan.frame_count, info.fps)
        ctx.progress.finish("fetch")

    def faces(ctx: WorkContext) -> None:
        from lipdub.analysis_io import save_analysis
        from lipdub.pipeline import analyse_video

        if _cast(ctx.job):
            cast_faces(ctx, engine_of(ctx), settings.detect_every)
            return
        video = ctx.local(ctx.work["video"])
        with closing(analysis_engine(engine_of(ctx))) as engine:
            analysis = analyse_video(video, engine, _face(ctx.job.options),
                                     settings.detect_every, ctx.progress)
        path = ctx.folder / "analysis.npz"
        save_analysis(analysis, path)
        ctx.work["analysis"] = ctx.keep(path, path.name)

    def identity(ctx: WorkContext) -> None:
        """restore: auto: this footage's own person, trained on the footage itself."""
        from lipdub.restore.gate import skipped_warning
        from lipdub.restore.identity import IdentityStore
        from lipdub.restore.identity_training import train_identity
        from lipdub.restore.train import TrainConfig

        trained = train_identity(
            [ctx.local(ctx.work["video"])], f"job-{ctx.job.id}",
            IdentityStore(ctx.folder / "identity"),
            TrainConfig(steps=settings.restore_steps, batch_size=settings.restore_batch_size,
                        device=settings.device),
            selector=_face(ctx.job.options),
            on_step=training_progress(ctx, settings.restore_steps, 1))
        if trained.rejection:  # the quality gate: it would make this footage's faces worse
            ctx.work["warnings"] = [skipped_warning("The restorer trained on this footage",
                                                    trained.rejection)]
            return
        ctx.work["restorer"] = ctx.keep(trained.path / "restorer.pt", "restorer.pt")

    def render(ctx: WorkContext, output: Path, span: Span | None = None):  # noqa: ANN202
        from lipdub.analysis_io import load_analysis
        from lipdub.audio.samples import decoded_once
        from lipdub.pipeline import render_cast, render_video

        options = ctx.job.options
        video, audio = ctx.local(ctx.work["video"]), ctx.local(ctx.work["audio"])
        ranges = _ranges(options, video)
        base = ctx.local(ctx.work["base"]) if "base" in ctx.work else None
        blend = BlendMode(options.get("blend", BlendMode.STANDARD))
        warnings = list(ctx.work.get("warnings", []))
        out = None
        if _master(options):
            from lipdub.outputs import Match, Patches

            out = (Patches if _patches(options) else Match).plan(
                read_format(video), probe_video(video), output, _dialogue(options))
        if _cast(ctx.job):
            engines = _engines(settings, engine_of(ctx), len(options["cast"]))
            with ExitStack() as stack:
                for engine in engines:
                    stack.enter_context(closing(engine))
                report = render_cast(video, audio, output, performers(ctx, engines, blend),
                                     _sync(options), ctx.progress, None, span,
                                     decoded_once(audio), ranges, out, base=base)
            report.warnings += warnings
            return report
        analysis = load_analysis(ctx.local(ctx.work["analysis"]))
        restorer = None
        if "restorer" in ctx.work:
            restorer = restorer_from(ctx, ctx.work["restorer"], settings)
        elif options.get("identity"):
            restorer, skipped = load_restorer(ctx, options["identity"], settings)
            warnings += [skipped] if skipped else []
        with closing(_engine(settings, {**options, "engine": engine_of(ctx)})) as engine:
            report = render_video(video, audio, output, engine, analysis, _sync(options),
                                  ctx.progress, restorer, span, decoded_once(audio), ranges,
                                  out, base, blend)
        report.warnings += warnings
        return report

    def segments(ctx: WorkContext) -> list[dict] | None:
        """A film longer than a segment runs in segments on any number of workers; each
        writes its picture under a key the job owns from now on (removed whatever
        happens)."""
        from lipdub.analysis_io import load_analysis
        from lipdub.audio.samples import decoded_once
        from lipdub.segments import plan_for

        if _master(ctx.job.options):
            return None  # a master renders whole: segments are joined as H.264
        video, audio = ctx.local(ctx.work["video"]), ctx.local(ctx.work["audio"])
        # A cast's faces share one shot list: any of them plans the cuts.
        first = ctx.work["cast_analyses"][0] if _cast(ctx.job) else ctx.work["analysis"]
        analysis = load_analysis(ctx.local(first))
        _, _, planned = plan_for(video, decoded_once(audio), analysis,
                                 _sync(ctx.job.options), settings.segment_seconds)
        if len(planned) < 2:
            return None  # short: rendered whole, with no segmenting overhead
        owned = ctx.work.setdefault("owned", [])
        specs = []
        for segment in planned:
            key = work_key(ctx.job, f"segment-{segment.index:05d}.mp4")
            owned += [key] if key not in owned else []
            specs.append({"start": segment.start, "stop": segment.stop,
                          "frames": len(segment.frames), "key": key})
        return specs

    def segment(ctx: WorkContext, spec: dict) -> dict:
        from lipdub.pipeline import Span

        output = ctx.folder / "segment.mp4"
        report = render(ctx, output, Span(range(spec["start"], spec["stop"])))
        ctx.store.put_file(spec["key"], output)
        return {"key": spec["key"], "stop": spec["stop"], "timings": _timings(report)}

    def lip_sync(ctx: WorkContext) -> None:
        from lipdub.segments import join_segments

        output = ctx.folder / ("render" + ctx.work.get("result_suffix", ".mp4"))
        if _patches(ctx.job.options):  # a timeline, its EDL and a folder: one zip
            edit = ctx.folder / "edit" / "edit.otio"
            edit.parent.mkdir(exist_ok=True)
            timings = _timings(render(ctx, edit))
            shutil.make_archive(str(output.with_suffix("")), "zip", edit.parent)
        elif ctx.parts is None:
            timings = _timings(render(ctx, output))
        else:  # every segment done: join them, the new audio muxed once
            started = time.perf_counter()
            parts = [ctx.local(part["key"]) for part in ctx.parts]
            fps = probe_video(ctx.local(ctx.work["video"])).fps
            join_segments(parts, ctx.local(ctx.work["audio"]), ctx.parts[-1]["stop"], fps,
                          output)
            timings = _merged([part["timings"] for part in ctx.parts])
            timings["stages"]["join"] = {"seconds": time.perf_counter() - started,
                                         "frames": ctx.parts[-1]["stop"]}
            timings["segments"] = len(ctx.parts)
        ctx.work["render"], ctx.work["timings"] = ctx.keep(output, output.name), timings

    def encode(ctx: WorkContext) -> None:
        options = ctx.job.options
        container = options.get("output_format", "mp4")
        ctx.progress.start("encode", 1)
        started = time.perf_counter()
        if "result_suffix" in ctx.work:  # a master is the render itself, every stream kept
            output = ctx.local(ctx.work["render"])
            container = ctx.work["result_suffix"][1:]
            if options.get("review_copy"):
                from lipdub.media.finish import review_copy

                review = ctx.folder / "review.mp4"
                source = read_format(ctx.local(ctx.work["video"]))
                review_copy(output, _dialogue(options).index_in_master(source), review)
                key = tenant_key(ctx.job.tenant_id, "results", ctx.job.id, "review.mp4")
                ctx.store.put_file(key, review)
                ctx.work["review"] = key
        else:
            output = ctx.folder / f"result.{container}"
            finish(ctx.local(ctx.work["render"]), output, container,
                   bool(options.get("normalise_loudness")))
        ctx.work["timings"]["stages"]["finish"] = {
            "seconds": time.perf_counter() - started, "frames": 0}
        ctx.progress.finish("encode")
        ctx.progress.start("upload", 1)
        # One key per job: a stage that is killed and run again overwrites its own upload
        # (nothing orphaned); a published result is never written again, since a finished
        # job runs no stage.
        key = tenant_key(ctx.job.tenant_id, "results", ctx.job.id, f"result.{container}")
        ctx.store.put_file(key, output)
        ctx.work["result"] = key
        ctx.progress.finish("upload")

    def qc(ctx: WorkContext) -> None:
        from lipdub.jobs.qc_work import measure_job

        video = ctx.local(ctx.work["video"])
        measure_job(ctx, _sync(ctx.job.options), _ranges(ctx.job.options, video),
                    settings.qc_thresholds)

    def qc_split(ctx: WorkContext) -> list[dict] | None:
        """A film's QC in parts of a segment's length, on any number of workers."""
        from lipdub.jobs.qc_work import qc_parts

        return qc_parts(ctx, _sync(ctx.job.options), settings.segment_seconds)

    def qc_part(ctx: WorkContext, spec: dict) -> dict:
        from lipdub.jobs.qc_work import qc_part as measure_part

        video = ctx.local(ctx.work["video"])
        return measure_part(ctx, spec, _sync(ctx.job.options), _ranges(ctx.job.options, video))

    def publish(ctx: WorkContext) -> WorkResult:
        for key in ctx.work.get("owned", []):
            ctx.store.delete(key)
        shutil.rmtree(local_copies(ctx.job.id), ignore_errors=True)
        return WorkResult(ctx.work["result"], ctx.work["timings"])

    # Phase weights: each phase's share of a typical dub's time (the progress bar).
    return [Stage("probe", probe, phases=(("fetch", 5),)),
            Stage("faces", faces, phases=(("faces", 30),)),
            Stage("identity", identity, applies=_restores_itself,
                  phases=(("crops", 5), ("train", 30))),
            Stage("lip-sync", lip_sync, phases=(("lip-sync", 57),), split=segments,
                  part=segment),
            Stage("encode", encode, phases=(("encode", 6), ("upload", 1))),
            Stage("qc", qc, applies=lambda job: settings.qc_enabled
                  and not _patches(job.options or {}), phases=(("qc", 15),),
                  split=qc_split, part=qc_part),
            Stage("publish", publish)]
