"""A cast's share of a dub job's stages: its lines staged with the inputs (probe), the scene
analysed and the faces cast (faces), one performer per character (lip-sync). The scene is
kept under the tenant's own prefix beyond the job, so that a corrected cast re-uses it
(`reuse_analysis`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from lipdub.blend import BlendMode
from lipdub.cast import Character, parse_face
from lipdub.db.models import Job, JobState, is_id
from lipdub.errors import BadOptionError
from lipdub.storage import tenant_key

if TYPE_CHECKING:
    from lipdub.jobs.runner import WorkContext
    from lipdub.pipeline import Performer


def scene_key(job: Job) -> str:
    return tenant_key(job.tenant_id, "analyses", job.id, "scene.npz")


def analysis_source(session: Session, tenant_id: str, video_uri: str,
                    options: dict) -> Job | None:
    """The earlier job whose scene a job re-uses (None: analyse afresh); a job of another
    tenant (the same answer as a missing one), of another video, or unfinished is
    refused."""
    earlier_id = options.get("reuse_analysis")
    if not earlier_id:
        return None
    earlier = session.get(Job, earlier_id) if is_id(earlier_id) else None
    if (earlier is None or earlier.tenant_id != tenant_id
            or earlier.video_uri != video_uri or earlier.state is not JobState.SUCCEEDED
            or not (earlier.options or {}).get("cast")):
        raise BadOptionError(
            f"options.reuse_analysis: '{earlier_id}' is not a finished cast job of yours on "
            "the same video.", "Give the id of such a job, or leave reuse_analysis out.")
    return earlier


def stage_cast(ctx: WorkContext, stage_input: Callable[[str, str], str]) -> None:
    """Each character's files in the object store."""
    staged = []
    for i, member in enumerate(ctx.job.options["cast"]):
        face = member.get("face")
        staged.append({
            "line": stage_input(member["audio"], f"cast-{i}-line"),
            "original": stage_input(member["original"], f"cast-{i}-original")
            if member.get("original") else None,
            "boxes": stage_input(face["boxes"], f"cast-{i}-boxes")
            if isinstance(face, dict) and "boxes" in face else None})
    ctx.work["cast"] = staged


def characters(ctx: WorkContext) -> list[Character]:
    cast = []
    for i, (member, files) in enumerate(zip(ctx.job.options["cast"], ctx.work["cast"],
                                            strict=True)):
        face = member.get("face")
        if files["boxes"]:
            face = {"boxes": str(ctx.local(files["boxes"]))}
        cast.append(Character(
            member["character"], ctx.local(files["line"]),
            parse_face(face, f"cast[{i}].face"),
            ctx.local(files["original"]) if files["original"] else None))
    return cast


def cast_faces(ctx: WorkContext, engine_name: str, detect_every: int) -> None:
    """The faces stage of a cast's job: the scene (stored, or re-used), the cast, and
    each character's face studied by its engine."""
    from lipdub.analysis_io import load_scene, save_analysis, save_scene
    from lipdub.cast_dub import cast_scene, study_cast
    from lipdub.engines.registry import analysis_engine
    from lipdub.media.probe import probe_video
    from lipdub.scene import analyse_scene

    info = probe_video(ctx.local(ctx.work["video"]))
    job = ctx.job
    earlier = analysis_source(ctx.session, job.tenant_id, job.video_uri, job.options)
    if earlier is not None:
        scene = load_scene(ctx.local(scene_key(earlier)))
    else:
        scene = analyse_scene(info, detect_every, ctx.progress)
        path = ctx.folder / "scene.npz"
        save_scene(scene, path)
        ctx.store.put_file(scene_key(ctx.job), path)
    cast = characters(ctx)
    casting = cast_scene(scene, cast)
    engines = [analysis_engine(engine_name) for _ in cast]
    try:
        performers = study_cast(info, casting, cast, engines)
    finally:
        for engine in engines:
            engine.close()
    keys = []
    for i, performer in enumerate(performers):
        path = ctx.folder / f"analysis-{i}.npz"
        save_analysis(performer.analysis, path)
        keys.append(ctx.keep(path, path.name))
    ctx.work["cast_analyses"] = keys
    ctx.work["cast_report"] = casting.report()
    ctx.work["warnings"] = [*ctx.work.get("warnings", []), *casting.warnings]


def performers(ctx: WorkContext, engines: list,  # noqa: ANN001
               blend: BlendMode = BlendMode.STANDARD) -> list[Performer]:
    """One per character, in cast order: its engine, its face, its own line."""
    from lipdub.analysis_io import load_analysis
    from lipdub.audio.samples import decoded_once
    from lipdub.pipeline import Performer

    return [Performer(engine, load_analysis(ctx.local(key)),
                      decoded_once(ctx.local(files["line"])), member["character"], blend)
            for engine, key, files, member in zip(engines, ctx.work["cast_analyses"],
                                                  ctx.work["cast"], ctx.job.options["cast"],
                                                  strict=True)]

