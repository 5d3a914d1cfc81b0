"""Tenants and API keys (stored only as SHA-256 hashes; the key is shown once)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lipdub.db.models import ApiKey, Tenant

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
