"""Job inputs, checked against the caller's tenant. An input names one of:

- an upload of the tenant's own (its id, or "upload:<id>");
- an object, `s3://bucket/key`: in the platform's bucket only under the tenant's own prefix
  (`tenants/<tenant id>/`), elsewhere only in a bucket (or bucket/prefix) the operator has
  granted to that tenant (`LIPDUB_S3_INPUT_GRANTS`);
- an https URL (the SSRF guard's business: `lipdub.netguard`).

A refused upload or object gets the same answer whether it exists or not, so a refusal
tells a caller nothing about what others have stored. Admission (gateway) and the worker
both check: a job recorded before a grant was withdrawn is refused when it runs."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from lipdub.db.models import Tenant, Upload, is_id
from lipdub.errors import InputNotFoundError, LipDubError
from lipdub.storage import ObjectStore, S3Store, tenant_key

UPLOAD_PREFIX = "upload:"
OBJECT_SCHEME = "s3://"
URL_SCHEMES = ("https://", "http://")


class InputKind(enum.StrEnum):
    UPLOAD = "upload"
    OBJECT = "object"
    URL = "url"


def input_kind(uri: str) -> InputKind:
    if uri.startswith(URL_SCHEMES):
        return InputKind.URL
    if uri.startswith(OBJECT_SCHEME):
        return InputKind.OBJECT
    return InputKind.UPLOAD


class InputNotAvailableError(LipDubError):
    code = "unknown_input"


class UploadNotReadyError(LipDubError):
    code = "upload_not_complete"


def _not_available(uri: str) -> InputNotAvailableError:
    shown = uri if len(uri) <= 200 else uri[:200] + "..."
    return InputNotAvailableError(
        f"Input '{shown}' does not exist or is not yours.",
        "Give an upload id of yours, an s3:// object under your own prefix (tenants/<your "
        "tenant id>/), or one in a bucket the operator granted you.")


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str


@dataclass(frozen=True)
class InputAccess:
    """Which inputs a tenant may name: the platform's bucket (None with a local store) and
    the operator's grants, tenant name or id -> ["bucket", "bucket/prefix", ...]."""

    platform_bucket: str | None = None
    grants: Mapping[str, list[str]] = field(default_factory=dict)
    timeout_s: float = 60.0  # for granted buckets' calls

    def object_ref(self, uri: str, tenant: Tenant) -> ObjectRef:
        bucket, _, key = uri.removeprefix(OBJECT_SCHEME).partition("/")
        segments = key.split("/")
        if (not bucket or not key or any(s in ("", ".", "..") for s in segments)
                or any(ord(c) < 32 for c in key)):
            raise _not_available(uri)
        if bucket == self.platform_bucket and key.startswith(tenant_key(tenant.id) + "/"):
            return ObjectRef(bucket, key)
        for grant in [*self.grants.get(tenant.id, []), *self.grants.get(tenant.name, [])]:
            granted_bucket, _, prefix = grant.partition("/")
            prefix = prefix.strip("/")
            if bucket == granted_bucket and (not prefix or key.startswith(prefix + "/")):
                return ObjectRef(bucket, key)
        raise _not_available(uri)

    def upload(self, uri: str, tenant_id: str, session: Session) -> Upload:
        upload_id = uri.removeprefix(UPLOAD_PREFIX)
        row = session.get(Upload, upload_id) if is_id(upload_id) else None
        if row is None or row.tenant_id != tenant_id:
            raise _not_available(uri)
        if row.state != "ready":
            raise UploadNotReadyError(f"Upload '{uri}' is still in progress.",
                                      "Complete it first (POST /v1/uploads/{id}/complete).")
        return row

    def check(self, uri: str, tenant_id: str, session: Session,
              check_url: Callable[[str], None]) -> None:
        """Admission: refuse what the tenant may not name (URLs: the SSRF guard)."""
        kind = input_kind(uri)
        if kind is InputKind.URL:
            check_url(uri)
        elif kind is InputKind.OBJECT:
            self.object_ref(uri, _tenant(session, tenant_id))
        else:
            self.upload(uri, tenant_id, session)

    def fetch(self, uri: str, tenant_id: str, session: Session, store: ObjectStore,
              target: Path, fetch_url: Callable[[str, Path], None] | None) -> Path:
        """The input as a local file at `target`."""
        kind = input_kind(uri)
        if kind is InputKind.URL:
            if fetch_url is None:
                raise LipDubError(f"Fetching URLs is not enabled here: '{uri}'.",
                                  "Upload the file first and pass its upload id.")
            fetch_url(uri, target)
        elif kind is InputKind.OBJECT:
            ref = self.object_ref(uri, _tenant(session, tenant_id))
            # The same S3 service (endpoint, credentials) as the platform's own store:
            # MinIO deployments name their buckets there too.
            endpoint = store.client.meta.endpoint_url if isinstance(store, S3Store) else None
            source = store if isinstance(store, S3Store) and ref.bucket == store.bucket \
                else S3Store(ref.bucket, endpoint, timeout_s=self.timeout_s)
            if not source.exists(ref.key):
                raise InputNotFoundError(f"Input '{uri}' does not exist.",
                                         "Check the bucket and key, then resubmit.")
            source.get_file(ref.key, target)
        else:
            store.get_file(self.upload(uri, tenant_id, session).storage_key, target)
        return target


def _tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:  # deleted under a running job: it owns nothing any more
        raise InputNotAvailableError("The job's tenant no longer exists.", "")
    return tenant
