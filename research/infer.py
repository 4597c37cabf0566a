"""Serve several adapters on one base:  python -m research.infer model=tiny_llama \
    --adapter a=outputs/run1/weights --adapter b=outputs/run2/weights --prompt a:"text" --prompt b:"text"

The base loads once; each adapter is added by name (`load_adapter`); one mixed batch is answered with
peft's per-row `adapter_names` (LoRA), so rows for different tasks share a forward pass."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from omegaconf import OmegaConf
from peft import PeftModel
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from research.models import ModelSpec, build_model, build_tokenizer

CONF = Path(__file__).resolve().parents[1] / "conf" / "model"


def serve(base: PreTrainedModel, adapters: dict[str, Path]) -> PeftModel:
    """One base, every adapter loaded under its name, frozen, eval mode."""
    (first, path), *rest = adapters.items()
    model = PeftModel.from_pretrained(base, str(path), adapter_name=first, is_trainable=False)
    for name, path in rest:
        model.load_adapter(str(path), adapter_name=name, is_trainable=False)
    return model.eval()


@torch.no_grad()
def generate(
    model: PeftModel, tokenizer: PreTrainedTokenizerBase, prompts: list[str], names: list[str], **kwargs
) -> list[str]:
    """Greedy answers for a mixed batch: row i uses adapter names[i]."""
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    out = model.generate(**enc, adapter_names=names, pad_token_id=tokenizer.pad_token_id, **kwargs)
    return tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def adapter_bytes(model: PeftModel, name: str) -> int:
    """Parameter bytes of one named adapter (its LoRA factors)."""
    return sum(p.numel() * p.element_size() for n, p in model.named_parameters() if f".{name}." in n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model=<conf/model name>")
    parser.add_argument("--adapter", action="append", required=True, help="name=weights_dir")
    parser.add_argument("--prompt", action="append", required=True, help="adapter_name:text")
    parser.add_argument("--seed", type=int, default=0, help="for pretrained=false models: the run's seed")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    spec = ModelSpec(**OmegaConf.to_container(OmegaConf.load(CONF / f"{args.model.split('=')[-1]}.yaml")))
    tokenizer = build_tokenizer(spec)
    torch.manual_seed(args.seed)
    model = serve(build_model(spec, tokenizer), dict(_pair(a, "=") for a in args.adapter))
    names, prompts = zip(*(_pair(p, ":") for p in args.prompt), strict=True)
    answers = generate(model, tokenizer, list(prompts), list(names), max_new_tokens=args.max_new_tokens)
    for name, prompt, answer in zip(names, prompts, answers, strict=True):
        print(f"[{name}] {prompt!r} -> {answer!r}")


def _pair(text: str, sep: str) -> tuple[str, str]:
    key, _, value = text.partition(sep)
    if not key or not value:
        raise SystemExit(f"expected 'name{sep}value', got {text!r}")
    return key, value


if __name__ == "__main__":
    main()
