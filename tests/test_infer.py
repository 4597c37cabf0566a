"""Multi-adapter serving on one tiny Llama base (real peft): a mixed batch with per-row
`adapter_names` gives the same logits and generations as each adapter loaded alone."""

from __future__ import annotations

from pathlib import Path

import torch

from research.infer import adapter_bytes, generate_mixed, serve
from research.pipeline import build
from tests.conftest import compose_cfg
from tests.test_lifecycle import LORA_OVERRIDES, load_fresh, logits, plain_base
from tests.test_methods import fit_on_one_batch


def train_adapter(directory: Path, steps: int) -> Path:
    module, datamodule = build(compose_cfg(*LORA_OVERRIDES))
    fit_on_one_batch(module, next(iter(datamodule.train_dataloader())), steps=steps)
    return module.method.save(module.model, directory)


def test_mixed_batch_equals_each_adapter_alone(tmp_path: Path):
    adapters = {"a": train_adapter(tmp_path / "a", 3), "b": train_adapter(tmp_path / "b", 8)}
    model = serve(plain_base(), adapters)
    module = build(compose_cfg(*LORA_OVERRIDES))[0]
    tokenizer = module.tokenizer
    prompts, names = ["hello there", "a longer prompt here", "bye"], ["a", "b", "a"]
    enc = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        mixed = model(**enc, adapter_names=names).logits
    mixed_text = generate_mixed(model, tokenizer, prompts, names, max_new_tokens=6, do_sample=False)

    for name in adapters:
        alone = load_fresh(module, adapters[name])
        rows = [i for i, n in enumerate(names) if n == name]
        torch.testing.assert_close(mixed[rows], logits(alone, {k: v[rows] for k, v in enc.items()}), atol=1e-6, rtol=0)
        assert [mixed_text[i] for i in rows] == generate_mixed(
            alone, tokenizer, [prompts[i] for i in rows], ["default"] * len(rows), max_new_tokens=6, do_sample=False
        )
    assert not torch.equal(mixed[0], model(**enc, adapter_names=["b"] * 3).logits[0])
    assert 0 < adapter_bytes(model, "a") == adapter_bytes(model, "b")
