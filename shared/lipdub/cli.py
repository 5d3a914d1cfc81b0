"""`lipdub` command line: dub a video, run the demo. A thin adapter over the core."""

from __future__ import annotations

import atexit
import gc
import logging
import sys
from contextlib import closing
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from lipdub.blend import BlendMode
from lipdub.cli_admin import db_app, keys_app
from lipdub.cli_batch import batch_app
from lipdub.cli_models import models_app
from lipdub.config import get_settings
from lipdub.errors import LipDubError
from lipdub.output_profiles import OutputProfile
from lipdub.sync import SyncMode

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="LipDub: re-sync the lips in footage to a new audio track.")
# soft_wrap: a message is never hard-wrapped at 80 columns when stderr is not a terminal
# (logs, CI), where a long path would split its words.
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


@app.callback()
def options(verbose: Annotated[bool, typer.Option(
        "--verbose", help="Also show third-party libraries' native log lines (MediaPipe, "
        "TensorFlow Lite), which are hidden by default.")] = False) -> None:
    if verbose:
        from lipdub.quiet import show_native_logs

        show_native_logs()


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
    if report.source_format:
        out.print(f"source: {report.source_format}")
    out.print(
        f"engine {report.engine} | sync {report.sync_mode} | {report.width}x{report.height} @ "
        f"{report.fps:.3f} fps | output frames {report.output_frames} (source "
        f"{report.source_frames}) | faces found in {report.face_frames} | passed through "
        f"without a face {report.passthrough_frames} | shots {report.shots}"
        + (f" | left as filmed outside the ranges {report.outside_ranges}"
           if report.outside_ranges else "")
    )
    if report.qc is not None:
        print_qc(report.qc)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}")


def print_qc(qc) -> None:  # noqa: ANN001 - a QCReport
    """The shots a reviewer should look at first, with the figures behind their flags."""
    summary = qc.summary()
    if not summary["flagged_shots"]:
        out.print(f"QC: no shot flagged ({summary['shots']} measured)")
        return
    table = Table(title=f"QC: {summary['flagged_shots']} of {summary['shots']} shots flagged "
                        "(worst first)", header_style="bold")
    for column in ("shot", "face", "frames", "flags", "sync offset", "sync corr.",
                   "pauses closed", "seam", "jitter"):
        # The flags are what the reader came for: never cut short.
        table.add_column(column, min_width=14 if column == "flags" else None)
    for shot in [s for s in qc.worst(5) if s.flags]:
        table.add_row(str(shot.shot), shot.face or "-",
                      f"{shot.start_frame}-{shot.stop_frame - 1}", ", ".join(shot.flags),
                      _figure(shot.sync["offset_frames"]), _figure(shot.sync["correlation"]),
                      _figure(shot.closure["share"]), _figure(shot.seam["added"]),
                      _figure(shot.jitter["ratio"]))
    out.print(table)


def _measuring(qc: bool | None) -> bool:
    """--qc / --no-qc, else the configuration (LIPDUB_QC_ENABLED, on by default)."""
    return get_settings().qc_enabled if qc is None else qc


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _fail(error: LipDubError) -> None:
    console.print(f"[red]error:[/] {error.problem}" + (f" {error.hint}" if error.hint else ""))
    raise typer.Exit(code=2)


