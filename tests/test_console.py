"""The review console: sign-in, its pages, form protection and tenant isolation (here), and
a reviewer's whole round in a real headless Chromium (test_a_reviewer_...)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import httpx
from fastapi.testclient import TestClient

from lipdub.config import Settings
from lipdub.db.session import session_factory
from lipdub.jobs.keys import create_key
from lipdub.qc.thresholds import QCThresholds
from lipdub.samples.dialogue import Dialogue
from lipdub_gateway.app import create_app
from tests.live_gateway import live_gateway
from tests.test_platform_api import _upload, _wait, embedded_database

BROWSER = Path(__file__).parent / "browser"
ARTIFACTS = Path(__file__).parent.parent / "out" / "test-artifacts" / "console"


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def _sign_in(client: TestClient, key: str) -> str:
    """Signs the client in; the form token its pages carry."""
    page = client.get("/console/login")
    r = client.post("/console/login", data={"api_key": key, "csrf": _csrf(page.text)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and key not in cookie
    return _csrf(client.get("/console").text)


def test_sign_in_forms_and_isolation(tmp_path: Path, talking_clip: Path,
                                     short_voice: Path) -> None:
    url, _, key = embedded_database(tmp_path)
    with session_factory(url)() as session:
        _, other_key = create_key(session, "studio-other")
    settings = Settings(database_url=url, storage_dir=tmp_path / "store", qc_enabled=True)
    with TestClient(create_app(settings)) as client, \
            TestClient(create_app(settings, run_jobs=False)) as intruder:
        auth = {"Authorization": f"Bearer {key}"}
        job = client.post("/v1/jobs", headers=auth, json={
            "video": _upload(client, auth, talking_clip),
            "audio": _upload(client, auth, short_voice), "options": {"engine": "warp"},
            "metadata": {"title": "ep1 <img src=x onerror=alert(1)>"}}).json()
        assert _wait(client, auth, job["id"])["state"] == "succeeded"

        # Signed out: every page sends the browser to the sign-in form.
        for path in ("/console", f"/console/jobs/{job['id']}", "/console/jobs.json"):
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"] == "/console/login", path
        # The sign-in form's own token is needed, and a wrong key is told apart.
        page = client.get("/console/login")
        assert client.post("/console/login", data={"api_key": key, "csrf": "0" * 64},
                           follow_redirects=False).status_code == 403
        bad = client.post("/console/login", data={"api_key": "nope", "csrf": _csrf(page.text)})
        assert bad.status_code == 200 and "not valid" in bad.text
        token = _sign_in(client, key)

        listing = client.get("/console")
        assert job["id"] in listing.text
        # What a tenant wrote is shown as text, never as markup.
        assert "ep1 &lt;img src=x" in listing.text and "<img src=x" not in listing.text
        assert client.get("/console?state=failed").text.count(job["id"]) == 0
        live = client.get("/console/jobs.json").json()
        assert live[0]["id"] == job["id"] and live[0]["progress"] == 100
        page = client.get(f"/console/jobs/{job['id']}")
        assert page.status_code == 200 and 'id="timeline"' in page.text
        for which in ("source", "result", "qc"):
            media = client.get(f"/console/jobs/{job['id']}/media/{which}")
            assert media.status_code == 200 and len(media.content) > 100, which
        ranged = client.get(f"/console/jobs/{job['id']}/media/result",
                            headers={"Range": "bytes=0-99"})
        assert ranged.status_code == 206 and len(ranged.content) == 100  # players seek
        thumb = client.get(f"/console/jobs/{job['id']}/shots/0/thumb.jpg")
        assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"

        review = f"/console/jobs/{job['id']}/shots/0/review"
        # A form without its token, or with another session's, is refused.
        assert client.post(review, data={"decision": "approved"}).status_code == 403
        other_token = _sign_in(intruder, other_key)
        assert client.post(review, data={"decision": "approved", "csrf": other_token}
                           ).status_code == 403
        # Another tenant's job does not exist for them, page or file or form.
        for path in (f"/console/jobs/{job['id']}", f"/console/jobs/{job['id']}/media/result",
                     f"/console/jobs/{job['id']}/shots/0/thumb.jpg"):
            assert intruder.get(path).status_code == 404, path
        assert intruder.post(review, data={"decision": "approved", "csrf": other_token}
                             ).status_code == 404
        assert job["id"] not in intruder.get("/console").text
        # With its token, the decision is recorded.
        done = client.post(review, data={"decision": "approved", "csrf": token},
                           follow_redirects=False)
        assert done.status_code == 303
        state = client.get(f"/v1/jobs/{job['id']}/review", headers=auth).json()
        assert state["state"] == "approved" and state["shots"][0]["decision"] == "approved"
        # Signing out ends the session.
        client.post("/console/logout", data={"csrf": token})
        assert client.get("/console", follow_redirects=False).status_code == 303


def test_a_reviewer_signs_in_watches_rejects_reruns_and_approves_in_a_browser(
        tmp_path: Path, dialogue: Dialogue, new_voice: Path) -> None:
    assert (BROWSER / "node_modules").is_dir(), (
        "the test browser is not installed: run bash scripts/test.sh")
    url, _, key = embedded_database(tmp_path)
    # Strict thresholds: every shot is flagged (jitter), as a reviewer would meet them.
    settings = Settings(database_url=url, storage_dir=tmp_path / "store",
                        qc_enabled=True, qc_thresholds=QCThresholds(jitter_max_ratio=0.01))
    auth = {"Authorization": f"Bearer {key}"}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with live_gateway(settings, run_jobs=True) as base, \
            httpx.Client(base_url=base, headers=auth, timeout=60) as api:
        ids = [_upload(api, {}, path) for path in (dialogue.path, new_voice)]
        job = api.post("/v1/jobs", json={
            "video": ids[0], "audio": ids[1],
            "options": {"engine": "warp", "sync_mode": "silence"},
            "metadata": {"title": "scene 12"}}).json()
        deadline = time.time() + 300
        while api.get(f"/v1/jobs/{job['id']}").json()["state"] not in (
                "succeeded", "failed"):
            assert time.time() < deadline
            time.sleep(0.5)
        done = subprocess.run(
            ["node", "console_review.mjs", base, key, job["id"], str(ARTIFACTS)],
            cwd=BROWSER, capture_output=True, text=True, timeout=420)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        seen = json.loads(done.stdout.splitlines()[-1])
        first = api.get(f"/v1/jobs/{job['id']}/review").json()
        versions = first["versions"]
        second = api.get(f"/v1/jobs/{versions[-1]['id']}/review").json()
    # What the browser saw: the job listed, both players playing, a flagged timeline.
    assert seen["listed"] and seen["played"]["source"] > 0.3 and seen["played"]["dub"] > 0.3
    assert abs(seen["played"]["source"] - seen["played"]["dub"]) < 0.5  # in step
    assert seen["timeline"]["shots"] == 3 and seen["timeline"]["flagged"] >= 1
    # What the API shows after: the rejection on v1, v2 approved throughout.
    assert first["state"] == "changes_requested"
    assert [s["reason"] for s in first["shots"] if s["decision"] == "rejected"] == ["sync"]
    assert [v["version"] for v in versions] == [1, 2]
    assert second["state"] == "approved" and len(second["shots"]) == 3
    for name in ("1-jobs", "2-job", "3-rejected", "4-version", "5-approved"):
        assert (ARTIFACTS / f"{name}.png").stat().st_size > 10_000, name
