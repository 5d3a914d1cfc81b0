"""`lipdub dub --cast ...`: several characters dubbed at once, each with their own line."""

from __future__ import annotations

import json
from contextlib import ExitStack, closing
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from lipdub.blend import BlendMode
from lipdub.cast import parse_cast, parse_cast_option
from lipdub.cli import RichProgress, _progress_bar, out, parse_cli_ranges, print_summary
from lipdub.config import get_settings
from lipdub.errors import BadOptionError
from lipdub.sync import SyncMode

if TYPE_CHECKING:
    from lipdub.outputs import Output
    from lipdub.pipeline import DubReport


def _cast_items(options: list[str], cast_file: Path | None) -> tuple[list[dict], Path]:
    """The cast's items and the folder their relative paths start from."""
    if cast_file is None:
        return [parse_cast_option(text, i) for i, text in enumerate(options)], Path.cwd()
    if options:
        raise BadOptionError("--cast and --cast-file were both given.", "Give one of them.")
    try:
        items = json.loads(cast_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadOptionError(f"--cast-file '{cast_file}' cannot be read: {exc}.",
                             "Give a JSON list of {character, audio, face, original}.") \
            from exc
    return items, cast_file.parent


def dub_cast_command(video: Path, mix: Path | None, output: Path, options: list[str],
                     cast_file: Path | None, engine: str, wav2lip_checkpoint: Path | None,
                     sync_mode: SyncMode, device: str, cpu_runtime: str | None,
                     ranges: list[str] | None, out_plan: Output | None = None,
                     qc: bool = True,
                     blend: BlendMode = BlendMode.STANDARD) -> DubReport:
    from lipdub.cast_dub import check_cast, dub_cast
    from lipdub.engines.registry import build_engines
    from lipdub.media.checks import check_dub_files
    from lipdub.media.encode import DELIVERY_SUFFIXES

    items, base = _cast_items(options, cast_file)
    cast = parse_cast(items, lambda reference, what: base / reference)
    check_cast(cast)  # every line readable: before any model loads
    frame_ranges = parse_cli_ranges(ranges, video, [c.name for c in cast]) if ranges \
        else None
    check_dub_files(video, mix, output, [r.audio for r in frame_ranges or [] if r.audio],
                    out_plan.suffixes if out_plan else DELIVERY_SUFFIXES)
    settings = get_settings()
    engines = build_engines(len(cast), engine, wav2lip_checkpoint or settings.wav2lip_checkpoint,
                            device, settings.wav2lip_batch_size, settings.inference,
                            settings.served_wav2lip, cpu_runtime or settings.cpu_runtime,
                            settings.model_cache_dir)
    with ExitStack() as stack, _progress_bar() as bar:
        for built in engines:
            stack.enter_context(closing(built))
        report, casting, _ = dub_cast(video, cast, output, engines, mix, sync_mode,
                                      settings.detect_every, RichProgress(bar), frame_ranges,
                                      out=out_plan, qc=settings.qc_thresholds if qc else None,
                                      blend=blend)
    table = Table(title="cast", header_style="bold")
    for column in ("shot", "person", "character", "confidence", "source"):
        table.add_column(column)
    for role in casting.report():
        table.add_row(str(role["shot"]), str(role["person"]), role["character"] or "-",
                      f"{role['confidence']:.2f}", role["source"])
    out.print(table)
    print_summary(report)
    return report
