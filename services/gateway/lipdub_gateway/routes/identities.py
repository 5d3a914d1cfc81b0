"""Identities: train a person's restorer from footage (a job), list, read, delete."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.concurrency import run_in_threadpool

from lipdub.db.models import Identity
from lipdub.jobs.identities import (
    TRAIN_KIND,
    IdentityNotFoundError,
    delete_identity,
    get_identity,
    list_identities,
)
from lipdub.jobs.service import JobRequest
from lipdub_gateway.admission import admit
from lipdub_gateway.deps import Caller, Db, IdempotencyKey, State
from lipdub_gateway.problems import not_found, problem_responses
from lipdub_gateway.schemas import IdentityCreate, IdentityOut, JobOut

router = APIRouter(prefix="/v1/identities", tags=["identities"],
                   responses=problem_responses(400, 401, 413, 422, 503))


@router.post("", status_code=202, responses={
    **problem_responses(409, 429),
    200: {"model": JobOut, "description": "A replay: the training job first made with "
          "this Idempotency-Key and body"}})
async def train(body: IdentityCreate, state: State, tenant: Caller, response: Response,
                idempotency_key: IdempotencyKey = None) -> JobOut:
    """Train (or retrain, as a new version) a person's restorer from their footage. The
    answer is the training job; the identity appears when it succeeds."""
    options = {"name": body.name, "videos": body.videos, "search": body.search,
               "steps": body.steps}
    request = JobRequest(body.videos[0], "", options, body.webhook_url, body.metadata,
                         kind=TRAIN_KIND)
    job, created = await run_in_threadpool(admit, state, request, body.videos, tenant,
                                           idempotency_key)
    if not created:
        response.status_code = 200
    return job


def owned_identity(name: str, session: Db, tenant: Caller) -> Identity:
    try:
        return get_identity(session, tenant.id, name)
    except IdentityNotFoundError as exc:
        raise not_found("identity", name) from exc


OwnedIdentity = Annotated[Identity, Depends(owned_identity)]


@router.get("")
def index(session: Db, tenant: Caller) -> list[IdentityOut]:
    return [IdentityOut.of(i) for i in list_identities(session, tenant.id)]


@router.get("/{name}", responses=problem_responses(404))
def read(found: OwnedIdentity) -> IdentityOut:
    return IdentityOut.of(found)


@router.delete("/{name}", status_code=204, responses=problem_responses(404))
def delete(found: OwnedIdentity, session: Db, state: State) -> Response:
    delete_identity(session, state.context.store, found.tenant_id, found.name)
    return Response(status_code=204)
