"""A dub job runs as stages (probe -> faces -> lip-sync -> encode -> publish), each taking
the job from the database, leaving artifacts in the object store and handing the job on. A
worker that dies inside a stage costs only that stage: the job resumes there, and no stage
done is run again."""

from __future__ import annotations

import time
from pathlib import Path

from lipdub.config import Settings
from lipdub.db.models import Job, JobState
from lipdub.jobs.context import JobContext
from lipdub.jobs.service import JobRequest, claim, create_job
from lipdub.storage import LocalStore
from tests.http_helpers import Site
from tests.media_helpers import inspect_output
from tests.test_platform_api import embedded_database


def test_stages_hand_off_and_resume_after_a_dead_worker(tmp_path: Path, talking_clip: Path,
                                                        short_voice: Path, site: Site) -> None:
    url, tenant_id, _ = embedded_database(tmp_path)
    # Inputs are URLs the platform fetches: http to loopback is allowed here for the test.
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", job_lease_s=1.0,
                        allow_http_urls=True, url_allow_hosts=["127.0.0.1"], qc_enabled=True)
    context = JobContext.from_settings(settings)
    store: LocalStore = context.store
    ran: list[str] = []
    plans = context.plans()
    for stage in plans["dub"]:  # count every stage run
        original = stage.work
        object.__setattr__(stage, "work", lambda ctx, f=original, n=stage.name: (
            ran.append(n), f(ctx))[1])
    context.plans = lambda: plans  # type: ignore[method-assign]
    with context.sessions() as session:
        site.script["/v.mp4"] = [(200, {}, talking_clip.read_bytes())]
        site.script["/a.wav"] = [(200, {}, short_voice.read_bytes())]
        job, _ = create_job(session, tenant_id, JobRequest(
            f"{site.base}/v.mp4", f"{site.base}/a.wav", {"engine": "warp"}))
        job_id = job.id

    first = context.run_stage(job_id)
    assert (first.state, first.next_stage) == (JobState.RUNNING, "faces")
    with context.sessions() as session:
        job = session.get(Job, job_id)
        assert job.lease_until is None and job.stage == "faces"  # free for any worker
        assert job.work["done"] == ["probe"] and store.exists(job.work["video"])
        # A worker takes the faces stage and dies in it (its lease is never renewed).
        assert claim(session, job_id, lease_s=0.5) is not None
    assert context.run_stage(job_id).state is None  # held by the 'dead' worker for now
    time.sleep(0.6)
    outcome = context.run_stage(job_id)  # lease ran out: faces runs again, probe does not
    assert outcome.next_stage == "lip-sync"
    while outcome.next_stage is not None:
        outcome = context.run_stage(job_id)
    assert outcome.state is JobState.SUCCEEDED
    assert ran == ["probe", "faces", "lip-sync", "encode", "qc", "publish"]
    assert site.hits == {"/v.mp4": 1, "/a.wav": 1}  # each input fetched once for all stages
    with context.sessions() as session:
        job = session.get(Job, job_id)
        assert job.work["done"] == ["probe", "faces", "lip-sync", "encode", "qc", "publish"]
        messages = [(e.state, e.message) for e in job.events]
        assert messages == [(JobState.QUEUED, "job accepted"), (JobState.RUNNING, "started"),
                            (JobState.RUNNING, "resumed after an interrupted stage"),
                            (JobState.SUCCEEDED, "result stored")]
        out = tmp_path / "out.mp4"
        store.get_file(job.result_key, out)
        assert inspect_output(out).frames > 0
        assert not any(store.exists(k) for k in job.work["owned"])  # working copies removed


def test_local_input_copies_of_finished_jobs_are_pruned(tmp_path: Path,
                                                        monkeypatch) -> None:  # noqa: ANN001
    """A worker that ran only a job's first stages still drops its copies of the inputs once
    the job has finished elsewhere."""
    import tempfile

    from lipdub.jobs.service import transition
    from lipdub.jobs.workfiles import local_copies, prune_local_copies

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    url, tenant_id, _ = embedded_database(tmp_path)
    context = JobContext.from_settings(Settings(database_url=url,
                                                storage_dir=tmp_path / "store"))
    with context.sessions() as session:
        ids = [create_job(session, tenant_id, JobRequest(f"s3://b/{n}.mp4", "s3://b/a.wav",
                                                         {}))[0].id for n in range(2)]
        finished = session.get(Job, ids[0])
        transition(session, finished, JobState.RUNNING, "started")
        transition(session, finished, JobState.SUCCEEDED, "done")
    for job_id in ids:
        local_copies(job_id).mkdir(parents=True)
        (local_copies(job_id) / "video.mp4").write_bytes(b"x")
    assert prune_local_copies(context.sessions) == 1
    assert not local_copies(ids[0]).exists() and local_copies(ids[1]).exists()


