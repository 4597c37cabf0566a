"""Model FLOPs utilisation (memory: `research.tracking.memory`)."""

from __future__ import annotations

import torch

# Dense bf16 peak TFLOP/s by device name, used for MFU when --peak-tflops is not given.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0}


def mfu(params: float, tokens_per_s: float, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation with the usual 6 * parameters * tokens per training step (forward 2,
    backward 4): an approximation that ignores attention FLOPs and counts the backward of frozen weights."""
    if not torch.cuda.is_available():
        return None
    if peak_tflops is None:
        name = torch.cuda.get_device_name()
        peak_tflops = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return None if peak_tflops is None else 6 * params * tokens_per_s / (peak_tflops * 1e12)
