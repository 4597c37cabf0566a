"""Answer prompts with trained runs, each set up exactly as it was trained:
    peftlab infer run_dir=outputs/.../<run> prompt="#Person1#: Hi ..." [prompt=...] [key=value ...]
    peftlab infer run_dir=<run a> run_dir=<run b> prompt=...      (peft runs of one base share it)

The run's record gives the base (and its seed), the method that loads the weights, the instruction template
and the chat template. The template is used in its evaluation form: training may draw a different phrasing
per example, scoring and serving always use the first. `key=value` overrides the run's config in Hydra's
syntax, as `train` reads them (model.name_or_path=... when the base moved, generation.max_new_tokens=...).
From Python, `serve` and `generate_mixed` answer a mixed batch with several adapters, one per row."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import torch
from hydra.utils import instantiate
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from research.data.collate import cut_middle, pad
from research.loop import generate
from research.runs import WEIGHTS, LoadedRun, load_run, run_config
from research.tasks import Task

USAGE = 'usage: peftlab infer run_dir=<run folder> [run_dir=...] prompt="..." [prompt="..."] [key=value ...]'


def prompts(run: LoadedRun, texts: list[str]) -> list[str]:
    """The run's prompt format: its instruction template's evaluation form, then its chat template."""
    data = instantiate(run.cfg.data, tokenizer=run.tokenizer, task=run.spec.task, chat_template=run.spec.chat_template)
    return [data.prompt(text, train=False, index=i) for i, text in enumerate(texts)]


def answer(run: LoadedRun, texts: list[str]) -> list[str]:
    """Prompts encoded and truncated as the run's evaluation encoded them; the run's generation settings."""
    limit, formatted = run.cfg.data.max_source_length, prompts(run, texts)
    if run.spec.task is Task.CAUSAL:
        ids = [cut_middle(run.tokenizer(p, add_special_tokens=False)["input_ids"], limit) for p in formatted]
        prompt_ids, prompt_mask = pad(ids, run.tokenizer.pad_token_id, left=True)
        batch = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask}
    else:
        ids = [run.tokenizer(p, truncation=True, max_length=limit)["input_ids"] for p in formatted]
        input_ids, attention_mask = pad(ids, run.tokenizer.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    if run.adapter is not None:
        run.model.set_adapter(run.adapter)
    return generate(run.model, run.tokenizer, run.spec.task, batch, dict(run.cfg.generation))


def load_runs(run_dirs: list[Path], overrides: list[str]) -> list[LoadedRun]:
    """One run as `load_run` builds it. Several runs must be one peft method on one base (model config and
    seed): the base loads once, with the first run's adapter, and each other run adds its own beside it."""
    first = load_run(run_dirs[0], overrides)
    if len(run_dirs) == 1:
        return [first]
    if not isinstance(first.model, PeftModel):
        raise ValueError(
            f"method {first.method.name!r} changes the base's own weights: only peft adapters share a base; "
            "run infer once per run"
        )
    runs = [replace(first, adapter=first.model.active_adapter)]
    for i, run_dir in enumerate(run_dirs[1:], start=1):
        cfg = run_config(run_dir, overrides)
        if cfg.method.name != first.method.name:
            raise ValueError(
                f"run_dir={run_dir} trained {cfg.method.name!r}, run_dir={run_dirs[0]} {first.method.name!r}: "
                "runs served on one base must share a method"
            )
        if cfg.model != first.cfg.model or cfg.seed != first.cfg.seed:
            raise ValueError(f"run_dir={run_dir} has another base than run_dir={run_dirs[0]} (model or seed differ)")
        first.model.load_adapter(str(run_dir / WEIGHTS), adapter_name=f"run{i}", is_trainable=False)
        runs.append(replace(first, cfg=cfg, method=instantiate(cfg.method), adapter=f"run{i}"))
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


def parse(argv: list[str]) -> tuple[list[Path], list[str], list[str]]:
    """`run_dir=` and `prompt=` (each once or more) are taken as they are; the rest are overrides."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        raise SystemExit(0)
    run_dirs = [Path(a.split("=", 1)[1]) for a in argv if a.startswith("run_dir=")]
    texts = [a.split("=", 1)[1] for a in argv if a.startswith("prompt=")]
    overrides = [a for a in argv if not a.startswith(("run_dir=", "prompt="))]
    if not run_dirs or not texts:
        raise SystemExit(f"{USAGE}\ninfer: missing {'run_dir=' if not run_dirs else 'prompt='}")
    return run_dirs, texts, overrides


def main(argv: list[str] | None = None) -> None:
    run_dirs, texts, overrides = parse(sys.argv[1:] if argv is None else argv)
    try:
        runs = load_runs(run_dirs, overrides)
    except (OSError, ValueError) as err:
        raise SystemExit(f"infer: {err}") from None
    for run_dir, run in zip(run_dirs, runs, strict=True):
        label = f"[{run_dir}] " if len(runs) > 1 else ""
        for text, reply in zip(texts, answer(run, texts), strict=True):
            print(f"{label}{text!r} -> {reply!r}")


if __name__ == "__main__":
    main()
