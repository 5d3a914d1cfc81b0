"""Identities on the platform: a tenant's named people, each with a trained restorer stored
in the object store (versioned, never overwritten). Training runs as a job of kind
"identity.train" so it gets the job machinery: queue, progress, cancel, retries, webhooks."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from lipdub.config import Settings
from lipdub.db.models import Identity
from lipdub.errors import InputNotFoundError
from lipdub.jobs.runner import Stage, WorkContext, WorkResult
from lipdub.restore.gate import rejection, skipped_warning
from lipdub.restore.names import check_name
from lipdub.storage import ObjectStore, tenant_key

TRAIN_KIND = "identity.train"
FILES = ("restorer.pt", "identity.json", "metrics.jsonl")


class IdentityNotFoundError(InputNotFoundError):
    code = "identity_not_found"


def get_identity(session: Session, tenant_id: str, name: str) -> Identity:
    found = session.scalar(select(Identity).where(Identity.tenant_id == tenant_id,
                                                  Identity.name == name))
    if found is None:  # another tenant's identity does not exist either
        raise IdentityNotFoundError(f"No identity named '{name}'.",
                                    "Train it first: POST /v1/identities.")
    return found


def list_identities(session: Session, tenant_id: str) -> list[Identity]:
    return list(session.scalars(select(Identity).where(Identity.tenant_id == tenant_id)
                                .order_by(Identity.name)))


def delete_identity(session: Session, store: ObjectStore, tenant_id: str, name: str) -> None:
    identity = get_identity(session, tenant_id, name)
    for version in range(1, identity.version + 1):
        for file in FILES:
            store.delete(tenant_key(tenant_id, "identities", name, f"v{version}", file))
    session.delete(identity)
    session.commit()


def identity_training_stages(train_steps: int, restore_batch_size: int,
                             device: str) -> list[Stage]:
    """The work of an identity.train job: fetch the footage, train (optionally searching the
    space), store the version's files, then record it (the row last: no half identity)."""
    from lipdub.restore.identity_training import train_identity
    from lipdub.restore.train import TrainConfig

    def train(ctx: WorkContext) -> WorkResult:
        options, tenant_id = ctx.job.options, ctx.job.tenant_id
        name = check_name(options["name"])
        videos = options["videos"]
        ctx.progress.start("fetch", len(videos))
        paths = []
        for n, uri in enumerate(videos):
            paths.append(ctx.fetch(uri, f"video{n}"))
            ctx.progress.advance("fetch")
        steps = int(options.get("steps") or train_steps)
        from lipdub.restore.identity import IdentityStore

        local = IdentityStore(ctx.folder / "identities")
        trained = train_identity(
            paths, name, local, TrainConfig(steps=steps, batch_size=restore_batch_size,
                                            device=device),
            search=bool(options.get("search")),
            on_step=training_progress(ctx, steps, 3 if options.get("search") else 1))
        ctx.progress.start("upload", len(FILES))
        existing = ctx.session.scalar(select(Identity).where(
            Identity.tenant_id == tenant_id, Identity.name == name))
        version = (existing.version if existing else 0) + 1
        prefix = tenant_key(tenant_id, "identities", name, f"v{version}")
        for file in FILES:
            if (trained.path / file).exists():
                ctx.store.put_file(f"{prefix}/{file}", trained.path / file)
            ctx.progress.advance("upload")
        info = json.loads((trained.path / "identity.json").read_text())
        info["version"] = version
        if existing is None:
            existing = Identity(tenant_id=tenant_id, name=name)
            ctx.session.add(existing)
        existing.version, existing.storage_key, existing.info = version, prefix, info
        return WorkResult(None, {"identity": name, "version": version},
                          f"identity {name} v{version} stored")

    return [Stage("train", train,
                  phases=(("fetch", 5), ("crops", 15), ("train", 75), ("upload", 4)))]


def training_progress(ctx: WorkContext, steps: int, runs: int):  # noqa: ANN201
    """Training's (what, done, total) callbacks as the job's 'crops' and 'train' passes."""
    labels: list[str] = []
    crops_done = [0]

    def on_step(what: str, done: int, total: int) -> None:
        if what == "crops":
            if ctx.job.phase != "crops":
                ctx.progress.start("crops", total)
            ctx.progress.advance("crops", done - crops_done[0])
            crops_done[0] = done
            return
        if what not in labels:  # the next setting of a search starts
            labels.append(what)
            if len(labels) == 1:
                ctx.progress.start("train", steps * runs)
        ctx.progress.advance("train", 1)

    return on_step


def load_restorer(ctx: WorkContext, name: str, settings: Settings):  # noqa: ANN201
    """The tenant's identity restorer, fetched from the object store into the job's
    folder, and None; or, for a version the quality gate rejected, no restorer and the
    warning that says why."""
    identity = get_identity(ctx.session, ctx.job.tenant_id, name)
    reasons = rejection(identity.info or {})
    if reasons:
        return None, skipped_warning(f"Identity {name!r} v{identity.version}", reasons)
    return restorer_from(ctx, f"{identity.storage_key}/restorer.pt", settings), None


def restorer_from(ctx: WorkContext, key: str, settings: Settings):  # noqa: ANN201
    """A restorer from a stored restorer.pt (an identity's, or one trained for the job),
    run where the settings say (in this process, or on the model server)."""
    from lipdub.inference.backends import is_remote, sovqae_restorer
    from lipdub.inference.local import pick_device
    from lipdub.restore.model import load_sovqae

    local = ctx.folder / "restorer.pt"
    ctx.store.get_file(key, local)
    device = "cpu" if is_remote(settings.inference) else pick_device(settings.device)
    return sovqae_restorer(settings.inference, load_sovqae(Path(local), device), device,
                           settings.restore_batch_size, settings.resident_restorers)
