"""A cast through the REST API, on SQLite and PostgreSQL: each character's line and face in
the job request, the cast reported with the job, a corrected cast re-using the stored
analysis, and bad casting refused with a 4xx naming the field."""

from __future__ import annotations

from pathlib import Path

from lipdub.media.probe import probe_video
from lipdub.samples.dialogue import Dialogue
from tests.test_platform_api import _upload, _wait, platform  # noqa: F401 - a fixture


def test_a_cast_job_dubs_each_face_with_its_own_line(
        platform, dialogue: Dialogue, new_lines: tuple[Path, Path]) -> None:  # noqa: F811
    client, a, b, settings = platform
    video = _upload(client, a, dialogue.path)
    anna, ben = (_upload(client, a, line) for line in new_lines)
    x, y = (float(v) for v in dialogue.centres[1][10])
    cast = [{"character": "anna", "audio": anna},
            {"character": "ben", "audio": ben, "face": {"frame": 10, "x": x, "y": y}}]
    r = client.post("/v1/jobs", headers=a, json={
        "video": video, "options": {"engine": "warp", "cast": cast}})
    assert r.status_code == 201, r.text
    done = _wait(client, a, r.json()["id"])
    assert done["state"] == "succeeded", done
    roles = done["cast"]
    assert len(roles) == 6 and {r["character"] for r in roles} == {"anna", "ben"}
    assert [r["source"] for r in roles if r["shot"] == 0 and r["character"] == "ben"] \
        == ["editor"]
    assert all(r["confidence"] >= 0.9 for r in roles)
    result = client.get(f"/v1/jobs/{done['id']}/result", headers=a)
    assert result.status_code == 200
    output = Path(settings.storage_dir) / "check.mp4"
    output.write_bytes(result.content)
    info = probe_video(output)
    assert info.frame_count == probe_video(dialogue.path).frame_count and info.has_audio
    # QC per character: each face against its own line, in every shot it is dubbed in.
    qc = client.get(f"/v1/jobs/{done['id']}/qc", headers=a).json()
    assert {(s["shot"], s["face"]) for s in qc["shots"]} == \
        {(r["shot"], r["character"]) for r in roles}
    assert all(s["sync"]["correlation"] > 0.5 for s in qc["shots"]), qc["shots"]
    # The scene analysis is kept under the tenant's own prefix, beyond the job.
    stored = list(Path(settings.storage_dir).glob(f"tenants/*/analyses/{done['id']}/*"))
    assert [p.name for p in stored] == ["scene.npz"]

    # The editor corrects the cast: the stored analysis is re-used, not made again.
    again = client.post("/v1/jobs", headers=a, json={
        "video": video, "options": {"engine": "warp", "reuse_analysis": done["id"],
                                    "cast": [cast[1], cast[0]]}})
    assert again.status_code == 201, again.text
    redone = _wait(client, a, again.json()["id"])
    assert redone["state"] == "succeeded", redone
    assert not (stored[0].parent.parent / redone["id"]).exists()  # no second analysis
    assert [r["character"] for r in redone["cast"]] == [r["character"] for r in roles]
    # Another tenant can neither re-use this analysis nor name these lines.
    for body in ({"video": video, "options": {"cast": cast, "reuse_analysis": done["id"]}},
                 {"video": _upload(client, b, dialogue.path),
                  "options": {"cast": cast}}):
        refused = client.post("/v1/jobs", headers=b, json=body)
        assert refused.status_code == 422, refused.text
    refused = client.post("/v1/jobs", headers=b, json={
        "video": _upload(client, b, dialogue.path),
        "options": {"cast": [{"character": "anna", "audio": _upload(client, b, new_lines[0])}],
                    "reuse_analysis": done["id"]}})
    assert refused.status_code == 422 and "not a finished cast job of yours" in refused.text



def test_bad_casting_is_refused_naming_the_field(
        platform, dialogue: Dialogue, new_lines: tuple[Path, Path]) -> None:  # noqa: F811
    client, a, _, _ = platform
    video = _upload(client, a, dialogue.path)
    line = _upload(client, a, new_lines[0])
    anna = {"character": "anna", "audio": line}
    for body, field, message in (
            ({"cast": [anna, {"character": "ben"}]}, "cast.1.audio", "Field required"),
            ({"cast": [anna, anna]}, "options", "its own name"),
            ({"cast": [anna], "face": "center"}, "options", "with a cast"),
            ({"cast": [{**anna, "face": {"frame": 3, "box": [50, 50, 10, 90]}}]},
             "cast.0.face", "x1 > x0"),
            ({"cast": [{**anna, "face": {"frame": -1, "x": 1, "y": 1}}]}, "cast.0.face",
             "greater than or equal to 0"),
            ({"cast": [{**anna, "face": {"frame": 1, "x": 1, "y": 1, "z": 1}}]},
             "cast.0.face", "Extra inputs"),
            ({"cast": [{**anna, "character": f"c{i}"} for i in range(9)]}, "cast",
             "at most 8"),
            ({"reuse_analysis": "x" * 32}, "options", "for a cast's job"),
            ({}, "body", "audio is required")):
        r = client.post("/v1/jobs", headers=a, json={"video": video, "options": body})
        assert r.status_code == 422, (body, r.text)
        assert field in r.text and message in r.text, (body, r.text)
    # Whether a point hits a face is known once the faces are found: the job fails then,
    # before any rendering, naming the field.
    r = client.post("/v1/jobs", headers=a, json={"video": video, "options": {
        "engine": "warp", "cast": [{**anna, "face": {"frame": 10, "x": 5, "y": 5}}]}})
    failed = _wait(client, a, r.json()["id"])
    assert failed["state"] == "failed" and failed["error_code"] == "bad_option", failed
    assert "cast[0].face: the point (5, 5) on frame 10 hits no face" in \
        failed["error_message"]
    assert "lip-sync" not in failed["stages_done"]


