"""`lipdub serve`, the embedded single-machine platform, end to end through real processes:
`lipdub keys create`, then the gateway and its in-process worker under uvicorn, on SQLite and
a local folder: upload -> submit -> progress -> result, a signed webhook received and
verified, tenant isolation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.http_helpers import free_port
from tests.media_helpers import inspect_output
from tests.test_platform_api import _Receiver

LIPDUB = [sys.executable, "-m", "lipdub.cli"]


def test_lipdub_serve_end_to_end(tmp_path: Path, talking_clip: Path,
                                 short_voice: Path) -> None:
    secret = "whsec_" + __import__("base64").b64encode(b"serve-test-secret-123").decode()
    receiver = _Receiver(secret)
    env = {**os.environ, "LIPDUB_DATABASE_URL": f"sqlite:///{tmp_path / 'lipdub.db'}",
           "LIPDUB_STORAGE_DIR": str(tmp_path / "store"), "LIPDUB_WEBHOOK_SECRET": secret,
           "LIPDUB_ALLOW_HTTP_URLS": "true", "LIPDUB_URL_ALLOW_HOSTS": '["127.0.0.1"]'}
    env.pop("LIPDUB_EXECUTOR", None)
    keys = [subprocess.run([*LIPDUB, "keys", "create", name], env=env, check=True,
                           capture_output=True, text=True).stdout.strip()
            for name in ("studio", "other")]
    assert all(k.startswith("ldk_") for k in keys)
    port = free_port()
    server = subprocess.Popen([*LIPDUB, "serve", "--port", str(port)], env=env,
                              start_new_session=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        auth, other = ({"Authorization": f"Bearer {k}"} for k in keys)
        with httpx.Client(base_url=base, timeout=30) as http:
            ids = []
            for path in (talking_clip, short_voice):
                r = http.post("/v1/uploads", headers=auth,
                              files={"file": (path.name, path.read_bytes())})
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            r = http.post("/v1/jobs", headers=auth, json={
                "video": ids[0], "audio": ids[1], "options": {"engine": "warp"},
                "webhook_url": receiver.url})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            seen_progress = set()
            while time.time() < deadline + 120:
                job = http.get(f"/v1/jobs/{job_id}", headers=auth).json()
                seen_progress.add(job["progress"])
                if job["state"] in ("succeeded", "failed", "canceled"):
                    break
                time.sleep(0.1)
            assert job["state"] == "succeeded" and job["error_code"] is None, job
            assert max(seen_progress) == 100 and len(seen_progress) >= 3  # progress moved
            result = http.get(f"/v1/jobs/{job_id}/result", headers=auth)
            assert result.status_code == 200
            (tmp_path / "out.mp4").write_bytes(result.content)
            assert abs(inspect_output(tmp_path / "out.mp4").video_seconds - 2.5) < 0.1
            assert http.get(f"/v1/jobs/{job_id}", headers=other).status_code == 404
            assert http.get(f"/v1/jobs/{job_id}/result", headers=other).status_code == 404
            while not receiver.received and time.time() < deadline + 150:
                time.sleep(0.1)
            message_id, payload = receiver.received[0]  # signature verified on receipt
            assert message_id == f"msg_{job_id}_succeeded"
            assert payload["data"]["state"] == "succeeded"
            assert "lipdub_jobs_submitted_total 1.0" in http.get("/metrics").text
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
        receiver.server.shutdown()
    assert server.returncode in (0, -signal.SIGTERM), output
