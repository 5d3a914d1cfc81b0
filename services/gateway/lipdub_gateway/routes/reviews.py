"""Review of a finished dub: decisions per shot, the job's review state and its versions,
and new versions that re-run shots with other options."""

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from lipdub.jobs.review import ShotRef, review_state
from lipdub_gateway.deps import Caller, Db, OwnedJob, State
from lipdub_gateway.problems import problem_responses
from lipdub_gateway.reviewing import decide, new_version
from lipdub_gateway.schemas import JobOut, ReviewIn, ReviewOut, VersionCreate

router = APIRouter(prefix="/v1/jobs", tags=["review"],
                   responses=problem_responses(400, 401, 404, 413, 422, 503))


@router.get("/{job_id}/review")
def read_review(job: OwnedJob, session: Db) -> ReviewOut:
    """The review state (pending, changes_requested, approved), each shot's current
    decision with its QC flags, and the job's versions."""
    return ReviewOut(**review_state(session, job))


@router.post("/{job_id}/reviews")
def add_review(body: ReviewIn, job: OwnedJob, session: Db, state: State) -> ReviewOut:
    """Approve or reject one shot (a rejection gives its reason); a change of the job's
    review state is sent to its webhook as job.review."""
    return ReviewOut(**decide(state, session, job, ShotRef(body.shot, body.face),
                              body.decision, body.reason, body.severity, body.comment))


@router.post("/{job_id}/versions", status_code=201, responses=problem_responses(429))
async def add_version(body: VersionCreate, job: OwnedJob, tenant: Caller,
                      state: State) -> JobOut:
    """A new version of the job: `shots` re-run with `options` (engine, face, identity);
    every other frame is this job's result, and their approvals carry over."""
    overrides = body.options.model_dump(exclude_none=True, mode="json")
    return await run_in_threadpool(new_version, state, tenant, job, body.shots, overrides)
