"""Current resident memory and model FLOPs utilisation (weight bytes: `research.tracking.memory.model_bytes`)."""

from __future__ import annotations

from pathlib import Path

import torch

# Dense bf16 peak TFLOP/s by device name, used for MFU when --peak-tflops is not given.
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L4": 121.0}


def rss_mb() -> float:
    """Current resident memory (VmRSS) of this process."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def mfu(params: float, tokens_per_s: float, peak_tflops: float | None) -> float | None:
    """Model FLOPs utilisation with the usual 6 * parameters * tokens per training step (forward 2,
    backward 4): an approximation that ignores attention FLOPs and counts the backward of frozen weights."""
    if not torch.cuda.is_available():
        return None
    if peak_tflops is None:
        name = torch.cuda.get_device_name()
        peak_tflops = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return None if peak_tflops is None else 6 * params * tokens_per_s / (peak_tflops * 1e12)
