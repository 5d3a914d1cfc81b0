"""Review over the API: decisions per shot, the review state and its webhook, and a new
version that re-runs one shot and keeps the others from the earlier result."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from lipdub.media.decode import iter_frames
from lipdub.media.probe import probe_video
from lipdub.samples.dialogue import Dialogue
from lipdub_gateway.app import create_app
from tests.test_platform_api import _upload, _wait, hooked_platform


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(iter_frames(probe_video(path)))).astype(np.float32)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / max(np.mean((a - b) ** 2), 1e-9)))


def test_review_a_dub_shot_by_shot_and_rerun_a_rejected_shot(
        tmp_path: Path, dialogue: Dialogue, new_voice: Path) -> None:
    receiver, settings, auth = hooked_platform(tmp_path, b"review-secret-012345")
    with TestClient(create_app(settings)) as client:
        video, audio = _upload(client, auth, dialogue.path), _upload(client, auth, new_voice)
        first = client.post("/v1/jobs", headers=auth, json={
            "video": video, "audio": audio,  # the whole 9 s: all three shots
            "options": {"engine": "warp", "sync_mode": "silence"},
            "webhook_url": receiver.url}).json()
        first = _wait(client, auth, first["id"])
        assert first["state"] == "succeeded" and first["version"] == 1, first
        review = client.get(f"/v1/jobs/{first['id']}/review", headers=auth).json()
        assert review["state"] == "pending" and [s["shot"] for s in review["shots"]] == \
            [0, 1, 2]
        assert [v["id"] for v in review["versions"]] == [first["id"]]

        def decide(job: str, shot: int, decision: str, **extra: object) -> dict:
            r = client.post(f"/v1/jobs/{job}/reviews", headers=auth,
                            json={"shot": shot, "decision": decision, **extra})
            assert r.status_code == 200, r.text
            return r.json()

        # Refused: a rejection without its reason, a shot the job does not have, a bad
        # reason code, an extra field.
        for body, status in (({"shot": 1, "decision": "rejected"}, 422),
                             ({"shot": 7, "decision": "approved"}, 422),
                             ({"shot": 1, "decision": "rejected", "reason": "mood"}, 422),
                             ({"shot": 1, "decision": "approved", "by": "me"}, 422),
                             ({"shot": -1, "decision": "approved"}, 422)):
            r = client.post(f"/v1/jobs/{first['id']}/reviews", headers=auth, json=body)
            assert r.status_code == status, (body, r.text)
        assert "needs its reason" in client.post(
            f"/v1/jobs/{first['id']}/reviews", headers=auth,
            json={"shot": 1, "decision": "rejected"}).text
        decide(first["id"], 0, "approved")
        decide(first["id"], 2, "approved", comment="good")
        review = decide(first["id"], 1, "rejected", reason="sync", severity="major",
                        comment="late on the plosives")
        assert review["state"] == "changes_requested"
        assert review["shots"][1]["reason"] == "sync"

        # Re-run shot 1 as version 2; refused shapes first.
        for body in ({"shots": []}, {"shots": [9]}, {"shots": [1], "options": {"sync_mode":
                                                                                "loop"}},
                     {"shots": [1], "options": {"engine": "nope"}}):
            r = client.post(f"/v1/jobs/{first['id']}/versions", headers=auth, json=body)
            assert r.status_code == 422, (body, r.text)
        r = client.post(f"/v1/jobs/{first['id']}/versions", headers=auth,
                        json={"shots": [1], "options": {"engine": "warp", "face": "center",
                                                        "blend": "soft"}})
        assert r.status_code == 201, r.text
        second = _wait(client, auth, r.json()["id"])
        assert second["state"] == "succeeded", second
        assert (second["version"], second["base_job"]) == (2, first["id"])
        assert (second["options"]["blend"], second["options"]["face"]) == ("soft", "center")
        shot = next(s for s in review["shots"] if s["shot"] == 1)
        kept = first["timings"]["output_frames"] - (shot["stop"] - shot["start"])
        assert second["timings"]["outside_ranges"] == kept  # taken from version 1

        review = client.get(f"/v1/jobs/{second['id']}/review", headers=auth).json()
        decisions = {s["shot"]: (s["decision"], s["carried_from"]) for s in review["shots"]}
        assert decisions == {0: ("approved", first["id"]), 1: (None, None),
                             2: ("approved", first["id"])}
        assert review["state"] == "pending"
        assert [(v["id"], v["version"]) for v in review["versions"]] == \
            [(first["id"], 1), (second["id"], 2)]
        review = decide(second["id"], 1, "approved")
        assert review["state"] == "approved"
        # The first version's line shows the second too.
        assert len(client.get(f"/v1/jobs/{first['id']}/review", headers=auth)
                   .json()["versions"]) == 2

        # Version 2's pictures outside shot 1 are version 1's (re-encoded once).
        results = []
        for job in (first, second):
            path = tmp_path / f"{job['id']}.mp4"
            path.write_bytes(client.get(f"/v1/jobs/{job['id']}/result", headers=auth).content)
            results.append(_frames(path))
        outside = np.r_[0:shot["start"], shot["stop"]:len(results[0])]
        assert _psnr(results[0][outside], results[1][outside]) > 40

        # Another tenant reaches none of it.
        other = {"X-API-Key": _other_key(settings.database_url)}
        for path in (f"/v1/jobs/{first['id']}/review",):
            assert client.get(path, headers=other).status_code == 404
        assert client.post(f"/v1/jobs/{first['id']}/reviews", headers=other,
                           json={"shot": 0, "decision": "approved"}).status_code == 404
        assert client.post(f"/v1/jobs/{first['id']}/versions", headers=other,
                           json={"shots": [1]}).status_code == 404

        deadline = time.time() + 10
        while time.time() < deadline and sum(
                b["type"] == "job.review" for _, b in receiver.received) < 2:
            time.sleep(0.1)
    receiver.server.shutdown()
    reviews = [b["data"] for _, b in receiver.received if b["type"] == "job.review"]
    assert [(r["id"], r["review_state"]) for r in reviews] == [
        (first["id"], "changes_requested"), (second["id"], "approved")]
    assert reviews[0]["rejected_shots"] == [1]


def _other_key(url: str) -> str:
    from lipdub.db.session import session_factory
    from lipdub.jobs.keys import create_key

    with session_factory(url)() as session:
        return create_key(session, "studio-other")[1]
