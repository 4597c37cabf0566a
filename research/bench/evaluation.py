"""Our evaluation path against a plain, hand-written batched `model.generate` loop: the same test
examples, batch size (data.eval_batch_size) and generation settings, run interleaved (A B B A ...).

- ours: `trainer.test` exactly as a training run scores its test split (batches in length order, the
  loss and the generation prompt from one pass, metrics), predictions put back in the split's order;
- loop: the split in its own order, batch after batch, `model.generate` on the left-padded prompt (the
  encoder input for seq2seq), decoded; no loss, no metrics.

The outputs are compared row by row; times are process CPU time and wall clock, median over repeats."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from research.data import DataModule
from research.loop.module import FineTuneModule


def ours_vs_loop(module: FineTuneModule, datamodule: DataModule, cfg: DictConfig, repeats: int) -> dict[str, Any]:
    sides: dict[str, Callable[[], list[str]]] = {
        "ours": lambda: _ours(module, datamodule, cfg),
        "loop": lambda: plain_loop(module, datamodule),
    }
    times: dict[str, dict[str, list[float]]] = {name: {"wall": [], "cpu": []} for name in sides}
    outputs: dict[str, list[str]] = {}
    for repeat in range(repeats):
        for name in sides if repeat % 2 == 0 else list(sides)[::-1]:
            started, cpu_started = time.perf_counter(), time.process_time()
            outputs[name] = sides[name]()
            times[name]["wall"].append(time.perf_counter() - started)
            times[name]["cpu"].append(time.process_time() - cpu_started)
    rows = len(outputs["loop"])
    equal = sum(a == b for a, b in zip(outputs["ours"], outputs["loop"], strict=True))
    median = {name: {clock: statistics.median(v) for clock, v in t.items()} for name, t in times.items()}
    return {
        "rows": rows,
        "batch_size": datamodule.eval_batch_size,
        "generation": dict(module.generation),
        "ours_s": median["ours"]["wall"],
        "loop_s": median["loop"]["wall"],
        "ours_cpu_s": median["ours"]["cpu"],
        "loop_cpu_s": median["loop"]["cpu"],
        "speedup": median["loop"]["wall"] / median["ours"]["wall"],
        "cpu_speedup": median["loop"]["cpu"] / median["ours"]["cpu"],
        "cpu_speedups": [b / a for a, b in zip(times["ours"]["cpu"], times["loop"]["cpu"], strict=True)],
        "examples_per_cpu_s": {name: rows / m["cpu"] for name, m in median.items()},
        "outputs_equal": equal,
        "outputs_equal_all": equal == rows,
        "examples": [{"ours": a, "loop": b} for a, b in zip(outputs["ours"][:3], outputs["loop"][:3], strict=True)],
    }


def _ours(module: FineTuneModule, datamodule: DataModule, cfg: DictConfig) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        trainer = instantiate(
            cfg.trainer, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, default_root_dir=tmp,
        )  # fmt: skip
        trainer.test(module, dataloaders=datamodule.test_dataloader(), verbose=False)
    return module.last_eval["predictions"]


@torch.no_grad()
def plain_loop(module: FineTuneModule, datamodule: DataModule) -> list[str]:
    """What a user writes by hand: the split in order, `generate`, decode."""
    model, tokenizer, task = module.model.eval(), module.tokenizer, module.task
    split, size = datamodule.splits["test"], datamodule.eval_batch_size
    outputs: list[str] = []
    for start in range(0, len(split), size):
        batch = datamodule.collate([split[i] for i in range(start, min(start + size, len(split)))])
        ids, mask = (batch[key].to(model.device) for key in task.prompt_keys)
        out = model.generate(
            input_ids=ids, attention_mask=mask,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, **module.generation,
        )  # fmt: skip
        outputs += [text.strip() for text in tokenizer.batch_decode(task.answer(out, ids), skip_special_tokens=True)]
    return outputs
