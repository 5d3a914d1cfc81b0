"""`lipdub models ...`: export an operator's weights into the model repository, and run
the containerless model server on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from lipdub.errors import LipDubError

models_app = typer.Typer(no_args_is_help=True,
                         help="Served models: export weights, run the model server.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
DEFAULT_REPOSITORY = Path("model_repository")


def _fail(error: LipDubError) -> None:
    err.print(f"[red]error:[/] {error}")
    raise typer.Exit(code=2)


@models_app.command("export")
def models_export(
    wav2lip_checkpoint: Annotated[Path, typer.Option(
        help="The released wav2lip.pth / wav2lip_gan.pth, unchanged.")],
    repository: Annotated[Path, typer.Option(help="The Triton model repository.")] = (
        DEFAULT_REPOSITORY),
    onnx: Annotated[bool, typer.Option(help="Also write (and check) the ONNX model.")] = True,
) -> None:
    """Write the Wav2Lip generator into the repository: an exported program for the python
    backend and ONNX for the NGC container, the ONNX checked against PyTorch with
    onnxruntime."""
    from lipdub.inference.export import export_wav2lip

    try:
        report = export_wav2lip(wav2lip_checkpoint, repository, onnx)
    except LipDubError as error:
        _fail(error)
    out.print(f"wrote {report.program}")
    if report.onnx is not None:
        out.print(f"wrote {report.onnx} (max |onnxruntime - pytorch| = "
                  f"{report.onnx_max_abs_diff:.2g})")


@models_app.command("serve")
def models_serve(
    repository: Annotated[Path, typer.Option(help="The Triton model repository.")] = (
        DEFAULT_REPOSITORY),
    host: str = "127.0.0.1", http_port: int = 8000, grpc_port: int = 8001,
    metrics_port: int = 8002,
) -> None:
    """Run the Triton server bundled in nvidia-pytriton on the repository (no container):
    GPU where present, CPU otherwise. Wav2Lip loads at start; workers reach it with
    LIPDUB_INFERENCE=triton://HOST:GRPC_PORT."""
    import signal

    from lipdub_model_server.triton_server import TritonServer

    server = TritonServer(repository.resolve(), http_port, grpc_port, metrics_port, host,
                          load=["wav2lip"])
    try:
        server.start()
    except LipDubError as error:
        _fail(error)
    out.print(f"model server ready: gRPC {server.grpc_url}, HTTP {server.http_url}")
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        assert server.process is not None
        raise typer.Exit(code=server.process.wait())
    except KeyboardInterrupt:
        server.stop()


@models_app.command("serve-ray")
def models_serve_ray(
    repository: Annotated[Path, typer.Option(help="The model repository (exported).")] = (
        DEFAULT_REPOSITORY),
    host: str = "127.0.0.1", port: int = 8100,
    resident: Annotated[int, typer.Option(
        min=1, help="Models each replica keeps loaded (least recently used go first).")] = 8,
) -> None:
    """The Ray Serve alternative to Triton: the same models and batching, on a local Ray
    instance (or the cluster RAY_ADDRESS names). Workers reach it with
    LIPDUB_INFERENCE=ray+http://HOST:PORT."""
    from lipdub.inference.contract import PROGRAM_FILE, WAV2LIP
    from lipdub_model_server.ray_server import serve_forever

    if not (repository / WAV2LIP.name / "1" / PROGRAM_FILE).is_file():
        _fail(LipDubError(f"No exported models in '{repository}'.",
                          "Run `lipdub models export` first."))
    serve_forever(repository.resolve(), host, port, resident,
                  on_ready=lambda: out.print(f"Ray Serve ready: ray+http://{host}:{port}"))
