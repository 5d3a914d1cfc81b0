"""`lipdub keys ...` and `lipdub db ...`: the operator's commands for the job platform."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from lipdub.config import get_settings
from lipdub.errors import LipDubError

keys_app = typer.Typer(no_args_is_help=True, help="API keys for the REST gateway.")
db_app = typer.Typer(no_args_is_help=True, help="The job database.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _sessions():  # noqa: ANN202 - sessionmaker
    from lipdub.db.session import session_factory, upgrade

    url = get_settings().database_url
    upgrade(url)
    return session_factory(url)


@keys_app.command("create")
def keys_create(tenant: Annotated[str, typer.Argument(help="Tenant name (created if new).")],
                ) -> None:
    """Create an API key for TENANT and print it (it is shown only this once)."""
    from lipdub.jobs.keys import create_key

    with _sessions()() as session:
        _, key = create_key(session, tenant)
    out.print(key)


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option(
        help="Only this tenant's keys.")] = None) -> None:
    """Every API key: id, prefix, tenant, when made, when revoked (keys themselves are never
    stored, so never shown)."""
    from lipdub.jobs.keys import list_keys

    with _sessions()() as session:
        keys = list_keys(session, tenant)
    # One line per key, columns apart by spaces: easy to read and to grep.
    out.print("id                               prefix      tenant  created           revoked",
              markup=False, highlight=False)
    for k in keys:
        revoked = f"{k.revoked_at:%Y-%m-%dT%H:%M}" if k.revoked_at else "-"
        out.print(f"{k.id}  {k.prefix}  {k.tenant}  {k.created_at:%Y-%m-%dT%H:%M}  {revoked}",
                  markup=False, highlight=False)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's id (or its prefix).")],
                ) -> None:
    """Revoke an API key. Gateways stop accepting it within LIPDUB_AUTH_CACHE_S seconds."""
    from lipdub.jobs.keys import revoke_key

    try:
        with _sessions()() as session:
            info = revoke_key(session, key)
    except LipDubError as error:
        err.print(f"[red]error:[/] {error}")
        raise typer.Exit(code=2) from error
    out.print(f"revoked {info.id} ({info.prefix}..., tenant {info.tenant})")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations (the gateway also does this on start)."""
    _sessions()
    out.print("database is up to date")
