"""What each served model takes and gives: tensor names, shapes (without the batch
dimension) and types. The one place they are written: the inference clients send these,
the model exporter names them, and a test checks every config.pbtxt of the model repository
against them.

Inputs and outputs are FP32 on the wire whatever the device: a GPU instance computes in
FP16 inside the model (the python backend casts; TensorRT runs with FP16 precision), so one
client serves CPU and GPU servers alike."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Tensor:
    name: str
    dims: tuple[int, ...]  # -1: any size
    datatype: str = "FP32"  # Triton's name for it (numpy float32)


@dataclass(frozen=True)
class ModelContract:
    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    max_batch_size: int

    def input(self, name: str) -> Tensor:
        return next(t for t in self.inputs if t.name == name)


# The Wav2Lip generator: 16 mel frames (0.2 s) and the face window (the masked target face
# stacked on a reference face, 6 channels) -> the generated face, in [0, 1].
WAV2LIP = ModelContract(
    name="wav2lip",
    inputs=(Tensor("mel", (1, 80, 16)), Tensor("faces", (6, 96, 96))),
    outputs=(Tensor("generated", (3, 96, 96)),),
    max_batch_size=128,
)
# The same network exported to ONNX, for the NGC container's onnxruntime backend.
WAV2LIP_ONNX = ModelContract(
    name="wav2lip_onnx", inputs=WAV2LIP.inputs, outputs=WAV2LIP.outputs,
    max_batch_size=WAV2LIP.max_batch_size)

CONTRACTS = {c.name: c for c in (WAV2LIP, WAV2LIP_ONNX)}

# Every torch model is served as its torch.export program, `<model>/<version>/model.pt2`,
# by one server-side backend (services/model_server/.../triton_backends/lipdub_torch).
TORCH_BACKEND = "lipdub_torch"
PROGRAM_FILE = "model.pt2"

# Identity restorers are not in the repository: each identity version is its own model,
# named by a digest of its weights (so the same weights are one model whichever tenant or
# job uses them, and no tenant or person's name reaches the server), and loaded on demand.
SOVQAE_PREFIX = "sovqae-"
SOVQAE_MAX_BATCH = 64


def sovqae_contract(name: str, resolution: int) -> ModelContract:
    """One identity version's restorer: face crops resized to its resolution, in [0, 1]."""
    side = (3, resolution, resolution)
    return ModelContract(name=name, inputs=(Tensor("crops", side),),
                         outputs=(Tensor("restored", side),), max_batch_size=SOVQAE_MAX_BATCH)


@dataclass(frozen=True)
class ModelPackage:
    """What a server needs to load a model that is not in its repository: the files of its
    version folder (name -> bytes). Servers keep a bounded number of such models resident,
    the least recently used unloaded first."""

    files: dict[str, bytes] = field(repr=False)
    version: int = 1
    family: str = SOVQAE_PREFIX  # models whose names start so share the resident bound
    resident: int = 8  # how many models of the family a server keeps loaded
