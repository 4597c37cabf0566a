"""Serving a finished run: prompts answered exactly as the run was trained and scored (its instruction
template's evaluation form, its chat template, its truncation and generation settings), several peft runs
on one base, a mixed batch with one adapter per row, and the run merged into a plain transformers model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from research.config import build_node
from research.data import build_data
from research.methods.base import Context
from research.pipeline.building import WEIGHTS
from research.pipeline.rebuilding import LoadedRun, rebuild, run_config


def prompts(run: LoadedRun, texts: list[str]) -> list[str]:
    """The run's prompt format: its instruction template's evaluation form, then its chat template."""
    data = build_data(run.cfg.data, run.spec, run.tokenizer)
    return [data.prompt(text, train=False, index=i) for i, text in enumerate(texts)]


def answer(run: LoadedRun, texts: list[str]) -> list[str]:
    """Prompts encoded and truncated as the run's evaluation encoded them; the run's generation settings."""
    task = run.spec.task
    batch = task.prompt_inputs(run.tokenizer, prompts(run, texts), run.cfg.data.max_source_length)
    if run.adapter is not None:
        run.model.set_adapter(run.adapter)
    return task.generate(run.model, run.tokenizer, batch, dict(run.cfg.generation))


def load_runs(run_dirs: list[Path], overrides: list[str]) -> list[LoadedRun]:
    """One run as `rebuild` builds it. Several runs must be one peft method on one base (model config and
    seed): the base loads once with the first run's weights, and each other run's method loads its own
    beside them, as a named adapter."""
    first = rebuild(run_dirs[0], overrides)
    if len(run_dirs) == 1:
        return [first]
    runs = [replace(first, adapter=getattr(first.model, "active_adapter", None))]
    for i, run_dir in enumerate(run_dirs[1:], start=1):
        cfg = run_config(run_dir, overrides)
        if cfg.method.name != first.method.name:
            raise ValueError(
                f"run_dir={run_dir} trained {cfg.method.name!r}, run_dir={run_dirs[0]} {first.method.name!r}: "
                "runs served on one base must share a method"
            )
        if cfg.model != first.cfg.model or cfg.seed != first.cfg.seed:
            raise ValueError(f"run_dir={run_dir} has another base than run_dir={run_dirs[0]} (model or seed differ)")
        method = build_node(cfg.method)
        method.load_beside(first.model, run_dir / WEIGHTS, f"run{i}", Context(first.spec.task, first.tokenizer))
        runs.append(replace(first, cfg=cfg, method=method, adapter=f"run{i}"))
    return runs


def serve(base: PreTrainedModel, adapters: dict[str, Path]) -> PeftModel:
    """One base, several peft adapters loaded under their names, frozen, eval mode."""
    (first, path), *rest = adapters.items()
    model = PeftModel.from_pretrained(base, str(path), adapter_name=first, is_trainable=False)
    for name, path in rest:
        model.load_adapter(str(path), adapter_name=name, is_trainable=False)
    return model.eval()


@torch.no_grad()
def generate_mixed(
    model: PeftModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], names: list[str], **kwargs
) -> list[str]:
    """Greedy answers of a decoder-only model for a mixed batch: row i uses adapter names[i] (peft's
    per-row `adapter_names`), so rows for different tasks share a forward pass."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, adapter_names=names, pad_token_id=tokenizer.pad_token_id, **kwargs)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def adapter_bytes(model: PeftModel, name: str) -> int:
    """Parameter bytes of one named adapter."""
    return sum(p.numel() * p.element_size() for n, p in model.named_parameters() if f".{name}." in n)


def merge_run(run_dir: Path, out: Path, overrides: list[str] | None = None) -> Path:
    """`out` must be new or empty: a merged model never lands among other files."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"out={str(out)!r} already exists and is not an empty folder; choose a new one")
    run = rebuild(run_dir, overrides or [])
    run.method.export(run.model, run.tokenizer, out)
    return out
