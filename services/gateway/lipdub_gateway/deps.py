"""Request dependencies: the gateway's state, a database session, the calling tenant (API
key -> tenant, cached), and the caller's own job (another tenant's is a 404)."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from lipdub.db.models import Job
from lipdub.jobs.keys import TenantRef, hash_key, tenant_for_key_hash
from lipdub.jobs.service import JobNotFoundError, get_job
from lipdub_gateway.problems import Problem, not_found
from lipdub_gateway.state import Gateway


async def gateway(request: Request) -> Gateway:
    # async: a plain function would cost every request a worker-thread hop
    return request.app.state.gateway


State = Annotated[Gateway, Depends(gateway)]


def db(state: State) -> Iterator[Session]:
    with state.context.sessions() as session:
        yield session


Db = Annotated[Session, Depends(db)]


async def caller(state: State, authorization: Annotated[str | None, Header()] = None,
                 x_api_key: Annotated[str | None, Header()] = None) -> TenantRef:
    key = x_api_key or (authorization or "").removeprefix("Bearer ").strip()
    digest = hash_key(key) if key else None
    found = state.known_keys.get(digest) if digest else None
    if found is None and digest:
        def lookup() -> TenantRef | None:
            with state.context.sessions() as session:
                return tenant_for_key_hash(session, digest)

        found = await run_in_threadpool(lookup)
        if found is not None:
            state.known_keys[digest] = found
    if found is None:
        raise Problem(401, "Unauthorized", "A valid API key is required "
                      "(Authorization: Bearer KEY or X-API-Key).", "unauthorized",
                      {"WWW-Authenticate": "Bearer"})
    return found


Caller = Annotated[TenantRef, Depends(caller)]

# The column holds 255 characters; a longer key is refused (422), not truncated.
IdempotencyKey = Annotated[str | None, Header(max_length=255)]


def owned_job(job_id: str, session: Db, tenant: Caller) -> Job:
    """The caller's job; another tenant's job does not exist for them (404, not 403)."""
    try:
        return get_job(session, tenant.id, job_id)
    except JobNotFoundError as exc:
        raise not_found("job", job_id) from exc


OwnedJob = Annotated[Job, Depends(owned_job)]
