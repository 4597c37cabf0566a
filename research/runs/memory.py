"""Memory of a run: peak resident memory of this process, resettable per run (several multirun jobs
share a process), and the bytes of the model as loaded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")


def reset_peak() -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    with contextlib.suppress(OSError):  # not Linux, or not permitted: the peak then spans the process
        CLEAR_REFS.write_text("5")
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def _status_mb(key: str) -> float | None:
    """A memory line of /proc/self/status (VmRSS, VmHWM, ...) in MiB; None where there is none (not Linux)."""
    if STATUS.exists():
        for line in STATUS.read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    return None


def rss_mb() -> float:
    """Current resident memory of this process (NaN where unknown)."""
    value = _status_mb("VmRSS")
    return float("nan") if value is None else value


def peak() -> dict[str, float]:
    out = {}
    if (hwm := _status_mb("VmHWM")) is not None:
        out["peak_rss_mb"] = hwm
    if torch.cuda.is_available():
        out["peak_gpu_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def model_bytes(model: nn.Module) -> dict[str, int]:
    """The model's parameter bytes as loaded (4-bit packed weights plus their quantization states),
    beside the same parameters held in float32 and in bfloat16 (4-bit: 2 parameters per stored byte),
    so QLoRA's saving is a recorded number. Buffers (rotary tables) are left out of all three."""
    loaded = n_params = 0
    states: dict[int, torch.Tensor] = {}  # quantization-state tensors, by storage: each counted once
    for p in model.parameters():
        loaded += p.numel() * p.element_size()
        quant_state = getattr(p, "quant_state", None)
        if quant_state is None:
            n_params += p.numel()
            continue
        n_params += p.numel() * 2
        states |= {t.data_ptr(): t for t in _state_tensors(quant_state)}
    loaded += sum(t.numel() * t.element_size() for t in states.values())
    return {"model_bytes": loaded, "model_bytes_float32": 4 * n_params, "model_bytes_bfloat16": 2 * n_params}


def _state_tensors(state: Any) -> Iterator[torch.Tensor]:
    """The tensors a bitsandbytes `QuantState` holds (scales, code book), its nested state included."""
    for value in vars(state).values():
        if torch.is_tensor(value):
            yield value
        elif hasattr(value, "absmax"):  # `state2`: the double-quantized scales' own state
            yield from _state_tensors(value)
