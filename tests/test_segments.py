"""A film dubbed in segments equals the same film dubbed in one piece: a generated
multi-shot clip (cuts, a shot longer than a segment, a shot with no face), cut into
segments at shot boundaries and inside the long shot, each rendered by its own engine (as
on another worker), joined by stream copy with the audio muxed once."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from lipdub.audio.samples import decoded_samples
from lipdub.engines.warp.engine import WarpEngine
from lipdub.media.probe import probe_video
from lipdub.pipeline import analyse_video, dub
from lipdub.samples.speech import SpeechSpec, speech_like, write_wav
from lipdub.samples.talking import ClipSpec, Shot, write_multishot_clip
from lipdub.segments import dub_in_segments, plan_for, shot_boundaries
from lipdub.sync import SyncMode
from tests.media_helpers import inspect_output, read_frames

SEGMENT_SECONDS = 2.5
BASE = ClipSpec(width=480, height=270, face_height=110, face_centre=(0.5, 0.42))
SHOTS = [Shot(BASE, 2.0),
         Shot(ClipSpec(width=480, height=270, no_face=True), 1.5, tint=(0.8, 0.9, 1.1)),
         Shot(ClipSpec(width=480, height=270, face_height=130, face_centre=(0.4, 0.45)), 6.0,
              tint=(1.1, 1.0, 0.85)),  # longer than a segment: cut inside it
         Shot(ClipSpec(width=480, height=270, face_height=100, face_centre=(0.6, 0.4)), 2.5,
              tint=(0.9, 1.1, 0.9))]
# Measured: joined segments against the one-piece dub, decoded frames, the worst frame
# (two encodes of the same pictures from different starting points).
MIN_PSNR_DB = 34.0
FPS = 25
STARTS = np.cumsum([0] + [round(s.seconds * FPS) for s in SHOTS])
LONG_SHOT = range(int(STARTS[2]), int(STARTS[3]))  # frames of the 6 s shot


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def film(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("film")
    seconds = sum(s.seconds for s in SHOTS)
    clip = write_multishot_clip(folder / "film.mp4", SHOTS,
                                speech_like(SpeechSpec(seconds=seconds, seed=21)))
    voice = folder / "dub.wav"
    write_wav(str(voice), speech_like(SpeechSpec(seconds=seconds - 0.3, seed=22)))
    return clip, voice


def test_segments_follow_shots_and_cut_inside_only_a_long_shot(film) -> None:  # noqa: ANN001
    clip, voice = film
    engine = WarpEngine()
    analysis = analyse_video(clip, engine)
    engine.close()
    with decoded_samples(voice) as samples:
        info, plan, segments = plan_for(clip, samples, analysis, SyncMode.SILENCE,
                                        SEGMENT_SECONDS)
    boundaries = set(shot_boundaries(analysis.track, plan).tolist())
    assert len(boundaries) == len(SHOTS) - 1  # every cut found
    limit = round(SEGMENT_SECONDS * float(info.fps))
    assert segments[0].start == 0 and segments[-1].stop == plan.frame_count
    assert all(a.stop == b.start for a, b in zip(segments, segments[1:], strict=False))
    assert all(0 < len(s.frames) <= limit for s in segments)
    assert boundaries == set(STARTS[1:-1].tolist())
    inside = [s.start for s in segments[1:] if s.start not in boundaries]
    assert inside and all(cut in LONG_SHOT for cut in inside)


def test_a_film_in_segments_equals_the_film_in_one_piece(film, tmp_path: Path) -> None:  # noqa: ANN001
    clip, voice = film
    whole = tmp_path / "whole.mp4"
    dub(clip, voice, whole, WarpEngine(), SyncMode.SILENCE)
    joined = tmp_path / "joined.mp4"
    segments = dub_in_segments(clip, voice, joined, WarpEngine, tmp_path, SyncMode.SILENCE,
                               max_seconds=SEGMENT_SECONDS)
    assert len(segments) >= 5
    a, b = read_frames(whole), read_frames(joined)
    assert len(a) == len(b) == probe_video(clip).frame_count  # none dropped or duplicated
    scores = [psnr(x, y) for x, y in zip(a, b, strict=True)]
    print(f"PSNR joined vs one piece: min {min(scores):.1f} dB, "
          f"median {np.median(scores):.1f} dB over {len(scores)} frames")
    assert min(scores) >= MIN_PSNR_DB
    for cut in (s.start for s in segments[1:]):  # each join frame is its own, not a neighbour
        assert psnr(b[cut], a[cut]) > max(psnr(b[cut], a[cut - 1]), psnr(b[cut], a[cut + 1]))
    out, one = inspect_output(joined), inspect_output(whole)
    assert out.frames == one.frames and out.fps == one.fps
    assert abs(out.audio_seconds - out.video_seconds) <= 1 / out.fps  # in sync at the end
    # Inside the long shot, the picture changes no more across a segment cut than between
    # neighbouring frames elsewhere in that shot.
    shot = range(LONG_SHOT.start + 1, LONG_SHOT.stop)
    steps = {k: float(np.abs(b[k].astype(int) - b[k - 1].astype(int)).mean()) for k in shot}
    cuts = [s.start for s in segments if s.start in shot]
    elsewhere = [v for k, v in steps.items() if k not in cuts]
    print(f"picture change at in-shot cuts {[round(steps[c], 2) for c in cuts]}, "
          f"elsewhere max {max(elsewhere):.2f}")
    assert all(steps[c] <= max(elsewhere) for c in cuts)


def test_a_long_job_runs_in_segments_once_each_and_joins(tmp_path: Path, film,  # noqa: ANN001
                                                         site) -> None:  # noqa: ANN001
    """On the platform (embedded executor): the lip-sync stage is planned into parts, each
    run once, then joined; the result is the whole film with its new audio."""
    from sqlalchemy import select

    from lipdub.config import Settings
    from lipdub.db.models import Job, JobPart, JobState, PartState
    from lipdub.jobs.context import JobContext
    from lipdub.jobs.service import JobRequest, create_job
    from tests.test_platform_api import embedded_database

    clip, voice = film
    url, tenant_id, _ = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", allow_http_urls=True,
                        url_allow_hosts=["127.0.0.1"], segment_seconds=SEGMENT_SECONDS)
    context = JobContext.from_settings(settings)
    site.script["/film.mp4"] = [(200, {}, clip.read_bytes())]
    site.script["/dub.wav"] = [(200, {}, voice.read_bytes())]
    with context.sessions() as session:
        job, _ = create_job(session, tenant_id, JobRequest(
            f"{site.base}/film.mp4", f"{site.base}/dub.wav",
            {"engine": "warp", "sync_mode": "silence"}))
        job_id = job.id
    assert context.run(job_id) is JobState.SUCCEEDED
    with context.sessions() as session:
        job = session.get(Job, job_id)
        parts = list(session.scalars(select(JobPart).where(JobPart.job_id == job_id)
                                     .order_by(JobPart.index)))
        assert len(parts) >= 5 and job.timings["segments"] == len(parts)
        assert all(p.state is PartState.DONE and p.runs == 1 for p in parts)
        assert parts[0].spec["start"] == 0 and parts[-1].spec["stop"] == 300
        assert job.progress == 100 and job.stage == "done"
        from lipdub_gateway.schemas import JobOut

        assert JobOut.of(job).eta_seconds is None  # over
        assert JobOut.of(job).segments == {"done": len(parts), "total": len(parts)}
        job.state, job.progress = JobState.RUNNING, 25  # as it was a quarter of the way
        from lipdub.db.models import utcnow

        started = next(e.at for e in job.events if e.state is JobState.RUNNING)
        elapsed = (utcnow() - started).total_seconds()
        eta = JobOut.of(job).eta_seconds
        assert eta is not None and abs(eta - 3 * elapsed) < 3  # 75 % left at 25 % so far
        session.rollback()
        out = tmp_path / "result.mp4"
        context.store.get_file(job.result_key, out)
        assert not any(context.store.exists(k) for k in job.work["owned"])  # segments gone
    result = inspect_output(out)
    assert result.frames == 300
    assert abs(result.audio_seconds - result.video_seconds) <= 1 / result.fps


def test_a_segment_whose_worker_died_is_dispatched_again(tmp_path: Path, film,  # noqa: ANN001
                                                         site) -> None:  # noqa: ANN001
    """No message needed: once the dead worker's lease on a segment runs out, the job's
    next run (the recovery sweep's) hands out exactly that segment, and the job joins."""
    from sqlalchemy import select

    from lipdub.config import Settings
    from lipdub.db.models import JobPart, JobState
    from lipdub.jobs.context import JobContext
    from lipdub.jobs.parts import claim_part
    from lipdub.jobs.service import JobRequest, create_job, stale_jobs
    from tests.test_platform_api import embedded_database

    clip, voice = film
    url, tenant_id, _ = embedded_database(tmp_path)
    context = JobContext.from_settings(Settings(
        database_url=url, storage_dir=tmp_path / "store", allow_http_urls=True,
        url_allow_hosts=["127.0.0.1"], segment_seconds=SEGMENT_SECONDS))
    site.script["/film.mp4"] = [(200, {}, clip.read_bytes())]
    site.script["/dub.wav"] = [(200, {}, voice.read_bytes())]
    with context.sessions() as session:
        job, _ = create_job(session, tenant_id, JobRequest(
            f"{site.base}/film.mp4", f"{site.base}/dub.wav",
            {"engine": "warp", "sync_mode": "silence"}))
        job_id = job.id
    outcome = context.run_stage(job_id)
    while outcome.parts is None:
        outcome = context.run_stage(job_id)
    parts = outcome.parts
    for index in parts[1:]:
        assert context.run_part(job_id, "lip-sync", index).done
    with context.sessions() as session:  # a worker takes the first segment and dies
        assert claim_part(session, job_id, "lip-sync", parts[0], lease_s=5.0) is not None
    assert context.run_stage(job_id).parts == ()  # still held: nothing to hand out
    time.sleep(5.1)
    with context.sessions() as session:
        assert job_id in stale_jobs(session, queued_for_s=0)  # the sweep picks the job up
    again = context.run_stage(job_id)
    assert again.parts == (parts[0],)  # exactly the dead worker's segment
    assert context.run_part(job_id, "lip-sync", parts[0]).last
    assert context.run(job_id) is JobState.SUCCEEDED
    with context.sessions() as session:
        runs = {p.index: p.runs for p in session.scalars(
            select(JobPart).where(JobPart.job_id == job_id))}
    assert runs[parts[0]] == 2 and all(n == 1 for i, n in runs.items() if i != parts[0])


def test_a_bounced_film_in_segments_equals_the_film_in_one_piece(
        film, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    """The voice outlasts the picture, which plays on backwards (bounce): each segment
    caches only the source frames it shows, not the whole film."""
    import lipdub.pipeline
    from lipdub.media.frame_cache import DiskFrameCache

    clip, _ = film
    voice = tmp_path / "long.wav"
    write_wav(str(voice), speech_like(SpeechSpec(seconds=16.0, seed=23)))
    whole = tmp_path / "whole.mp4"
    dub(clip, voice, whole, WarpEngine(), SyncMode.BOUNCE)
    cached: list[int] = []

    class CountingCache(DiskFrameCache):
        def __init__(self, height: int, width: int, count: int, first: int = 0) -> None:
            cached.append(count)
            super().__init__(height, width, count, first)

    monkeypatch.setattr(lipdub.pipeline, "DiskFrameCache", CountingCache)
    joined = tmp_path / "joined.mp4"
    segments = dub_in_segments(clip, voice, joined, WarpEngine, tmp_path, SyncMode.BOUNCE,
                               max_seconds=SEGMENT_SECONDS)
    a, b = read_frames(whole), read_frames(joined)
    assert len(a) == len(b) == 16 * FPS > probe_video(clip).frame_count
    scores = [psnr(x, y) for x, y in zip(a, b, strict=True)]
    print(f"PSNR bounced, joined vs one piece: min {min(scores):.1f} dB")
    assert min(scores) >= MIN_PSNR_DB
    # One cache a segment, each at most a segment and its warm-up long.
    limit = round(SEGMENT_SECONDS * FPS) + 8
    assert len(cached) == len(segments) and max(cached) <= limit, cached
