"""The wire protocol of the Ray Serve application, shared by server and client: paths, the
multiplexing header, and arrays as numpy's own .npz, read with allow_pickle=False (no code
in a payload)."""

from __future__ import annotations

import io

import numpy as np

READY_PATH = "/v2/health/ready"
MODEL_HEADER = "serve_multiplexed_model_id"  # Ray Serve routes by it to a replica
OUTPUT = "output"


def infer_path(model: str) -> str:
    return f"/v2/models/{model}/infer"


def file_path(model: str, version: int, file: str) -> str:
    return f"/v2/models/{model}/{version}/{file}"


def encode_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_arrays(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}
