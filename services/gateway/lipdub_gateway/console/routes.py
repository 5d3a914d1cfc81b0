"""The review console's pages and form actions. It acts as the tenant whose API key signed
in, through the same services as the REST API (another tenant's job is a 404 here too),
and every form action checks its form token."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from lipdub.blend import BlendMode
from lipdub.db.models import Job, JobState
from lipdub.jobs.batches import batch_jobs, counts, list_batches
from lipdub.jobs.keys import TenantRef, hash_key, tenant_for_key_hash
from lipdub.jobs.review import Decision, Reason, Severity, ShotRef, review_state
from lipdub.jobs.service import JobNotFoundError, get_job, list_jobs
from lipdub_gateway.console.session import PRE_COOKIE, SESSION_COOKIE, SESSION_SECONDS
from lipdub_gateway.console.thumbnails import thumbnail_jpeg
from lipdub_gateway.deps import State
from lipdub_gateway.files import stored_json, stored_response
from lipdub_gateway.problems import Problem
from lipdub_gateway.reviewing import decide, new_version

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
ENGINES = ("warp", "wav2lip")


class SignIn(Exception):  # noqa: N818 - a redirect, not an error
    """No valid session: pages send the browser to the sign-in form."""


def _cookie_kwargs(request: Request) -> dict:
    return {"httponly": True, "samesite": "strict", "path": "/console",
            "secure": request.url.scheme == "https"}


def console_tenant(request: Request, state: State) -> TenantRef:
    key_hash = state.console.key_hash(request.cookies.get(SESSION_COOKIE))
    if key_hash is None:
        raise SignIn
    with state.context.sessions() as session:
        tenant = tenant_for_key_hash(session, key_hash)  # a revoked key: signed out
    if tenant is None:
        raise SignIn
    return tenant


Tenant = Annotated[TenantRef, Depends(console_tenant)]


def checked_form(request: Request, state: State,
                 csrf: Annotated[str | None, Form()] = None) -> None:
    """Every form action: its token must be the one this session's pages carry."""
    if not state.console.form_token_ok(request.cookies.get(SESSION_COOKIE), csrf):
        raise Problem(403, "Form expired or forged", "Reload the page and try again.",
                      "bad_form_token")


CheckedForm = Annotated[None, Depends(checked_form)]


def _page(request: Request, state: State, name: str, **context: object) -> HTMLResponse:
    cookie = request.cookies.get(SESSION_COOKIE) or ""
    return templates.TemplateResponse(request, name, {
        "csrf": state.console.form_token(cookie) if cookie else "", **context})


def _owned(state: State, tenant: TenantRef, job_id: str) -> Job:
    with state.context.sessions() as session:
        job = _owned_in(session, tenant, job_id)
        session.expunge(job)
        return job


def _owned_in(session: Session, tenant: TenantRef, job_id: str) -> Job:
    try:
        return get_job(session, tenant.id, job_id)
    except JobNotFoundError as exc:
        raise Problem(404, "Not found", f"No job '{job_id[:100]}'.", "not_found") from exc


@router.get("/login")
def login_form(request: Request, state: State, error: str | None = None) -> HTMLResponse:
    nonce = request.cookies.get(PRE_COOKIE) or secrets.token_hex(16)
    response = templates.TemplateResponse(request, "login.html", {
        "csrf": state.console.form_token(PRE_COOKIE + nonce), "error": error})
    response.set_cookie(PRE_COOKIE, nonce, max_age=3600, **_cookie_kwargs(request))
    return response


@router.post("/login")
def login(request: Request, state: State, api_key: Annotated[str, Form(max_length=256)],
          csrf: Annotated[str | None, Form()] = None) -> Response:
    nonce = request.cookies.get(PRE_COOKIE)
    if not state.console.form_token_ok(PRE_COOKIE + nonce if nonce else None, csrf):
        raise Problem(403, "Form expired or forged", "Reload the sign-in page.",
                      "bad_form_token")
    digest = hash_key(api_key.strip())
    with state.context.sessions() as session:
        tenant = tenant_for_key_hash(session, digest)
    if tenant is None:
        return login_form(request, state, "That API key is not valid (unknown or revoked).")
    response = RedirectResponse("/console", status_code=303)
    response.set_cookie(SESSION_COOKIE, state.console.issue(digest), max_age=SESSION_SECONDS,
                        **_cookie_kwargs(request))
    response.delete_cookie(PRE_COOKIE, path="/console")
    return response


@router.post("/logout")
def logout(_form: CheckedForm) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


def _job_row(job: Job) -> dict:
    summary = (job.work or {}).get("qc_summary") or {}
    worst = summary.get("worst") or []
    return {"id": job.id, "state": job.state.value, "progress": job.progress,
            "stage": job.stage, "version": job.version, "created": job.created_at,
            "name": job.output_name or (job.job_metadata or {}).get("title") or "",
            "flagged": summary.get("flagged_shots"), "shots": summary.get("shots"),
            "worst_flag": worst[0]["flags"][0] if worst and worst[0]["flags"] else None}


@router.get("")
def jobs_page(request: Request, state: State, tenant: Tenant,
              job_state: Annotated[JobState | None, Query(alias="state")] = None
              ) -> HTMLResponse:
    with state.context.sessions() as session:
        jobs, _ = list_jobs(session, tenant.id, job_state, None, 200)
        rows = [_job_row(j) for j in jobs]
        batches, _ = list_batches(session, tenant.id, None, 20)
        batch_rows = [{"id": b.id, "total": b.total, "created": b.created_at,
                       "counts": {k: v for k, v in counts(batch_jobs(session, b)).items()
                                  if v}} for b in batches]
    return _page(request, state, "jobs.html", tenant=tenant, jobs=rows, batches=batch_rows,
                 states=[s.value for s in JobState],
                 chosen=job_state.value if job_state else "")


