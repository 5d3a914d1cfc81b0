"""`lipdub batch ...`: a manifest of dubs, submitted to a LipDub server and watched, or run
on this machine with no server (resumable: a re-run skips items whose output is complete).

Local manifests name files: one item a line, JSON Lines or CSV, with video, audio,
output_name (default: item-<line>), options (engine, sync_mode, face)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table

from lipdub.errors import LipDubError
from lipdub.jobs.manifest import LineError, ManifestError, parse_manifest

batch_app = typer.Typer(no_args_is_help=True,
                        help="Batches: many dubs from one manifest (JSON Lines or CSV).")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
Server = Annotated[str, typer.Option(envvar="LIPDUB_SERVER", help="The LipDub API.")]
Key = Annotated[str, typer.Option(envvar="LIPDUB_API_KEY", help="Your API key.")]
LOCAL_FIELDS = {"video", "audio", "output_name", "options"}
LOCAL_OPTIONS = {"engine", "sync_mode", "face"}


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv"


def _print_errors(errors: list[LineError]) -> None:
    err.print(f"[red]error:[/] the manifest has {len(errors)} error(s); nothing was run:")
    for e in errors:
        err.print(f"  line {e.line}: {e.reason}" if e.line else f"  {e.reason}")


@batch_app.command("submit")
def batch_submit(manifest: Path, server: Server = "http://127.0.0.1:8000", key: Key = "",
                 webhook_url: Annotated[str | None, typer.Option()] = None,
                 idempotency_key: Annotated[str | None, typer.Option()] = None) -> None:
    """Send a manifest (inputs as upload ids or URIs) to the server; prints the batch id."""
    headers = {"Authorization": f"Bearer {key}",
               "Content-Type": "text/csv" if _is_csv(manifest) else "application/jsonl"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    answer = _request("POST", f"{server}/v1/batches", headers=headers,
                      content=manifest.read_bytes(),
                      params={"webhook_url": webhook_url} if webhook_url else None)
    body = answer.json()
    if answer.status_code == 422 and body.get("errors"):
        _print_errors([LineError(e["line"], e["reason"]) for e in body["errors"]])
        raise typer.Exit(2)
    if answer.status_code >= 400:
        err.print(f"[red]error:[/] {body.get('detail', answer.text)}")
        raise typer.Exit(2)
    out.print(f"batch {body['id']}: {body['total']} items accepted")


@batch_app.command("status")
def batch_status(batch_id: str, server: Server = "http://127.0.0.1:8000", key: Key = "",
                 watch: Annotated[bool, typer.Option(help="Refresh until done.")] = False,
                 every: Annotated[float, typer.Option(min=0.2)] = 2.0) -> None:
    """The batch's items, states and progress (a live table with --watch)."""
    headers = {"Authorization": f"Bearer {key}"}

    def fetch() -> dict:
        answer = _request("GET", f"{server}/v1/batches/{batch_id}", headers=headers)
        if answer.status_code >= 400:
            err.print(f"[red]error:[/] {answer.json().get('detail', answer.text)}")
            raise typer.Exit(2)
        return answer.json()

    batch = fetch()
    if not watch:
        out.print(_table(batch))
        return
    with Live(_table(batch), console=out, refresh_per_second=4) as live:
        while not batch["completed_at"]:
            time.sleep(every)
            batch = fetch()
            live.update(_table(batch))


def _table(batch: dict) -> Table:
    counts = ", ".join(f"{n} {state}" for state, n in batch["counts"].items() if n)
    eta = f", about {batch['eta_seconds']:.0f} s left" if batch.get("eta_seconds") else ""
    table = Table(title=f"batch {batch['id']}: {batch['progress']}% ({counts}){eta}")
    for column in ("line", "output", "state", "progress", "job"):
        table.add_column(column)
    for item in batch["items"]:
        table.add_row(str(item["line"]), item["output_name"] or "", item["state"],
                      f"{item['progress']}%", item["job_id"])
    return table


def _request(method: str, url: str, **kwargs) -> httpx.Response:  # noqa: ANN003
    try:
        return httpx.request(method, url, timeout=60, **kwargs)
    except httpx.HTTPError as exc:
        err.print(f"[red]error:[/] cannot reach {url}: {exc}. Check --server.")
        raise typer.Exit(2) from exc


@batch_app.command("run")
def batch_run(manifest: Path,
              folder: Annotated[Path, typer.Option("--out", help="Folder for results.")],
              ) -> None:
    """Run a manifest of local files here, with no server, one item after another. A
    re-run skips items whose output exists (outputs are written atomically)."""
    from lipdub.cli import run_dub
    from lipdub.sync import SyncMode

    try:
        items, errors = parse_manifest(manifest.read_bytes(), _is_csv(manifest))
    except ManifestError as exc:
        _print_errors(exc.errors)
        raise typer.Exit(2) from exc
    except OSError as exc:
        err.print(f"[red]error:[/] cannot read '{manifest}': {exc.strerror}.")
        raise typer.Exit(2) from exc
    plan, errors = _local_items(items, errors, manifest.parent)
    if errors:
        _print_errors(sorted(errors, key=lambda e: e.line))
        raise typer.Exit(2)
    folder.mkdir(parents=True, exist_ok=True)
    done = skipped = failed = 0
    for n, (line, video, audio, name, options) in enumerate(plan, start=1):
        output = folder / f"{name}.mp4"
        if output.exists():
            skipped += 1
            continue
        out.print(f"[{n}/{len(plan)}] line {line}: {name}")
        try:
            run_dub(video, audio, output, options.get("engine", "auto"), None,
                    SyncMode(options.get("sync_mode", "cut_off")),
                    options.get("face", "largest"), "auto", preview=False)
            done += 1
        except LipDubError as error:
            err.print(f"[red]line {line} failed:[/] {error}")
            failed += 1
    out.print(f"{done} dubbed, {skipped} already done, {failed} failed; results in {folder}")
    if failed:
        raise typer.Exit(1)


def _local_items(items: list[tuple[int, dict]], errors: list[LineError], base: Path,
                 ) -> tuple[list[tuple[int, Path, Path, str, dict]], list[LineError]]:
    """Every line checked before anything runs: fields, files, options, unique names."""
    from lipdub.engines.registry import ENGINE_NAMES
    from lipdub.sync import SyncMode

    plan, names = [], {}
    for line, item in items:
        problems = [f"unknown field '{k}'" for k in item if k not in LOCAL_FIELDS]
        paths = []
        for field in ("video", "audio"):
            value = item.get(field)
            path = (base / value) if isinstance(value, str) and value else None
            if path is None:
                problems.append(f"{field} is missing")
            elif not path.is_file():
                problems.append(f"{field} '{value}' is not a file")
            paths.append(path)
        options = item.get("options") or {}
        if not isinstance(options, dict):
            problems.append("options must be an object")
            options = {}
        problems += [f"unknown option '{k}'" for k in options if k not in LOCAL_OPTIONS]
        if options.get("engine", "auto") not in ENGINE_NAMES:
            problems.append(f"engine must be one of {', '.join(ENGINE_NAMES)}")
        if options.get("sync_mode", "cut_off") not in {m.value for m in SyncMode}:
            problems.append("sync_mode is not known")
        name = str(item.get("output_name") or f"item-{line}")
        if os.sep in name or name.startswith("."):
            problems.append(f"output_name '{name}' must be a plain file name")
        elif name in names:
            problems.append(f"output_name '{name}' is already used on line {names[name]}")
        names.setdefault(name, line)
        errors += [LineError(line, p) for p in problems]
        if not problems:
            plan.append((line, paths[0], paths[1], name, options))
    return plan, errors

