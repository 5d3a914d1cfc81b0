"""`lipdub models export`: an operator's Wav2Lip checkpoint (loaded unchanged) into the
model repository, as an exported program (torch.export, .pt2) for the python backend and as
ONNX for the NGC container's onnxruntime/TensorRT backend, both with a dynamic batch.
BatchNorm is folded first, as the local backend does, so every backend computes the same
network. The ONNX file is checked against PyTorch with onnxruntime before it is kept. Files
are written atomically: a failed export leaves the repository as it was."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

from lipdub.errors import LipDubError
from lipdub.inference.contract import (
    PROGRAM_FILE,
    SOVQAE_PREFIX,
    WAV2LIP,
    WAV2LIP_ONNX,
    ModelContract,
    ModelPackage,
    sovqae_contract,
)
from lipdub.inference.local import fold_batchnorm
from lipdub.models.wav2lip import load_wav2lip_checkpoint
from lipdub.restore.model import SOVQAE, SOVQAEInference

ONNX_FILE = "model.onnx"  # Triton's default name for onnxruntime models
ONNX_TOLERANCE = 1e-4  # outputs lie in [0, 1]; float32 reorderings stay far below this
ONNX_OPSET = 18
T = TypeVar("T")


class ExportCheckError(LipDubError):
    code = "export_check_failed"


@dataclass(frozen=True)
class ExportReport:
    program: Path
    onnx: Path | None
    onnx_max_abs_diff: float | None


def example_batch(contract: ModelContract, batch: int, seed: int = 0) -> list[np.ndarray]:
    """Random inputs of the contract's shapes (values in [0, 1] for faces, ~N(0,1) for mel
    features), for tracing and checking."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal if t.name == "mel" else rng.random)(
        (batch, *t.dims)).astype(np.float32) for t in contract.inputs]


def model_file(repository: Path, contract: ModelContract, file: str, version: int = 1) -> Path:
    return repository / contract.name / str(version) / file


def _program(model: torch.nn.Module, contract: ModelContract):  # noqa: ANN202
    """The torch.export program of `model`, with a dynamic batch dimension."""
    example = tuple(torch.from_numpy(a) for a in example_batch(contract, 2))
    batch = torch.export.Dim("batch", min=1, max=contract.max_batch_size)
    dynamic = tuple({0: batch} for _ in contract.inputs)
    return torch.export.export(model, example, dynamic_shapes=dynamic), example, dynamic


def sovqae_package(model: SOVQAE) -> tuple[ModelContract, ModelPackage]:
    """An identity restorer as a model to load on a server: its contract (named by a
    digest of the weights) and its exported program."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    contract = sovqae_contract(SOVQAE_PREFIX + digest.hexdigest()[:24],
                               model.config.resolution)
    program, _, _ = _program(SOVQAEInference(model.cpu()).eval(), contract)
    with tempfile.TemporaryDirectory(prefix="lipdub-export-") as folder:
        path = Path(folder) / PROGRAM_FILE
        torch.export.save(program, str(path))
        return contract, ModelPackage({PROGRAM_FILE: path.read_bytes()})


def export_wav2lip(checkpoint: Path, repository: Path, onnx: bool = True) -> ExportReport:
    model = fold_batchnorm(load_wav2lip_checkpoint(checkpoint).eval())
    program, _, _ = _program(model, WAV2LIP)
    program_path = model_file(repository, WAV2LIP, PROGRAM_FILE)
    _atomic(program_path, lambda tmp: torch.export.save(program, str(tmp)))
    if not onnx:
        return ExportReport(program_path, None, None)
    onnx_path = model_file(repository, WAV2LIP_ONNX, ONNX_FILE)

    return ExportReport(program_path, onnx_path,
                        _atomic(onnx_path, lambda tmp: _write_onnx(model, tmp)))


def export_onnx(model: torch.nn.Module, target: Path) -> float:
    """A BatchNorm-folded Wav2Lip as a checked ONNX file at `target` (atomically); the
    largest difference from PyTorch on the check batch."""
    return _atomic(target, lambda tmp: _write_onnx(model, tmp))


def _write_onnx(model: torch.nn.Module, path: Path) -> float:
    example = tuple(torch.from_numpy(a) for a in example_batch(WAV2LIP, 2))
    batch = torch.export.Dim("batch", min=1, max=WAV2LIP.max_batch_size)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        torch.onnx.export(model, example, str(path), dynamo=True,
                          dynamic_shapes=tuple({0: batch} for _ in WAV2LIP.inputs),
                          input_names=[t.name for t in WAV2LIP.inputs],
                          output_names=[t.name for t in WAV2LIP.outputs],
                          opset_version=ONNX_OPSET, external_data=False, verbose=False)
    return check_onnx(model, path)  # refused files are never moved into place


def check_onnx(model: torch.nn.Module, path: Path, batch: int = 4) -> float:
    """The largest output difference between onnxruntime (CPU) and PyTorch on random
    inputs; refuses the file past ONNX_TOLERANCE."""
    import onnxruntime

    inputs = example_batch(WAV2LIP, batch, seed=1)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {t.name: a for t, a in zip(WAV2LIP.inputs, inputs,
                                                         strict=True)})[0]
    with torch.inference_mode():
        want = model(*(torch.from_numpy(a) for a in inputs)).numpy()
    diff = float(np.abs(got - want).max())
    if not diff <= ONNX_TOLERANCE:
        raise ExportCheckError(f"The ONNX model differs from PyTorch by up to {diff:.2g} "
                               f"(tolerance {ONNX_TOLERANCE}).",
                               "Report this with the torch and onnx versions.")
    return diff


def _atomic(target: Path, write: Callable[[Path], T]) -> T:
    """`write(tmp)` into a file beside `target`, moved into place only if it succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    # Hidden, and with the target's suffix (torch.export checks it).
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.part-",
                                suffix=target.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        result = write(tmp)
        tmp.chmod(0o644)  # the server may run as another user
        tmp.replace(target)
        return result
    finally:
        tmp.unlink(missing_ok=True)
