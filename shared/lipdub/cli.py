"""`lipdub` command line: dub a video, run the demo. A thin adapter over the core."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lipdub.config import get_settings
from lipdub.errors import LipDubError
from lipdub.sync import SyncMode

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LipDub: re-sync the lips in footage to a new audio track.")
console = Console(stderr=True)
out = Console()


class RichProgress:
    """ProgressSink drawn as one bar per stage."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._tasks: dict[str, int] = {}

    def start(self, stage: str, total: int) -> None:
        self._tasks[stage] = self._progress.add_task(stage, total=total)

    def advance(self, stage: str, amount: int = 1) -> None:
        self._progress.advance(self._tasks[stage], amount)

    def finish(self, stage: str) -> None:
        task = self._tasks[stage]
        self._progress.update(task, completed=self._progress.tasks[task].total)


def _progress_bar() -> Progress:
    return Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("frames"), TimeRemainingColumn(), console=console,
                    transient=False)


def print_summary(report) -> None:  # noqa: ANN001 - a DubReport; imported lazily for start-up
    table = Table(title=f"dubbed -> {report.output}", show_header=True, header_style="bold")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("frames", justify="right")
    table.add_column("frames/s", justify="right")
    for name, timing in report.stages.items():
        fps = f"{timing.fps:.1f}" if timing.frames else "-"
        table.add_row(name, f"{timing.seconds:.2f}", str(timing.frames or "-"), fps)
    total_fps = report.output_frames / report.seconds_total if report.seconds_total else 0
    table.add_row("[bold]end to end", f"{report.seconds_total:.2f}", str(report.output_frames),
                  f"{total_fps:.1f}")
    out.print(table)
    out.print(
        f"engine {report.engine} | sync {report.sync_mode} | {report.width}x{report.height} @ "
        f"{report.fps:.3f} fps | output frames {report.output_frames} (source "
        f"{report.source_frames}) | faces found in {report.face_frames} | passed through "
        f"without a face {report.passthrough_frames} | shots {report.shots}"
    )
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def _fail(error: LipDubError) -> None:
    console.print(f"[red]error:[/] {error.problem}" + (f" {error.hint}" if error.hint else ""))
    raise typer.Exit(code=2)


@app.command()
def dub(
    video: Annotated[Path, typer.Option("--video", help="Footage of the person speaking.")],
    audio: Annotated[Path, typer.Option("--audio", help="The new audio track (any format).")],
    output: Annotated[Path, typer.Option("--output", help="Where to write the dub (.mp4).")],
    engine: Annotated[str, typer.Option(help="auto | wav2lip | warp")] = "auto",
    wav2lip_checkpoint: Annotated[Path | None, typer.Option(
        help="Wav2Lip weights (wav2lip.pth / wav2lip_gan.pth); or LIPDUB_WAV2LIP_CHECKPOINT.",
    )] = None,
    sync_mode: Annotated[SyncMode, typer.Option(help="When lengths differ.")] = SyncMode.CUT_OFF,
    face: Annotated[str, typer.Option(help="largest | center | INDEX | x,y,w,h")] = "largest",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    preview: Annotated[bool, typer.Option(help="Also write a side-by-side preview.")] = False,
) -> None:
    """Re-sync the lips in VIDEO to AUDIO and write OUTPUT."""
    try:
        run_dub(video, audio, output, engine, wav2lip_checkpoint, sync_mode, face, device,
                preview)
    except LipDubError as error:
        _fail(error)


def run_dub(video: Path, audio: Path, output: Path, engine: str,
            wav2lip_checkpoint: Path | None, sync_mode: SyncMode, face: str, device: str,
            preview: bool):  # noqa: ANN201 - returns a DubReport
    from lipdub.engines.registry import build_engine
    from lipdub.faces.select import FaceSelector
    from lipdub.pipeline import dub as run
    from lipdub.preview import preview_path_for, write_side_by_side

    settings = get_settings()
    checkpoint = wav2lip_checkpoint or settings.wav2lip_checkpoint
    selector = FaceSelector.parse(face)
    built = build_engine(engine, checkpoint, device, settings.wav2lip_batch_size)
    with _progress_bar() as bar:
        report = run(video, audio, output, built, sync_mode, selector,
                     settings.detect_every, RichProgress(bar))
    print_summary(report)
    if preview:
        path = write_side_by_side(video, output, preview_path_for(output))
        out.print(f"preview (source | dubbed): {path}")
    return report


@app.command()
def demo(
    folder: Annotated[Path, typer.Option("--out", help="Folder for the demo files.")] = Path(
        "out/demo"),
    seconds: Annotated[float, typer.Option(help="Length of the demo clip.")] = 8.0,
    engine: Annotated[str, typer.Option(help="auto | wav2lip | warp")] = "auto",
) -> None:
    """Build a talking clip from a real face photo, dub it to a new voice, write a preview."""
    from lipdub.demo import make_demo_inputs

    try:
        console.print(f"building the demo clip in {folder} ...")
        inputs = make_demo_inputs(folder, seconds)
        output = folder / "dubbed.mp4"
        run_dub(inputs.video, inputs.audio, output, engine, None, SyncMode.CUT_OFF, "largest",
                "auto", preview=True)
    except LipDubError as error:
        _fail(error)
    out.print(f"source: {inputs.video}\nnew audio: {inputs.audio}\ndubbed: {output}")


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted: no output was written")
        sys.exit(130)


if __name__ == "__main__":
    main()
