"""Wav2Lip in this process through onnxruntime (the `onnxruntime` CPU runtime). The
checkpoint is exported once, BatchNorm folded and checked against PyTorch, to a cache
keyed by the checkpoint's digest: the export takes seconds, later runs load the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from lipdub.inference.contract import WAV2LIP
from lipdub.inference.local import fold_batchnorm
from lipdub.models.wav2lip import load_wav2lip_checkpoint


def checkpoint_digest(checkpoint: Path) -> str:
    digest = hashlib.sha256()
    with checkpoint.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class OnnxPredictor:
    """A Predictor (the same contract as LocalPredictor) on onnxruntime's CPU provider,
    with as many threads as torch would use."""

    def __init__(self, checkpoint: Path, cache: Path) -> None:
        import onnxruntime

        path = cache / "onnx" / f"wav2lip-{checkpoint_digest(checkpoint)[:32]}.onnx"
        if not path.exists():
            from lipdub.inference.export import export_onnx

            export_onnx(fold_batchnorm(load_wav2lip_checkpoint(checkpoint).eval()), path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3  # errors only: its warnings are not the user's
        self.session = onnxruntime.InferenceSession(str(path), options,
                                                    providers=["CPUExecutionProvider"])
        self.path = path
        self._names = [t.name for t in WAV2LIP.inputs]

    def __call__(self, mel: np.ndarray, faces: np.ndarray) -> np.ndarray:
        feed = dict(zip(self._names, (np.ascontiguousarray(mel, np.float32),
                                      np.ascontiguousarray(faces, np.float32)), strict=True))
        return self.session.run(None, feed)[0]
