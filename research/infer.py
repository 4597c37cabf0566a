"""Answer prompts with a trained run, set up exactly as it was trained:
    peftlab infer run_dir=outputs/.../<run> prompt="#Person1#: Hi ..." [prompt=...] [key=value ...]

The run's record gives the base (and its seed), the method that loads the weights, the instruction template
and the chat template; `key=value` overrides the run's config (model.name_or_path=... when the base moved,
generation.max_new_tokens=...). `serve` puts several peft adapters on one base for mixed batches."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from hydra.utils import instantiate
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from research.data.collate import cut_middle, pad
from research.loop import generate
from research.runs import LoadedRun, load_run
from research.tasks import Task


def answer(run: LoadedRun, texts: list[str]) -> list[str]:
    """The run's own prompt format (template, chat template, truncation) and generation settings."""
    data = instantiate(run.cfg.data, tokenizer=run.tokenizer, task=run.spec.task, chat_template=run.spec.chat_template)
    prompts = [data.prompt(text, train=False, index=i) for i, text in enumerate(texts)]
    limit = run.cfg.data.max_source_length
    if run.spec.task is Task.CAUSAL:
        ids = [cut_middle(run.tokenizer(p, add_special_tokens=False)["input_ids"], limit) for p in prompts]
        prompt_ids, prompt_mask = pad(ids, run.tokenizer.pad_token_id, left=True)
        batch = {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask}
    else:
        ids = [run.tokenizer(p, truncation=True, max_length=limit)["input_ids"] for p in prompts]
        input_ids, attention_mask = pad(ids, run.tokenizer.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
    return generate(run.model, run.tokenizer, run.spec.task, batch, dict(run.cfg.generation))


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


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    run_dirs = [a.split("=", 1)[1] for a in argv if a.startswith("run_dir=")]
    texts = [a.split("=", 1)[1] for a in argv if a.startswith("prompt=")]
    overrides = [a for a in argv if not a.startswith(("run_dir=", "prompt="))]
    if len(run_dirs) != 1 or not texts or any("=" not in a for a in overrides):
        raise SystemExit('usage: peftlab infer run_dir=<run folder> prompt="..." [prompt="..."] [key=value ...]')
    try:
        run = load_run(Path(run_dirs[0]), overrides)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"infer: {err}") from None
    for text, reply in zip(texts, answer(run, texts), strict=True):
        print(f"{text!r} -> {reply!r}")


if __name__ == "__main__":
    main()
