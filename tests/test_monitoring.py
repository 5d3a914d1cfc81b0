"""Monitoring for real: a Prometheus server (Debian's package) on loopback scrapes a running
gateway, a running Celery worker and the model server (the real Triton) while a real
Wav2Lip dub runs through them, with LipDub's alert rules loaded. Every metric the Grafana
dashboard and the alert rules query then exists in what Prometheus scraped, every query
parses and evaluates there, and the job's own figures (frames, stages, webhook, jobs ended)
add up."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
import yaml

from lipdub.config import Settings
from lipdub.inference.contract import WAV2LIP
from lipdub_model_server.triton_server import TritonServer
from tests.deploy_tools import (
    ALERTS,
    PROMETHEUS,
    alert_queries,
    dashboard_queries,
    metric_names,
    tool,
)
from tests.http_helpers import free_port
from tests.live_gateway import live_gateway
from tests.media_helpers import inspect_output
from tests.test_platform_api import _Receiver, _upload, _wait, embedded_database

REDIS_DB = 12  # a database of the machine's Redis that only this test uses
SECRET = "whsec_" + base64.b64encode(b"monitoring-test-secret-01").decode()
# Triton exports its GPU gauges only where it sees a GPU; this machine has none.
GPU_ONLY = {"nv_gpu_utilization", "nv_gpu_memory_used_bytes"}


class Prometheus:
    def __init__(self, folder: Path, targets: dict[str, str]) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "alerts.yml").write_text(ALERTS.read_text())
        config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                  "rule_files": ["alerts.yml"],
                  "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [t]}]}
                                     for job, t in targets.items()]}
        (folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = subprocess.Popen(
            [str(tool(PROMETHEUS)), f"--config.file={folder / 'prometheus.yml'}",
             f"--storage.tsdb.path={folder / 'data'}",
             f"--web.listen-address={self.url.removeprefix('http://')}"],
            stdout=(folder / "log").open("wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.time() + 60
        while True:
            assert self.process.poll() is None, (folder / "log").read_text()[-2000:]
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "prometheus did not become ready"
            time.sleep(0.2)

    def api(self, path: str, **params: str) -> object:
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10).json()
        assert answer["status"] == "success", answer
        return answer["data"]

    def value(self, query: str) -> float:
        result = self.api("query", query=query)["result"]
        return sum(float(r["value"][1]) for r in result)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


@pytest.fixture
def triton(exported_repository, tmp_path: Path) -> Iterator[TritonServer]:  # noqa: ANN001
    repository, _ = exported_repository
    server = TritonServer(repository, http_port=free_port(), grpc_port=free_port(),
                          metrics_port=free_port(), load=[WAV2LIP.name])
    server.start(log=tmp_path / "triton.log")
    yield server
    server.stop()


def test_prometheus_scrapes_the_platform_during_a_dub(
        triton: TritonServer, random_wav2lip_checkpoint: Path, talking_clip: Path,
        short_voice: Path, tmp_path: Path) -> None:
    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    redis.Redis.from_url(broker).flushdb()
    url, _, key = embedded_database(tmp_path)
    worker_metrics = free_port()
    common = {"database_url": url, "storage_dir": str(tmp_path / "s"), "broker_url": broker,
              "executor": "celery", "allow_http_urls": True,
              "url_allow_hosts": ["127.0.0.1"], "webhook_secret": SECRET,
              "inference": f"triton://{triton.grpc_url}",
              "wav2lip_checkpoint": str(random_wav2lip_checkpoint)}
    env = {**os.environ, **{f"LIPDUB_{k.upper()}": v if isinstance(v, str) else json.dumps(v)
                            for k, v in common.items()},
           "LIPDUB_WORKER_METRICS_PORT": str(worker_metrics)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "lipdub_worker.tasks", "worker", "--pool",
         "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"],
        env=env, stdout=(tmp_path / "worker.log").open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True)
    receiver = _Receiver(SECRET)
    prometheus = None
    try:
        with live_gateway(Settings(**common)) as gateway:
            host = gateway.removeprefix("http://")
            prometheus = Prometheus(tmp_path / "prometheus", {
                "lipdub-gateway": host, "lipdub-workers": f"127.0.0.1:{worker_metrics}",
                "lipdub-model-server": f"127.0.0.1:{triton.metrics_port}"})
            auth = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=gateway, timeout=30) as client:
                job_id = client.post("/v1/jobs", headers=auth, json={
                    "video": _upload(client, auth, talking_clip),
                    "audio": _upload(client, auth, short_voice),
                    "options": {"engine": "wav2lip"}, "webhook_url": receiver.url}).json()["id"]
                job = _wait(client, auth, job_id, timeout=240)
                assert job["state"] == "succeeded", (job, (tmp_path / "worker.log").read_text())
                result = tmp_path / "dubbed.mp4"
                result.write_bytes(client.get(f"/v1/jobs/{job_id}/result", headers=auth,
                                              follow_redirects=True).content)
            deadline = time.time() + 30
            while not receiver.received and time.time() < deadline:
                time.sleep(0.1)
            assert receiver.received
            # Every target is up, and has been scraped since the job ended.
            time.sleep(3)
            up = {r["metric"]["job"]: r["value"][1]
                  for r in prometheus.api("query", query="up")["result"]}
            assert up == {"lipdub-gateway": "1", "lipdub-workers": "1",
                          "lipdub-model-server": "1"}, up
            scraped = set(prometheus.api("label/__name__/values"))
            queries = dashboard_queries() + alert_queries()
            for where, query in queries:
                missing = metric_names(query) - scraped - GPU_ONLY
                assert not missing, f"{where}: {sorted(missing)} not scraped"
                prometheus.api("query", query=query)  # parses and evaluates
            # The dashboard's GPU panels are the only queries allowed to miss here.
            gpu = {w for w, q in queries if metric_names(q) & GPU_ONLY}
            assert gpu == {"GPU utilisation", "GPU memory used"}
            # The job's own figures, as Prometheus has them from the worker (the gateway's
            # /metrics also carries this test process's, from every earlier in-process test).
            # Every frame of the dub went through the lip-sync phase once.
            synced = prometheus.value(
                'lipdub_frames_processed_total{job="lipdub-workers", phase="lip-sync"}')
            assert synced == inspect_output(result).frames > 0
            assert prometheus.value('lipdub_jobs_ended_total{job="lipdub-workers", kind="dub", '
                                    'outcome="succeeded"}') == 1
            stages = {r["metric"]["stage"] for r in prometheus.api(
                "query", query='lipdub_stage_duration_seconds_count{job="lipdub-workers"}'
            )["result"]}
            assert {"probe", "faces", "lip-sync", "encode", "publish"} <= stages
            assert prometheus.value('lipdub_webhook_attempts_total{job="lipdub-workers", '
                                    'result="delivered"}') == 1
            assert prometheus.value("lipdub_jobs_submitted_total") == 1
            assert prometheus.value('lipdub_inference_batch_size_count{job="lipdub-workers", '
                                    'backend="triton-grpc", model="wav2lip"}') > 0
            assert prometheus.value("nv_inference_request_success") > 0  # Triton's own
            assert prometheus.value("lipdub_broker_up") == 1
            assert prometheus.value('lipdub_queue_depth{queue="celery"}') == 0
            # The alert rules loaded and evaluate; none fires on a healthy platform.
            rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
            assert len(rules) == len(alert_queries())
            assert all(r["health"] == "ok" for r in rules), rules
            assert prometheus.api("alerts")["alerts"] == []
    finally:
        if prometheus is not None:
            prometheus.stop()
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        receiver.server.shutdown()
        redis.Redis.from_url(broker).flushdb()


def test_queue_depth_reads_each_queue_and_says_when_the_broker_is_down() -> None:
    from lipdub_gateway.queue_depth import QueueDepth

    broker = f"redis://127.0.0.1:6379/{REDIS_DB}"
    client = redis.Redis.from_url(broker)
    client.flushdb()
    client.rpush("gpu", "a", "b", "c")
    try:
        families = {f.name: f for f in QueueDepth(broker, {"gpu"}).collect()}
        depth = {s.labels["queue"]: s.value for s in families["lipdub_queue_depth"].samples}
        assert depth == {"celery": 0, "gpu": 3}
        assert families["lipdub_broker_up"].samples[0].value == 1
        down = {f.name: f for f in QueueDepth("redis://127.0.0.1:9/0", {"gpu"}).collect()}
        assert down["lipdub_queue_depth"].samples == []
        assert down["lipdub_broker_up"].samples[0].value == 0
    finally:
        client.flushdb()


def test_local_inference_is_measured_like_a_served_one(random_wav2lip_checkpoint: Path) -> None:
    """The embedded default and GPU workers running the models in-process show on the same
    dashboard panels as a model server: latency and items per request, backend "local"."""
    import numpy as np
    import torch
    from prometheus_client import REGISTRY

    from lipdub.inference.backends import LOCAL, wav2lip_predictor
    from lipdub.inference.contract import SOVQAE_PREFIX
    from lipdub.inference.export import example_batch
    from lipdub.restore.model import SOVQAE, SOVQAEConfig
    from lipdub.restore.stage import Restorer

    def count(model: str, metric: str = "lipdub_inference_batch_size") -> float:
        return REGISTRY.get_sample_value(f"{metric}_sum", {"backend": LOCAL, "model": model}
                                         ) or 0.0

    before = count(WAV2LIP.name)
    predictor = wav2lip_predictor(LOCAL, random_wav2lip_checkpoint, "cpu")
    predictor(*example_batch(WAV2LIP, 5))
    assert count(WAV2LIP.name) - before == 5  # the load's warm-up call is not counted
    torch.manual_seed(0)
    restorer = Restorer.local(SOVQAE(SOVQAEConfig(resolution=32, latent_size=8,
                                                  base_channels=8)).eval(), "cpu", 4)
    before = count(SOVQAE_PREFIX)
    restorer.restore_crops([np.zeros((40, 40, 3), np.uint8)] * 6)
    assert count(SOVQAE_PREFIX) - before == 6
    assert count(SOVQAE_PREFIX, "lipdub_inference_seconds") > 0


def test_a_second_pool_process_on_the_metrics_port_warns_instead_of_dying(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import socket

    from lipdub_worker import tasks

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # the port the first process serves on
        taken.listen()
        monkeypatch.setattr(tasks.settings, "worker_metrics_port", taken.getsockname()[1])
        tasks._serve_metrics.__wrapped__()
    assert "metrics not served by this pool process" in caplog.text
