"""`lipdub batch`: a manifest run on this machine with no server (every bad line reported
before anything runs; a re-run skips what is done), and submitted to a live server and
watched to the end."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from lipdub.cli import app
from lipdub.config import Settings
from lipdub.samples.talking import ClipSpec
from tests.live_gateway import live_gateway
from tests.test_platform_api import _upload, embedded_database

TINY = ClipSpec(width=320, height=180, face_height=80, face_centre=(0.5, 0.42))
runner = CliRunner()


def test_batch_run_checks_everything_first_then_runs_and_resumes(tmp_path: Path,
                                                                 samples) -> None:  # noqa: ANN001
    clip = samples.clip("batch-tiny", 1.0, seed=3, spec=TINY)
    voice = samples.audio("batch-voice", 1.0, seed=4)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join([
        json.dumps({"video": str(clip), "audio": str(voice), "output_name": "a"}),
        json.dumps({"video": str(tmp_path / "missing.mp4"), "audio": str(voice)}),
        json.dumps({"video": str(clip), "audio": str(voice), "output_name": "a"}),
        json.dumps({"video": str(clip), "audio": str(voice), "options": {"speed": 2}}),
        "{not json"]))
    result = runner.invoke(app, ["batch", "run", str(bad), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    for line, reason in [(2, "not a file"), (3, "already used on line 1"),
                         (4, "unknown option 'speed'"), (5, "not valid JSON")]:
        assert re.search(rf"line {line}: .*{reason}", result.output), result.output
    assert not (tmp_path / "out").exists()  # nothing ran
    good = tmp_path / "good.csv"
    good.write_text(f"video,audio,output_name,options\n{clip},{voice},first,"
                    f"\"{{\"\"engine\"\": \"\"warp\"\"}}\"\n{clip},{voice},second,\n")
    result = runner.invoke(app, ["batch", "run", str(good), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["first.mp4", "second.mp4"]
    assert "2 dubbed, 0 already done" in result.output
    again = runner.invoke(app, ["batch", "run", str(good), "--out", str(tmp_path / "out")])
    assert again.exit_code == 0 and "0 dubbed, 2 already done" in again.output


def test_batch_submit_and_watch_against_a_server(tmp_path: Path, samples) -> None:  # noqa: ANN001
    from fastapi.testclient import TestClient

    from lipdub_gateway.app import create_app

    url, _, key = embedded_database(tmp_path)
    settings = Settings(database_url=url, storage_dir=tmp_path / "store")
    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings, run_jobs=False)) as client:
        clip = _upload(client, auth, samples.clip("batch-tiny", 1.0, seed=3, spec=TINY))
        voice = _upload(client, auth, samples.audio("batch-voice", 1.0, seed=4))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join(json.dumps({"video": clip, "audio": voice,
                                              "output_name": f"n{i}",
                                              "options": {"engine": "warp"}})
                                  for i in range(3)))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"video": clip}) + "\n" + json.dumps({"audio": voice}))
    with live_gateway(settings, run_jobs=True) as base:
        common = ["--server", base, "--key", key]
        refused = runner.invoke(app, ["batch", "submit", str(broken), *common])
        assert refused.exit_code == 2
        assert "line 1" in refused.output and "line 2" in refused.output
        submitted = runner.invoke(app, ["batch", "submit", str(manifest), *common])
        assert submitted.exit_code == 0, submitted.output
        batch_id = re.search(r"batch (\w+): 3 items accepted", submitted.output)[1]
        watched = runner.invoke(app, ["batch", "status", batch_id, "--watch", "--every",
                                      "0.5", *common])
        assert watched.exit_code == 0, watched.output
        assert "100%" in watched.output and "3 succeeded" in watched.output
        missing = runner.invoke(app, ["batch", "status", "nope", *common])
        assert missing.exit_code == 2
