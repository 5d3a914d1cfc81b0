"""Liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from lipdub_gateway.deps import Db, State
from lipdub_gateway.problems import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(session: Db, state: State) -> dict:
    """Ready when the database, the object store and (with Celery) the broker answer."""
    checks = {"database": lambda: session.execute(text("select 1")),
              "storage": state.context.store.ping, "broker": state.broker_reachable}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            raise Problem(503, "Not ready", f"{name} unreachable: {exc}", "not_ready") from exc
    return {"status": "ready"}


@router.get("/metrics")
def metrics(state: State) -> Response:
    return Response(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)
