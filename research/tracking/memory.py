"""Peak resident memory of this process, resettable per run (several multirun jobs share a process)."""

from __future__ import annotations

from pathlib import Path

import torch

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        pass
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak() -> dict[str, float]:
    out = {}
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                out["peak_rss_mb"] = int(line.split()[1]) / 1024
    if torch.cuda.is_available():
        out["peak_gpu_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out
