"""Liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from lipdub.db.models import check_writable
from lipdub_gateway.deps import Db, State
from lipdub_gateway.problems import Problem, problem_responses

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
def readyz(session: Db, state: State) -> dict:
    """Ready when the database and the object store take writes and (with Celery) the broker
    answers; otherwise 503 naming every part that is not available."""
    checks = {"database": lambda: check_writable(session),
              "storage": state.context.store.ping, "broker": state.broker_reachable}
    failing = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            failing[name] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    if failing:
        raise Problem(503, "Not ready", "; ".join(f"{name} unavailable ({why})"
                                                  for name, why in failing.items()),
                      "not_ready", {"Retry-After": "10"})
    return {"status": "ready"}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: State) -> Response:
    """Prometheus text format: the gateway's own metrics, then the process's (the job
    metrics of jobs it runs itself, webhooks it sends; CPU, memory, open files)."""
    return Response(generate_latest(state.registry) + generate_latest(REGISTRY),
                    media_type=CONTENT_TYPE_LATEST)
