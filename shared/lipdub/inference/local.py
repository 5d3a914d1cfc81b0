"""In-process PyTorch inference on CPU or CUDA."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from lipdub.inference.runtimes import CpuRuntime

# (mel (B,1,80,16), faces (B,6,96,96)) float32 -> (B,3,96,96) float32 in [0, 1]
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def pick_device(requested: str = "auto") -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def fast_bf16() -> bool:
    """The CPU multiplies bfloat16 matrices in AMX tiles. bfloat16 made Wav2Lip twice as
    fast as float32 on the machines that had them (benchmarks/RESULTS.md, sessions 6-7),
    but ran 20.6 against 28.0 frames/s on one with AVX512-BF16 alone; with neither,
    oneDNN emulates it, slower still."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)  # torch 2.3+
    return bool(amx is not None and amx() and torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def resolve_cpu_runtime(runtime: CpuRuntime) -> CpuRuntime:
    """`auto` made concrete for this CPU."""
    if runtime is CpuRuntime.AUTO:
        return CpuRuntime.TORCH_BF16 if fast_bf16() else CpuRuntime.TORCH
    return runtime


def fold_batchnorm(model: torch.nn.Module) -> torch.nn.Module:
    """Fold every eval-mode BatchNorm into the convolution before it (same outputs, less work)."""
    for module in model.modules():
        block = getattr(module, "conv_block", None)
        if isinstance(block, torch.nn.Sequential) and len(block) == 2 and isinstance(
            block[1], torch.nn.BatchNorm2d
        ):
            conv, bn = block[0], block[1]
            if isinstance(conv, torch.nn.ConvTranspose2d):
                fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn, transpose=True)
            else:
                fused = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
            module.conv_block = torch.nn.Sequential(fused, torch.nn.Identity())
    return model


class LocalPredictor:
    def __init__(self, model: torch.nn.Module, device: str = "auto",
                 runtime: CpuRuntime = CpuRuntime.TORCH) -> None:
        self.device = pick_device(device)
        self._bf16 = self.device == "cpu" and runtime is CpuRuntime.TORCH_BF16
        self.model = fold_batchnorm(model.eval()).to(self.device)
        if self.device == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)
        self._half = self.device == "cuda"
        if self._half:
            self.model = self.model.half()

    @torch.inference_mode()
    def __call__(self, mel: np.ndarray, faces: np.ndarray) -> np.ndarray:
        dtype = torch.float16 if self._half else torch.float32
        m = torch.from_numpy(mel).to(self.device, dtype)
        f = torch.from_numpy(faces).to(self.device, dtype)
        if self.device == "cpu":
            f = f.contiguous(memory_format=torch.channels_last)
        bf16 = (torch.autocast("cpu", dtype=torch.bfloat16) if self._bf16
                else contextlib.nullcontext())
        with bf16:
            return self.model(m, f).float().cpu().numpy()
