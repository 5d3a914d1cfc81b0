"""Tenants and API keys (stored only as SHA-256 hashes; the key is shown once)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from lipdub.db.models import ApiKey, Tenant, utcnow
from lipdub.errors import LipDubError

KEY_PREFIX = "ldk_"


@dataclass(frozen=True)
class TenantRef:
    """Who is calling: detached from any database session, so it can be cached."""

    id: str
    name: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, tenant_name: str) -> tuple[Tenant, str]:
    """A new key for the tenant (created if new). Returns the key itself, once."""
    tenant = session.scalar(select(Tenant).where(Tenant.name == tenant_name))
    if tenant is None:
        tenant = Tenant(name=tenant_name)
        session.add(tenant)
        session.flush()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(tenant_id=tenant.id, key_hash=hash_key(key), prefix=key[:10]))
    session.commit()
    return tenant, key


def tenant_for_key_hash(session: Session, key_hash: str) -> TenantRef | None:
    row = session.execute(
        select(Tenant.id, Tenant.name).join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))).first()
    return None if row is None else TenantRef(id=row.id, name=row.name)


def tenant_for_key(session: Session, key: str) -> TenantRef | None:
    return tenant_for_key_hash(session, hash_key(key))


@dataclass(frozen=True)
class KeyInfo:
    id: str
    prefix: str  # the key's first characters, enough to recognise it
    tenant: str
    created_at: datetime
    revoked_at: datetime | None


class KeyNotFoundError(LipDubError):
    code = "key_not_found"


def list_keys(session: Session, tenant_name: str | None = None) -> list[KeyInfo]:
    query = (select(ApiKey, Tenant.name).join(Tenant, ApiKey.tenant_id == Tenant.id)
             .order_by(Tenant.name, ApiKey.created_at))
    if tenant_name is not None:
        query = query.where(Tenant.name == tenant_name)
    return [KeyInfo(key.id, key.prefix, name, key.created_at, key.revoked_at)
            for key, name in session.execute(query)]


def revoke_key(session: Session, key_id_or_prefix: str) -> KeyInfo:
    """Revoke one key, named by its id or its prefix (refused if the prefix is shared)."""
    rows = session.scalars(select(ApiKey).where(
        (ApiKey.id == key_id_or_prefix) | (ApiKey.prefix == key_id_or_prefix))).all()
    if len(rows) != 1:
        raise KeyNotFoundError(
            f"{'No' if not rows else 'More than one'} API key is '{key_id_or_prefix}'.",
            "Give a key id from `lipdub keys list`.")
    key = rows[0]
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.commit()
    tenant = session.get(Tenant, key.tenant_id)
    return KeyInfo(key.id, key.prefix, tenant.name if tenant else "?", key.created_at,
                   key.revoked_at)
