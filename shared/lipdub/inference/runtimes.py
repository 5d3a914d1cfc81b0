"""How the local backend may run Wav2Lip on a CPU: the names users pick (torch-free, so an
unknown name fails before anything heavy loads). CUDA always runs float16."""

from __future__ import annotations

from enum import StrEnum

from lipdub.errors import BadOptionError


class CpuRuntime(StrEnum):
    """Measured on 2-core machines, the network alone (benchmarks/RESULTS.md): at batch 8
    on session 6's, torch 23.5 frames/s, onnxruntime 24.6, torch-bf16 48.6; at batch 16
    on one with AVX512-BF16 but no AMX, torch 28.0, torch-bf16 20.6."""

    AUTO = "auto"  # torch-bf16 where the CPU has AMX (lipdub.inference.local), else torch
    TORCH = "torch"  # float32
    TORCH_BF16 = "torch-bf16"  # bfloat16 autocast, float32 accumulation
    ONNXRUNTIME = "onnxruntime"  # float32; the model exported to ONNX once, then cached


def parse_cpu_runtime(name: str) -> CpuRuntime:
    try:
        return CpuRuntime(name)
    except ValueError:
        raise BadOptionError(f"CPU runtime '{name}' is not known.",
                             f"Use one of: {', '.join(r.value for r in CpuRuntime)}.") from None
