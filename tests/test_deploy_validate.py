"""The deployment files checked by the ecosystem's own tools, as an operator's CI would:
docker-compose.yml against the Compose specification's JSON schema, every Kubernetes overlay
rendered by kustomize and validated against the Kubernetes OpenAPI schemas, the Dockerfiles
linted by hadolint, the Prometheus configuration and alert rules checked and unit-tested by
promtool. Each validator is also shown to fail on a deliberately broken copy. Then what
operators expect of the files themselves: health checks, probes, resources, disruption
budgets, network policies, GPU scheduling, autoscaling, secrets as templates only."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.deploy_tools import (
    COMPOSE_SCHEMA,
    HADOLINT,
    KUBERNETES_VALIDATE,
    KUBERNETES_VERSION,
    KUSTOMIZE,
    OVERLAYS,
    PROMTOOL,
    ROOT,
    alert_queries,
    copy_repo_part,
    dashboard_queries,
    metric_names,
    render,
    run,
    tool,
)

COMPOSE = ROOT / "docker-compose.yml"


# --- Compose -----------------------------------------------------------------------------

def _compose_errors(doc: dict) -> list[str]:
    schema = json.loads(tool(COMPOSE_SCHEMA).read_text())
    validator = jsonschema.Draft201909Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]


def test_compose_file_matches_the_compose_specification() -> None:
    doc = yaml.safe_load(COMPOSE.read_text())
    assert _compose_errors(doc) == []
    # A misspelt field is caught.
    doc["services"]["gateway"]["helthcheck"] = doc["services"]["gateway"].pop("healthcheck")
    errors = _compose_errors(doc)
    assert any("helthcheck" in e for e in errors), errors


def test_compose_services_are_healthy_before_their_dependants_start() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    one_shot = {name for name, s in services.items() if "restart" not in s
                and "mc mb" in " ".join(map(str, s.get("entrypoint", [])))}
    assert one_shot == {"minio-bucket"}  # the bucket is created on start
    for name, service in services.items():
        if name not in one_shot:
            assert "healthcheck" in service, f"{name} has no health check"
        for dependency, condition in (service.get("depends_on") or {}).items():
            wanted = ("service_completed_successfully" if dependency in one_shot
                      else "service_healthy")
            assert condition == {"condition": wanted}, (name, dependency, condition)
    # Data that must outlive a container lives in named volumes.
    volumes = yaml.safe_load(COMPOSE.read_text())["volumes"]
    for name, mount in (("postgres", "/var/lib/postgresql/data"), ("redis", "/data"),
                        ("minio", "/data")):
        assert f"{name}:{mount}" in services[name]["volumes"] and name in volumes
    # Grafana starts with the data source and the dashboard provisioned.
    grafana = " ".join(services["grafana"]["volumes"])
    assert "infra/grafana/provisioning" in grafana and "infra/grafana/dashboards" in grafana


def test_every_required_compose_variable_is_in_env_example() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE.read_text()))
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text()
                   .splitlines() if line and not line.startswith("#"))
    assert required and required <= set(example), required - set(example)
    # Secrets in the example are placeholders to change, never usable values.
    for name in required:
        assert "CHANGE" in example[name], name


# --- Kubernetes --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {name: render(ROOT / "k8s" / "overlays" / name) for name in OVERLAYS}


def _validate(path: Path) -> str:
    checked = run(tool(KUBERNETES_VALIDATE), "--strict", "--no-warn", "--quiet",
                  "-k", KUBERNETES_VERSION, path)
    return checked.stdout + checked.stderr if checked.returncode else ""


CUSTOM_KINDS = {("keda.sh/v1alpha1", "ScaledObject")}  # checked below, by hand


def test_every_overlay_renders_and_validates_against_the_kubernetes_api(
        rendered: dict[str, list[dict]], tmp_path: Path) -> None:
    for name, docs in rendered.items():
        kinds = {(d["apiVersion"], d["kind"]) for d in docs}
        standard = [d for d in docs if (d["apiVersion"], d["kind"]) not in CUSTOM_KINDS]
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump_all(standard))
        assert _validate(path) == "", name
        assert ("apps/v1", "Deployment") in kinds
    # A misspelt field in a manifest is caught: kustomize still renders it, the schema not.
    broken = copy_repo_part(tmp_path / "broken", "k8s")
    gateway = broken / "k8s" / "base" / "gateway.yaml"
    gateway.write_text(gateway.read_text().replace("  replicas: 2", "  replica: 2", 1))
    docs = [d for d in render(broken / "k8s" / "overlays" / "prod")
            if (d["apiVersion"], d["kind"]) not in CUSTOM_KINDS]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    assert "'replica' was unexpected" in _validate(path)
    # ... and kustomize itself refuses a kustomization naming a file that is not there.
    (broken / "k8s" / "base" / "beat.yaml").unlink()
    assert run(KUSTOMIZE, "build", broken / "k8s" / "overlays" / "prod").returncode != 0


def _of(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _containers(doc: dict) -> list[dict]:
    return doc["spec"]["template"]["spec"]["containers"]


def test_every_workload_has_probes_and_resources(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["prod"]
    services = _of(docs, "Service")
    served = {s["spec"]["selector"]["app"] for s in services.values()}
    for name, deployment in _of(docs, "Deployment").items():
        app = deployment["spec"]["template"]["metadata"]["labels"]["app"]
        for container in _containers(deployment):
            assert "livenessProbe" in container, f"{name} has no liveness probe"
            if app in served:  # what a Service routes to says when it can take traffic
                assert "readinessProbe" in container, f"{name} has no readiness probe"
    for kind in ("Deployment", "Job"):
        for name, doc in _of(docs, kind).items():
            for container in _containers(doc):
                resources = container.get("resources", {})
                assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
                assert {"cpu", "memory"} <= set(resources.get("limits", {})), name


def test_gpu_pieces_land_on_gpu_nodes_and_ask_for_a_gpu(
        rendered: dict[str, list[dict]]) -> None:
    deployments = _of(rendered["prod"], "Deployment")
    for name in ("lipdub-worker-gpu", "lipdub-triton"):
        spec = deployments[name]["spec"]["template"]["spec"]
        assert spec["nodeSelector"], name
        assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"]), name
        resources = spec["containers"][0]["resources"]
        assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"]
    for name, deployment in deployments.items():
        if name not in ("lipdub-worker-gpu", "lipdub-triton"):
            assert "nvidia.com/gpu" not in json.dumps(deployment), name
    # dev is CPU only.
    assert "nvidia.com/gpu" not in json.dumps(rendered["dev"])


def _queues(deployment: dict) -> str:
    command = _containers(deployment)[0]["command"]
    return command[command.index("--queues") + 1]


def test_scaling_and_disruption_budgets(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["prod"]
    deployments = _of(docs, "Deployment")
    hpa = _of(docs, "HorizontalPodAutoscaler")["lipdub-gateway"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "lipdub-gateway"
    # Workers scale on the length of the queue they consume (KEDA's redis scaler).
    scaled = _of(docs, "ScaledObject")
    assert set(scaled) == {"lipdub-worker", "lipdub-worker-gpu"}
    config = _of(docs, "ConfigMap")["lipdub-config"]["data"]
    for name, scaler in scaled.items():
        target = deployments[scaler["spec"]["scaleTargetRef"]["name"]]
        trigger, = scaler["spec"]["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == _queues(target), name
        assert trigger["metadata"]["addressFromEnv"] in config  # the container's env
        assert int(trigger["metadata"]["listLength"]) >= 1
    assert config["LIPDUB_BROKER_URL"].split("//")[1].startswith(config["REDIS_ADDRESS"])
    budgets = _of(docs, "PodDisruptionBudget")
    covered = {b["spec"]["selector"]["matchLabels"]["app"] for b in budgets.values()}
    assert {"lipdub-gateway", "lipdub-worker", "lipdub-triton"} <= covered
    # Migrations run as a Job.
    migrate = _of(docs, "Job")["lipdub-migrate"]
    assert _containers(migrate)[0]["command"] == ["lipdub", "db", "upgrade"]


def test_network_policies_fence_the_workers(rendered: dict[str, list[dict]]) -> None:
    policies = _of(rendered["prod"], "NetworkPolicy")
    deny = policies["default-deny-ingress"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny  # nothing allowed by it
    workers = policies["lipdub-workers"]["spec"]
    assert set(workers["policyTypes"]) == {"Ingress", "Egress"}
    # Only the monitoring namespace reaches workers, and only their metrics port.
    ingress, = workers["ingress"]
    assert ingress["ports"] == [{"port": 9100, "protocol": "TCP"}]
    assert all("namespaceSelector" in peer for peer in ingress["from"])
    ports = {p["port"] for rule in workers["egress"] for p in rule["ports"]}
    assert ports == {53, 6379, 5432, 443, 8001, 8000}
    # The model server takes requests from workers only (and scrapes on its metrics port).
    triton = policies["lipdub-triton-ingress"]["spec"]["ingress"]
    assert {p["port"] for p in triton[0]["ports"]} == {8000, 8001}
    assert triton[0]["from"][0]["podSelector"]["matchExpressions"][0]["values"] == [
        "lipdub-worker", "lipdub-worker-gpu"]


def test_secrets_are_templates_only(rendered: dict[str, list[dict]]) -> None:
    # prod applies no Secret: the operator creates lipdub-secrets from the template.
    assert _of(rendered["prod"], "Secret") == {}
    referenced = {ref["secretRef"]["name"] for d in _of(rendered["prod"], "Deployment").values()
                  for c in _containers(d) for ref in c.get("envFrom", []) if "secretRef" in ref}
    assert referenced == {"lipdub-secrets"}
    template = (ROOT / "k8s" / "secrets.env.example").read_text()
    for name in ("LIPDUB_DATABASE_URL", "LIPDUB_WEBHOOK_SECRET", "AWS_SECRET_ACCESS_KEY"):
        assert f"{name}=" in template
    # dev's generated Secret holds placeholders only.
    dev, = _of(rendered["dev"], "Secret").values()
    for name, value in dev["data"].items():
        text = base64.b64decode(value).decode()
        assert "CHANGE-ME" in text or name == "LIPDUB_WEBHOOK_SECRET", name
    assert not list((ROOT / "k8s").rglob("secrets.env"))  # never a filled-in copy


# --- Dockerfiles ---------------------------------------------------------------------------

def test_dockerfiles_pass_hadolint(tmp_path: Path) -> None:
    files = sorted((ROOT / "infra" / "docker").glob("*Dockerfile"))
    assert len(files) == 2
    linted = run(tool(HADOLINT), "--config", ROOT / ".hadolint.yaml", *files)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    broken = tmp_path / "Dockerfile"
    broken.write_text((ROOT / "infra" / "docker" / "Dockerfile").read_text().replace(
        "apt-get install -y --no-install-recommends", "apt-get install"))
    linted = run(HADOLINT, "--config", ROOT / ".hadolint.yaml", broken)
    assert linted.returncode != 0 and "DL3014" in linted.stdout, linted.stdout


# --- Prometheus ----------------------------------------------------------------------------

def test_prometheus_config_and_alert_rules_pass_promtool(tmp_path: Path) -> None:
    infra = ROOT / "infra" / "prometheus"
    for command in (("check", "config", infra / "prometheus.yml"),
                    ("check", "rules", infra / "alerts.yml"),
                    ("test", "rules", infra / "alerts_test.yml")):
        checked = run(tool(PROMTOOL), *command)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # A bad PromQL expression is caught, and so is a rule test that no longer holds.
    broken = copy_repo_part(tmp_path, "infra") / "infra" / "prometheus"
    rules = (broken / "alerts.yml").read_text()
    (broken / "alerts.yml").write_text(rules.replace("max(lipdub_broker_up) == 0",
                                                     "max(lipdub_broker_up == 0"))
    checked = run(PROMTOOL, "check", "rules", broken / "alerts.yml")
    assert checked.returncode != 0 and "parse error" in checked.stdout + checked.stderr
    (broken / "alerts.yml").write_text(rules.replace("> 0.1\n        for: 10m",
                                                     "> 0.9\n        for: 10m"))
    checked = run(PROMTOOL, "test", "rules", broken / "alerts_test.yml")
    assert checked.returncode != 0 and "LipDubJobFailureRate" in checked.stdout + checked.stderr


def test_dashboard_and_alerts_query_lipdub_metrics() -> None:
    """The names the queries read (the scrape test checks each one exists for real)."""
    names = set().union(*(metric_names(q) for _, q in dashboard_queries() + alert_queries()))
    assert {"lipdub_queue_depth", "lipdub_jobs_ended_total", "lipdub_frames_processed_total",
            "lipdub_stage_duration_seconds_bucket", "lipdub_webhook_attempts_total",
            "lipdub_fetch_failures_total", "lipdub_inference_seconds_bucket", "up"} <= names
    assert metric_names('sum by (le) (rate(a_b{c="d e"}[5m])) / on(x) b_c offset 5m * 1e6'
                        ) == {"a_b", "b_c"}
