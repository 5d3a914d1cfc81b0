"""Where the models run, chosen by configuration (`LIPDUB_INFERENCE`):

  local                       in this process, PyTorch on CPU or CUDA (the embedded default)
  triton://host:8001          a Triton server over gRPC (the production path)
  triton+http://host:8000     the same over HTTP
  ray+http://host:8000        a Ray Serve application (lipdub models serve-ray)

Every backend is a Predictor with the same contract (lipdub.inference.contract) and gives
the same outputs within float tolerance. Remote backends are plug-ins found through the
`lipdub.inference` entry points (the model-server package provides them), so the core names
no serving technology."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING

from lipdub.inference.contract import CONTRACTS, WAV2LIP, ModelContract, ModelPackage
from lipdub.inference.errors import InferenceFailedError
from lipdub.inference.metrics import Measured

if TYPE_CHECKING:
    from lipdub.inference.local import Predictor
    from lipdub.restore.model import SOVQAE
    from lipdub.restore.stage import Restorer

LOCAL = "local"
ENTRY_POINT_GROUP = "lipdub.inference"


def is_remote(spec: str) -> bool:
    return spec != LOCAL


def remote_predictor(spec: str, contract: ModelContract = WAV2LIP,
                     package: ModelPackage | None = None) -> Predictor:
    """A Predictor for the server `spec` names (scheme://host:port); `package`: the files of
    a model the server loads on demand (identity restorers)."""
    scheme = spec.split("://", 1)[0] if "://" in spec else ""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if scheme not in found:
        raise InferenceFailedError(
            f"LIPDUB_INFERENCE='{spec}' names no known backend.",
            f"Use {LOCAL} or one of: {', '.join(f'{s}://host:port' for s in sorted(found))}.")
    return found[scheme].load()(spec, contract, package)


def wav2lip_predictor(spec: str, checkpoint: Path | None, device: str,
                      served: str = WAV2LIP.name, cpu_runtime: str = "auto",
                      model_cache: Path | None = None) -> Predictor:
    """`served`: the repository model that runs Wav2Lip on a server (WAV2LIP or its ONNX
    twin: the same tensors); `cpu_runtime`: how a local CPU runs it (CpuRuntime);
    `model_cache`: where files made from the checkpoint are kept."""
    if is_remote(spec):
        if served not in CONTRACTS:
            raise InferenceFailedError(f"LIPDUB_SERVED_WAV2LIP='{served}' is not a served "
                                       "Wav2Lip model.", f"Use one of {sorted(CONTRACTS)}.")
        return remote_predictor(spec, CONTRACTS[served])
    from lipdub.config import Settings
    from lipdub.inference.background import BackgroundPredictor
    from lipdub.inference.runtimes import CpuRuntime, parse_cpu_runtime
    from lipdub.models.files import WAV2LIP_HINT, require_file

    assert checkpoint is not None
    # Fail now on what can be checked without loading anything; the rest loads beside
    # the analysis pass.
    requested = parse_cpu_runtime(cpu_runtime)
    require_file(checkpoint, "Wav2Lip checkpoint", WAV2LIP_HINT)

    def load() -> Predictor:
        import numpy as np

        from lipdub.inference.local import LocalPredictor, pick_device, resolve_cpu_runtime
        from lipdub.models.wav2lip import load_wav2lip_checkpoint

        runtime = resolve_cpu_runtime(requested)
        if runtime is CpuRuntime.ONNXRUNTIME and pick_device(device) == "cpu":
            from lipdub.inference.onnx_local import OnnxPredictor

            predictor = OnnxPredictor(checkpoint, model_cache or Settings().model_cache_dir)
        else:
            predictor = LocalPredictor(load_wav2lip_checkpoint(checkpoint), device, runtime)
        # One tiny batch now: the first call's set-up (kernels, buffers; 0.14 s on CPU)
        # happens here, beside the analysis, not in front of the first real batch.
        predictor(*(np.zeros((1, *t.dims), np.float32) for t in WAV2LIP.inputs))
        return Measured(predictor, LOCAL, WAV2LIP.name)

    return BackgroundPredictor(load)


def sovqae_restorer(spec: str, model: SOVQAE, device: str, batch_size: int,
                    resident: int) -> Restorer:
    """An identity's restorer: in this process, or loaded on the model server on first use
    (at most `resident` identity models kept loaded there, the least recently used
    unloaded first)."""
    from lipdub.restore.stage import Restorer

    if not is_remote(spec):
        return Restorer.local(model, device, batch_size)
    from lipdub.inference.export import sovqae_package

    contract, package = sovqae_package(model)
    package = ModelPackage(package.files, package.version, package.family, resident)
    return Restorer(remote_predictor(spec, contract, package), model.config.resolution,
                    batch_size)