def test_a_long_stage_that_writes_no_progress_keeps_its_lease(tmp_path: Path) -> None:
    """An encode or an upload can outlast the lease without a progress write: the lease is
    kept by its own thread, so no second worker claims the job meanwhile."""
    import threading

    from lipdub.jobs.runner import Stage, WorkResult

    url, tenant_id, _ = embedded_database(tmp_path)
    context = JobContext.from_settings(Settings(database_url=url,
                                                storage_dir=tmp_path / "store",
                                                job_lease_s=1.5))
    plans = {"dub": [Stage("encode", lambda _ctx: time.sleep(4.5)),
                     Stage("publish", lambda _ctx: WorkResult(None, {}))]}
    context.plans = lambda: plans  # type: ignore[method-assign]
    with context.sessions() as session:
        job_id = create_job(session, tenant_id, JobRequest("upload:a", "upload:b", {}))[0].id
    worker = threading.Thread(target=context.run_stage, args=(job_id,))
    worker.start()
    time.sleep(3.0)  # twice the lease, and not a progress write
    with context.sessions() as session:
        assert claim(session, job_id, lease_s=1.5) is None  # still held
    worker.join()
    assert context.run_stage(job_id).state is JobState.SUCCEEDED


def test_stages_declare_progress_and_the_engine_is_chosen_once(
        tmp_path: Path, talking_clip: Path, short_voice: Path, site: Site,
        random_wav2lip_checkpoint: Path, monkeypatch) -> None:  # noqa: ANN001
    """The job's `stage` names plan stages only (finer steps are its `phase`); progress
    rises through the spans the stages declare; the engine is resolved in probe and kept
    (the analysis pass loads no Wav2Lip weights); the analysis passes between stages as a
    versioned file, not a pickle."""
    import lipdub.models.wav2lip as wav2lip_module
    from lipdub.analysis_io import load_analysis
    from lipdub.jobs.runner import progress_spans

    url, tenant_id, _ = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store",
                        wav2lip_checkpoint=random_wav2lip_checkpoint, allow_http_urls=True,
                        url_allow_hosts=["127.0.0.1"], qc_enabled=True)
    context = JobContext.from_settings(settings)
    plan = context.plans()["dub"]
    spans = progress_spans([s for s in plan if s.name != "identity"])
    assert list(spans) == ["fetch", "faces", "lip-sync", "encode", "upload", "qc"]
    assert spans["fetch"][0] == 0 and spans["qc"][1] == 99
    bounds = list(spans.values())
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))  # contiguous
    loads: list[Path] = []
    original = wav2lip_module.load_wav2lip_checkpoint
    monkeypatch.setattr(wav2lip_module, "load_wav2lip_checkpoint",
                        lambda path, *a, **k: (loads.append(path), original(path, *a, **k))[1])
    site.script["/v.mp4"] = [(200, {}, talking_clip.read_bytes())]
    site.script["/a.wav"] = [(200, {}, short_voice.read_bytes())]
    with context.sessions() as session:
        job, _ = create_job(session, tenant_id, JobRequest(
            f"{site.base}/v.mp4", f"{site.base}/a.wav", {"engine": "auto"}))
        job_id = job.id
    seen, progress, loads_after = [], [], {}
    outcome = context.run_stage(job_id)
    while True:
        with context.sessions() as session:
            job = session.get(Job, job_id)
            seen.append((job.stage, job.phase))
            progress.append(job.progress)
            done = job.work["done"][-1]
            loads_after[done] = len(loads)
            if done == "faces":
                assert job.work["engine"] == "wav2lip" and job.work["analysis"].endswith(".npz")
                analysis = load_analysis(context.store.root / job.work["analysis"])
                assert analysis.track.frame_count > 0
        if outcome.next_stage is None:
            break
        outcome = context.run_stage(job_id)
    assert outcome.state is JobState.SUCCEEDED
    plan_names = {s.name for s in plan} | {"done"}
    assert all(stage in plan_names for stage, _ in seen), seen
    assert all(phase is None for _, phase in seen)  # cleared between stages
    assert progress == sorted(progress) and progress[-1] == 100
    assert loads_after["probe"] == loads_after["faces"] == 0  # no weights for the analysis
    assert loads_after["lip-sync"] == 1