def test_ranges_with_their_own_lines_and_characters(
        platform, dialogue: Dialogue, new_lines: tuple[Path, Path],  # noqa: F811
        talking_clip: Path, new_voice: Path) -> None:
    client, a, b, _ = platform
    video, retake = _upload(client, a, talking_clip), _upload(client, a, new_voice)
    # A re-take alone: no new sound track, the film's own sound around the line.
    r = client.post("/v1/jobs", headers=a, json={"video": video, "options": {
        "engine": "warp", "ranges": [{"range": "1-2.6", "audio": retake}]}})
    assert r.status_code == 201, r.text
    done = _wait(client, a, r.json()["id"])
    assert done["state"] == "succeeded", done
    assert done["timings"]["outside_ranges"] == done["timings"]["output_frames"] - 40
    # A range of one character, with their re-take.
    scene = _upload(client, a, dialogue.path)
    anna, ben = (_upload(client, a, line) for line in new_lines)
    cast = [{"character": "anna", "audio": anna}, {"character": "ben", "audio": ben}]
    r = client.post("/v1/jobs", headers=a, json={"video": scene, "options": {
        "engine": "warp", "cast": cast,
        "ranges": [{"range": "0-2", "character": "anna", "audio": retake}]}})
    done = _wait(client, a, r.json()["id"])
    assert done["state"] == "succeeded", done
    assert done["timings"]["outside_ranges"] == done["timings"]["output_frames"] - 50
    for options, status, message in (
            ({"ranges": [{"range": "1-2", "audio": _upload(client, b, new_voice)}]}, 422,
             "not yours"),
            ({"cast": cast, "ranges": [{"range": "1-2", "character": "carl"}]}, 422,
             "'carl', who is not in the cast"),
            ({"cast": cast, "ranges": [{"range": "1-2", "audio": retake}]}, 422,
             "names no character"),
            ({"ranges": [{"range": "1-2", "character": "anna"}]}, 422, "not in the cast"),
            ({"ranges": [{"range": "1-2", "audio": retake, "gain": 2}]}, 422, "Extra")):
        r = client.post("/v1/jobs", headers=a, json={"video": video, "options": options})
        assert r.status_code == status and message in r.text, (options, r.text)


def test_a_long_cast_job_renders_in_segments(tmp_path: Path, dialogue: Dialogue,
                                              new_lines: tuple[Path, Path], site) -> None:  # noqa: ANN001
    """A cast's job on film-scale settings: its lip-sync stage is split into segments, each
    rendering every character's face, joined into the whole scene with its sound; its QC
    too, each part measuring its frames, joined into one report."""
    from sqlalchemy import select

    from lipdub.config import Settings
    from lipdub.db.models import Job, JobPart, JobState
    from lipdub.jobs.context import JobContext
    from lipdub.jobs.service import JobRequest, create_job
    from tests.test_platform_api import embedded_database

    url, tenant_id, _ = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", allow_http_urls=True,
                        url_allow_hosts=["127.0.0.1"], segment_seconds=3.0, qc_enabled=True)
    context = JobContext.from_settings(settings)
    for name, path in (("scene.mp4", dialogue.path), ("anna.wav", new_lines[0]),
                       ("ben.wav", new_lines[1])):
        site.script[f"/{name}"] = [(200, {}, path.read_bytes())]
    cast = [{"character": "anna", "audio": f"{site.base}/anna.wav"},
            {"character": "ben", "audio": f"{site.base}/ben.wav"}]
    with context.sessions() as session:
        job, _ = create_job(session, tenant_id, JobRequest(
            f"{site.base}/scene.mp4", None, {"engine": "warp", "cast": cast}))
        job_id = job.id
    assert context.run(job_id) is JobState.SUCCEEDED
    with context.sessions() as session:
        job = session.get(Job, job_id)
        parts = list(session.scalars(select(JobPart).where(JobPart.job_id == job_id)))
        segments = [p for p in parts if p.stage == "lip-sync"]
        assert len(segments) >= 3 and job.timings["segments"] == len(segments)
        # QC in three parts of 75 frames, joined: every character in every shot.
        assert sorted((p.spec["start"], p.spec["stop"]) for p in parts if p.stage == "qc") \
            == [(0, 75), (75, 150), (150, 225)]
        assert {(s["shot"], s["face"]) for s in job.work["qc_shots"]} == \
            {(shot, name) for shot in range(3) for name in ("anna", "ben")}
        assert not any(context.store.exists(p.spec["key"]) for p in parts)  # cleaned up
        assert job.timings["face_frames"] == job.timings["output_frames"] == 225
        assert len(job.work["cast_report"]) == 6
        out = tmp_path / "result.mp4"
        context.store.get_file(job.result_key, out)
    info = probe_video(out)
    assert info.frame_count == 225 and info.has_audio
