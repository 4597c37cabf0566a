"""Generation workloads, both through `FineTuneModule.generate` (the evaluation path):

- throughput: one batch, exactly `new_tokens` per row (`min_new_tokens` = `max_new_tokens`), so every
  method does the same work whatever its outputs;
- batched vs per-example: the configured decoding (stops at EOS) on the same rows, one batch against a
  loop of single-row `generate` calls (the reference lab's way), with the outputs compared."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from research.data.collate import Collator
from research.loop.module import FineTuneModule


def throughput(module: FineTuneModule, rows: list[dict[str, Any]], collate: Collator, new_tokens: int) -> dict:
    saved = module.generation
    module.generation = {**saved, "max_new_tokens": new_tokens, "min_new_tokens": new_tokens}
    try:
        module.model.eval()
        _generate(module, collate, rows[:1])  # warm-up: first-call allocations, lazy initialisation
        seconds, _ = _timed(lambda: _generate(module, collate, rows))
    finally:
        module.generation = saved
    tokens = len(rows) * new_tokens
    return {"rows": len(rows), "new_tokens": new_tokens, "seconds": seconds, "tokens_per_s": tokens / seconds}


def batched_vs_loop(
    module: FineTuneModule, rows: list[dict[str, Any]], collate: Collator, new_tokens: int, repeats: int
) -> dict:
    saved = module.generation
    module.generation = {**saved, "max_new_tokens": new_tokens}
    module.model.eval()
    sides: dict[str, Callable[[], list[str]]] = {
        "batched": lambda: _generate(module, collate, rows),
        "loop": lambda: [_generate(module, collate, [row])[0] for row in rows],
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    outputs: dict[str, list[str]] = {}
    try:
        _generate(module, collate, rows[:1])  # warm-up
        for _ in range(repeats):  # interleaved: a noisy moment slows both sides
            for name, fn in sides.items():
                seconds, outputs[name] = _timed(fn)
                times[name].append(seconds)
    finally:
        module.generation = saved
    equal = sum(a == b for a, b in zip(outputs["batched"], outputs["loop"], strict=True))
    batched_s, loop_s = statistics.median(times["batched"]), statistics.median(times["loop"])
    return {
        "rows": len(rows),
        "max_new_tokens": new_tokens,
        "batched_s": batched_s,
        "loop_s": loop_s,
        "speedup": loop_s / batched_s,
        "outputs_equal": equal,
        "outputs_equal_all": equal == len(rows),
        "examples": [
            {"batched": a, "loop": b} for a, b in zip(outputs["batched"][:3], outputs["loop"][:3], strict=True)
        ],
    }


def _generate(module: FineTuneModule, collate: Collator, rows: list[dict[str, Any]]) -> list[str]:
    device = next(module.model.parameters()).device
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in collate(rows).items()}
    return module.generate(batch)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - started, out