@app.command()
def dub(
    video: Annotated[Path, typer.Option("--video", help="Footage of the person speaking.")],
    output: Annotated[Path, typer.Option("--output", help="Where to write the dub (.mp4).")],
    audio: Annotated[Path | None, typer.Option(
        "--audio", help="The new audio track (any format); with --cast, the full mix the "
                        "output sounds like (default: the characters' lines mixed).")] = None,
    engine: Annotated[str, typer.Option(help="auto | wav2lip | warp")] = "auto",
    wav2lip_checkpoint: Annotated[Path | None, typer.Option(
        help="Wav2Lip weights (wav2lip.pth / wav2lip_gan.pth); or LIPDUB_WAV2LIP_CHECKPOINT.",
    )] = None,
    sync_mode: Annotated[SyncMode, typer.Option(help="When lengths differ.")] = SyncMode.CUT_OFF,
    face: Annotated[str, typer.Option(help="largest | center | INDEX | x,y,w,h")] = "largest",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    cpu_runtime: Annotated[str | None, typer.Option(
        help="How a CPU runs Wav2Lip: auto | torch | torch-bf16 | onnxruntime "
             "(or LIPDUB_CPU_RUNTIME; auto: bfloat16 where the CPU has it natively).",
    )] = None,
    preview: Annotated[bool, typer.Option(help="Also write a side-by-side preview.")] = False,
    dub_range: Annotated[list[str] | None, typer.Option(
        "--range", help="Dub only START-END (seconds 12.5-14, frames 300f-350f or timecode "
                        "00:00:12:12-00:00:14:00); repeat for more. The rest stays as filmed. "
                        "START-END@CHARACTER: only that character's face (with --cast); "
                        "START-END=LINE: the range's own line (a re-take), heard there.",
    )] = None,
    identity: Annotated[str | None, typer.Option(
        help="Restore the dubbed face with this identity's trained restorer.")] = None,
    restore: Annotated[str, typer.Option(
        help="none | auto (train a restorer on VIDEO itself first, then dub)")] = "none",
    cast: Annotated[list[str] | None, typer.Option(
        "--cast", help="A character and their new line, NAME=LINE[@FACE]; repeat for each. "
                       "FACE: auto (found by who speaks when the line is heard), FRAME:X,Y, "
                       "FRAME:X0,Y0,X1,Y1 or a .json file of per-frame boxes.")] = None,
    cast_file: Annotated[Path | None, typer.Option(
        help="The cast as JSON: [{character, audio, face, original}], as in the API.",
    )] = None,
    output_profile: Annotated[OutputProfile, typer.Option(
        help="delivery: H.264/AAC MP4; match: a master in the source's own format (ProRes, "
             "DNxHR: codec, profile, bit depth, chroma, colour, timecode, every audio "
             "stream kept); patch: OUTPUT.otio (+ .edl) laying ProRes 4444 patches with a "
             "face matte, one per changed shot, over the source.")] = OutputProfile.DELIVERY,
    replace_audio_stream: Annotated[str | None, typer.Option(
        help="match: the source's audio stream the new dialogue replaces, by index (0, "
             "1, ...) or language tag (eng); default: added as a new stream.")] = None,
    dialogue_language: Annotated[str | None, typer.Option(
        help="match: the language tag of the added dialogue stream (e.g. fra).")] = None,
    review_copy: Annotated[Path | None, typer.Option(
        help="match: also write this H.264/AAC MP4 review copy, made from the master.",
    )] = None,
    blend: Annotated[BlendMode, typer.Option(
        help="How far the new mouth reaches into the face: soft (a wider feathered edge, "
             "for a visible seam), standard, tight (less of the face: a chin or beard "
             "kept as filmed).")] = BlendMode.STANDARD,
    qc: Annotated[bool | None, typer.Option(
        "--qc/--no-qc", help="Measure the dub's sync, pauses, seam, colour and jitter per "
                             "shot after it is written (default) and print the worst "
                             "shots; --qc also writes them all to OUTPUT.qc.json; --no-qc "
                             "skips the measuring (default: LIPDUB_QC_ENABLED, on).")] = None,
) -> None:
    """Re-sync the lips in VIDEO to AUDIO (or each character's face to their own line,
    with --cast) and write OUTPUT."""
    from lipdub.media.checks import check_dub_files
    from lipdub.media.encode import DELIVERY_SUFFIXES

    try:
        casting = bool(cast or cast_file)
        if casting and (identity or restore != "none" or face != "largest"):
            raise _cast_conflict()
        if review_copy is not None and output_profile is not OutputProfile.MATCH:
            from lipdub.errors import BadOptionError

            raise BadOptionError("--review-copy is made from a 'match' master.",
                                 "Add --output-profile match, or leave it out.")
        out_plan = None
        if output_profile is not OutputProfile.DELIVERY:  # what the source allows, first
            from lipdub.media.master import Dialogue
            from lipdub.outputs import plan_output

            out_plan, sync_mode = plan_output(output_profile, video, output, sync_mode, Dialogue(
                replace_audio_stream, dialogue_language), restoring=bool(identity)
                or restore != "none")
        if casting:
            from lipdub.cli_cast import dub_cast_command

            report = dub_cast_command(video, audio, output, cast or [], cast_file, engine,
                                      wav2lip_checkpoint, sync_mode, device, cpu_runtime,
                                      dub_range, out_plan, _measuring(qc), blend)
        else:
            ranges = parse_cli_ranges(dub_range, video) if dub_range else None
            if audio is None and not any(r.audio for r in ranges or []):
                from lipdub.errors import BadOptionError

                raise BadOptionError("No new audio was given.",
                                     "Give --audio, --cast with each character's line, or "
                                     "ranges with their own lines (--range START-END=LINE).")
            check_dub_files(video, audio, output,  # before any model loads
                            [r.audio for r in ranges or [] if r.audio],
                            out_plan.suffixes if out_plan else DELIVERY_SUFFIXES)
            restorer = _restorer(identity, restore, video, face, device)
            report = run_dub(video, audio, output, engine, wav2lip_checkpoint, sync_mode,
                             face, device, preview, restorer, cpu_runtime, ranges, out_plan,
                             _measuring(qc), blend)
        if qc and report.qc is not None:
            from lipdub.qc.report import qc_path_for, write_report

            write_report(report.qc, qc_path_for(output))
            out.print(f"QC report: {qc_path_for(output)}")
        if review_copy is not None:
            from lipdub.media.finish import review_copy as make_review_copy

            make_review_copy(output, out_plan.dialogue.index_in_master(out_plan.source),
                             review_copy)
            out.print(f"review copy (H.264, from the master): {review_copy}")
    except LipDubError as error:
        _fail(error)