@router.get("/jobs.json")
def jobs_live(state: State, tenant: Tenant,
              job_state: Annotated[JobState | None, Query(alias="state")] = None
              ) -> JSONResponse:
    """What the list refreshes every few seconds: each job's state and progress."""
    with state.context.sessions() as session:
        jobs, _ = list_jobs(session, tenant.id, job_state, None, 200)
        return JSONResponse([{k: v for k, v in _job_row(j).items() if k != "created"}
                             for j in jobs])


def _qc_shots(state: State, job: Job) -> dict[tuple[int, str], dict]:
    key = (job.work or {}).get("qc")
    if key is None:
        return {}
    import json

    report = json.loads(stored_json(state.context.store, key))
    return {(s["shot"], s["face"]): s for s in report["shots"]}


@router.get("/jobs/{job_id}")
def job_page(request: Request, state: State, tenant: Tenant, job_id: str) -> HTMLResponse:
    with state.context.sessions() as session:  # the job and its review, read once
        job = _owned_in(session, tenant, job_id)
        review = review_state(session, job)
        session.expunge(job)
    figures = _qc_shots(state, job)
    shots = [{**shot, "qc": figures.get((shot["shot"], shot["face"]), {})}
             for shot in review["shots"]]
    fps = ((job.work or {}).get("source_format") or {}).get("rate", "25")
    numerator, _, denominator = str(fps).partition("/")
    frames = max([s["stop"] for s in shots], default=0)
    return _page(request, state, "job.html", tenant=tenant, job=_job_row(job),
                 options=job.options, review=review, shots=shots, frames=frames,
                 fps=float(numerator) / float(denominator or 1), engines=ENGINES,
                 blends=[b.value for b in BlendMode],
                 reasons=[r.value for r in Reason], severities=[s.value for s in Severity],
                 has_result=job.state is JobState.SUCCEEDED and bool(job.result_key),
                 error=job.error_message)


@router.get("/jobs/{job_id}/live.json")
def job_live(state: State, tenant: Tenant, job_id: str) -> JSONResponse:
    job = _owned(state, tenant, job_id)
    return JSONResponse({k: v for k, v in _job_row(job).items() if k != "created"})


@router.get("/jobs/{job_id}/media/{which}")
def media(state: State, tenant: Tenant, job_id: str, which: str,
          download: bool = False) -> Response:
    """The source (as the job stored it) or the result, for the players and downloads."""
    job = _owned(state, tenant, job_id)
    work = job.work or {}
    key = {"source": work.get("video"), "result": job.result_key,
           "qc": work.get("qc")}.get(which)
    if key is None or not state.context.store.exists(key):
        raise Problem(404, "Not found", f"Job '{job.id}' has no {which} to show.",
                      "not_found")
    name = f"{job.id}-{which}.{key.rsplit('.', 1)[-1]}"
    return stored_response(state.context.store, key, name, inline=not download)


@router.get("/jobs/{job_id}/shots/{shot}/thumb.jpg")
def thumbnail(state: State, tenant: Tenant, job_id: str, shot: int) -> Response:
    job = _owned(state, tenant, job_id)
    found = [s for s in (job.work or {}).get("qc_shots", []) if s["shot"] == shot]
    if not found or not job.result_key:
        raise Problem(404, "Not found", f"Job '{job.id}' has no shot {shot}.", "not_found")
    middle = (found[0]["start"] + found[0]["stop"]) // 2
    data = thumbnail_jpeg(state.context.store, job.result_key, middle)
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=3600"})


@router.post("/jobs/{job_id}/shots/{shot}/review")
def review_shot(state: State, tenant: Tenant, _form: CheckedForm, job_id: str, shot: int,
                decision: Annotated[Decision, Form()],
                face: Annotated[str, Form(max_length=64)] = "",
                reason: Annotated[Reason | None, Form()] = None,
                severity: Annotated[Severity | None, Form()] = None,
                comment: Annotated[str | None, Form(max_length=2000)] = None) -> Response:
    job = _owned(state, tenant, job_id)
    with state.context.sessions() as session:
        decide(state, session, session.get(Job, job.id), ShotRef(shot, face), decision,
               reason, severity, comment or None)
    return RedirectResponse(f"/console/jobs/{job.id}#shot-{shot}", status_code=303)


@router.post("/jobs/{job_id}/versions")
async def rerun(state: State, tenant: Tenant, _form: CheckedForm, job_id: str,
                shots: Annotated[list[int], Form()],
                engine: Annotated[str, Form(max_length=16)] = "",
                face: Annotated[str, Form(max_length=64)] = "",
                identity: Annotated[str, Form(max_length=64)] = "",
                blend: Annotated[str, Form(max_length=16)] = "") -> Response:
    job = await run_in_threadpool(_owned, state, tenant, job_id)
    overrides = {k: v for k, v in (("engine", engine), ("face", face),
                                   ("identity", identity), ("blend", blend)) if v}
    made = await run_in_threadpool(new_version, state, tenant, job, shots, overrides)
    return RedirectResponse(f"/console/jobs/{made.id}", status_code=303)