def _cast_conflict() -> LipDubError:
    from lipdub.errors import BadOptionError

    return BadOptionError(
        "--face, --identity and --restore choose and restore the one face of a plain dub.",
        "With --cast, give each character's face in its --cast; restoration of a cast is "
        "not supported.")


def parse_cli_ranges(specs: list[str], video: Path,
                     cast: list[str] | None = None):  # noqa: ANN201 - list[FrameRange]
    from lipdub.media.probe import probe_video
    from lipdub.ranges import check_characters, parse_range_option, parse_ranges

    parsed = [parse_range_option(spec) for spec in specs]
    check_characters(parsed, cast)
    return parse_ranges(parsed, probe_video(video).fps)


def _restorer(identity: str | None, restore: str, video: Path, face: str, device: str):  # noqa: ANN202
    from lipdub.errors import BadOptionError

    if restore not in ("none", "auto"):
        raise BadOptionError(f"--restore '{restore}' is not known.", "Use none or auto.")
    if identity is None and restore == "none":
        return None
    from lipdub.faces.select import FaceSelector
    from lipdub.inference.backends import is_remote, sovqae_restorer
    from lipdub.inference.local import pick_device
    from lipdub.restore.gate import skipped_warning
    from lipdub.restore.identity import IdentityStore

    settings = get_settings()
    store = IdentityStore(settings.identity_dir)
    if identity is None:  # --restore auto: this video's own person
        identity = f"auto-{video.stem}"[:64]
        version = _train_identity([video], identity, False, None, FaceSelector.parse(face),
                                  settings.restore_steps, device)
    else:
        version = store.latest(identity)
    if version.rejection:  # the quality gate: it would make faces worse
        what = f"Identity {version.name!r} v{version.version}"
        console.print(f"[yellow]warning:[/] {skipped_warning(what, version.rejection)}")
        return None
    remote = is_remote(settings.inference)
    resolved = "cpu" if remote else pick_device(device)
    console.print(f"restoring with identity {version.name} v{version.version}"
                  + (f" on {settings.inference}" if remote else ""))
    return sovqae_restorer(settings.inference, version.load(resolved), resolved,
                           settings.restore_batch_size, settings.resident_restorers)


def _train_identity(videos: list[Path], name: str, search: bool, resolution: int | None,
                    selector, steps: int, device: str,  # noqa: ANN001, ANN202
                    adversarial: str = "auto"):
    from lipdub.restore.identity import IdentityStore
    from lipdub.restore.identity_training import train_identity
    from lipdub.restore.train import TrainConfig

    settings = get_settings()
    with Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console) as bar:
        tasks: dict[str, int] = {}

        def on_step(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        return train_identity(videos, name, IdentityStore(settings.identity_dir),
                              TrainConfig(steps=steps, batch_size=settings.restore_batch_size,
                                          device=device, adversarial=adversarial),
                              search=search,
                              resolution=resolution, selector=selector, on_step=on_step)


def run_dub(video: Path, audio: Path | None, output: Path, engine: str,
            wav2lip_checkpoint: Path | None, sync_mode: SyncMode, face: str, device: str,
            preview: bool, restorer=None,  # noqa: ANN001 - Restorer
            cpu_runtime: str | None = None,
            ranges=None, out_plan=None,  # noqa: ANN001 - list[FrameRange], Output
            qc: bool = True,
            blend: BlendMode = BlendMode.STANDARD):  # noqa: ANN201 - DubReport
    from lipdub.engines.registry import build_engine
    from lipdub.faces.select import FaceSelector
    from lipdub.pipeline import dub as run
    from lipdub.preview import preview_path_for, write_side_by_side

    settings = get_settings()
    checkpoint = wav2lip_checkpoint or settings.wav2lip_checkpoint
    selector = FaceSelector.parse(face)
    built = build_engine(engine, checkpoint, device, settings.wav2lip_batch_size,
                         settings.inference, settings.served_wav2lip,
                         cpu_runtime or settings.cpu_runtime, settings.model_cache_dir)
    with closing(built), _progress_bar() as bar:
        report = run(video, audio, output, built, sync_mode, selector,
                     settings.detect_every, RichProgress(bar), restorer, ranges, out_plan,
                     settings.qc_thresholds if qc else None, blend)
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


identity_app = typer.Typer(no_args_is_help=True,
                           help="Identities: a person's own restorer (SOVQAE).")
app.add_typer(identity_app, name="identity")


@identity_app.command("train")
def identity_train(
    video: Annotated[list[Path], typer.Option("--video", help="Footage of the person.")],
    name: Annotated[str, typer.Option(help="The identity's name.")],
    search: Annotated[bool, typer.Option(help="Try a few latent/codebook sizes.")] = False,
    steps: Annotated[int | None, typer.Option(help="Training steps per setting.")] = None,
    resolution: Annotated[int | None, typer.Option(
        help="Working resolution (128, 256, 512); default: from the face size.")] = None,
    face: Annotated[str, typer.Option(help="largest | center | INDEX | x,y,w,h")] = "largest",
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    adversarial: Annotated[str, typer.Option(
        help="auto | on | off: the adversarial (PatchGAN) loss; auto = on with CUDA.")] = "auto",
) -> None:
    """Train NAME's restorer on their footage and store it as a new version."""
    from lipdub.errors import BadOptionError
    from lipdub.faces.select import FaceSelector

    try:
        if resolution not in (None, 128, 256, 512):
            raise BadOptionError(f"--resolution {resolution} is not supported.",
                                 "Use 128, 256 or 512.")
        if adversarial not in ("auto", "on", "off"):
            raise BadOptionError(f"--adversarial {adversarial} is not an option.",
                                 "Use auto, on or off.")
        version = _train_identity(video, name, search, resolution, FaceSelector.parse(face),
                                  steps or get_settings().restore_steps, device, adversarial)
    except LipDubError as error:
        _fail(error)
    _print_identity(version.info, f"{version.name} v{version.version} -> {version.path}")


def _print_identity(info: dict, title: str) -> None:
    from lipdub.restore.gate import rejection

    e = info["evaluation"]
    table = Table(title=title)
    for column in ("", "PSNR dB", "SSIM"):
        table.add_column(column, justify="right")
    detail = e.get("detail_error_degraded") is not None
    if detail:
        table.add_column("detail error", justify="right")
    for label, kind in (("degraded input", "degraded"), ("restored", "restored")):
        table.add_row(label, f"{e[f'psnr_{kind}']:.2f}", f"{e[f'ssim_{kind}']:.4f}",
                      *([f"{e[f'detail_error_{kind}']:.3f}"] if detail else []))
    out.print(table)
    reasons = rejection(info)
    out.print("quality gate: " + ("passed (restored faces better on every measure)"
                                  if not reasons else
                                  f"REJECTED, not better on {'; '.join(reasons)}: dubs "
                                  "will skip this restorer"))
    out.print(f"codebook: {e['codes_used']:.0%} used on held-out frames, "
              f"{e['codes_alive']:.0%} alive; config {info.get('config')}")
    for row in info.get("search", []) if len(info.get("search", [])) > 1 else []:
        out.print(f"  tried latent {row['latent_size']} codebook {row['codebook_size']}: "
                  f"score {row['score']:.3f}")


@identity_app.command("eval")
def identity_eval(
    name: Annotated[str, typer.Argument(help="The identity to evaluate.")],
    video: Annotated[Path, typer.Option("--video", help="Held-out footage of the person.")],
) -> None:
    """Restoration quality of NAME's latest restorer on held-out footage."""
    from dataclasses import asdict

    from lipdub.restore.crops import extract_crops
    from lipdub.restore.identity import IdentityStore
    from lipdub.restore.train import evaluate

    try:
        version = IdentityStore(get_settings().identity_dir).latest(name)
        model = version.load()
        crops, _ = extract_crops([video], model.config.resolution)
        evaluation = evaluate(model, crops)
    except LipDubError as error:
        _fail(error)
    _print_identity({"evaluation": asdict(evaluation), "config": model.config.to_dict()},
                    f"{name} v{version.version} on {video}")


@identity_app.command("list")
def identity_list() -> None:
    """Identities and their versions."""
    from lipdub.restore.identity import IdentityStore

    store = IdentityStore(get_settings().identity_dir)
    for name in store.names():
        versions = store.versions(name)
        out.print(f"{name}: versions {', '.join(str(v.version) for v in versions)}")


@identity_app.command("delete")
def identity_delete(name: Annotated[str, typer.Argument()]) -> None:
    """Delete NAME and all its versions."""
    from lipdub.restore.identity import IdentityStore

    try:
        IdentityStore(get_settings().identity_dir).delete(name)
    except LipDubError as error:
        _fail(error)
    out.print(f"deleted {name}")


app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(batch_app, name="batch")


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the REST gateway with in-process job execution (SQLite, local storage, no Redis)."""
    import uvicorn

    from lipdub_gateway.app import create_app

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


def main() -> None:
    from lipdub.memory import limit_malloc_arenas
    from lipdub.quiet import filter_native_stderr

    limit_malloc_arenas()  # before any thread: a long render's memory stays flat
    # Last thing at exit: the interpreter's final collections then skip the 200,000
    # objects torch and MediaPipe made (0.5 s of a short dub's wall time otherwise).
    atexit.register(gc.freeze)
    filter_native_stderr()  # MediaPipe/TFLite start-up lines: not ours (--verbose shows)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except KeyboardInterrupt:
        console.print("interrupted: no output was written")
        sys.exit(130)


if __name__ == "__main__":
    main()
