"""A method of one's own is one Python file and one YAML, outside this repository: LayerNorm tuning
(only the normalisation weights train), written to a folder the way a user would, found by Hydra through
`hydra.searchpath`, imported from the Python path, and run through every command: train, evaluate
(re-scores the run exactly), infer, and merge (a plain transformers checkpoint with the same logits)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from safetensors.torch import load_file
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

from research.pipeline import evaluate, rebuild, train
from research.pipeline.serving import answer, merge_run
from tests.helpers import CONF, compose_cfg, small, user_files

METHOD_FILE = '''\
"""LayerNorm tuning: only the weights of the normalisation layers train; merging has nothing to fold."""

from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from research.methods.base import Context, Method

FILE = "layernorm.safetensors"


def is_norm(module: nn.Module) -> bool:
    return type(module).__name__.endswith(("LayerNorm", "RMSNorm"))


class LayerNormTuning(Method):
    def inject(self, model, ctx: Context) -> nn.Module:
        model.requires_grad_(False)
        for module in filter(is_norm, model.modules()):
            module.requires_grad_(True)
        return model

    def save(self, model: nn.Module, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        trained = {n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(trained, str(directory / FILE))
        return directory

    def load(self, base, directory: Path, ctx: Context) -> nn.Module:
        unexpected = base.load_state_dict(load_file(str(directory / FILE)), strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"{directory / FILE} does not fit this base: {unexpected[:5]}")
        return base.requires_grad_(False).eval()

    def merge(self, model: nn.Module) -> nn.Module:
        return model  # the norms were trained in place: the model is already a plain one
'''

METHOD_YAML = """\
# LayerNorm tuning (my_code/layernorm_tuning.py): only the normalisation weights train.
_target_: layernorm_tuning.LayerNormTuning
name: layernorm
lr: 3.0e-02
"""

# tiny_t5's norms, each a weight of width 128: 2 per encoder block and 3 per decoder block (self-attention,
# cross-attention, feed-forward) in 2 blocks each, plus each stack's final norm.
NORMS = 2 * 2 + 1 + 3 * 2 + 1
SHORT = ["data.max_source_length=96", "data.max_target_length=24"]  # seconds, not minutes, on a busy CPU
PROMPTS = ["#Person1#: Is the train late? #Person2#: Ten minutes, sorry.", "#Person1#: Hi! #Person2#: Hello."]


@pytest.fixture
def user_method(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The two files, where a user keeps them; returns the override that puts the YAML on Hydra's path."""
    return user_files(
        tmp_path, monkeypatch, code={"layernorm_tuning.py": METHOD_FILE}, conf={"method/layernorm.yaml": METHOD_YAML}
    )


def test_own_method_trains_evaluates_infers_and_merges(user_method: str, tmp_path: Path):
    run_dir = tmp_path / "run"
    run = ["model=tiny_t5", "method=layernorm", "trainer.max_epochs=2", "logger=none", "callbacks=none", *SHORT]
    record = train(compose_cfg(*small(user_method, *run, f"paths.output_dir={run_dir}")))
    assert record.method == "layernorm" and record.params["trainable"] == NORMS * 128
    assert record.metrics["test/loss"] < record.metrics["zero_shot/loss"]
    saved = load_file(str(run_dir / "weights" / "layernorm.safetensors"))
    assert len(saved) == NORMS and all("layer_norm" in name for name in saved)

    # evaluate: composed with its defaults (method=lora); the run's record names the method that loads it
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "evaluate", overrides=small(*SHORT, f"run_dir={run_dir}", f"paths.output_dir={tmp_path / 'eval'}")
        )
    rescored = evaluate(cfg).metrics
    expected = {k: v for k, v in record.metrics.items() if k.startswith("test/") and not k.endswith("eval_s")}
    assert {k: rescored[k] for k in expected} == pytest.approx(expected, abs=1e-6)

    loaded = rebuild(run_dir)
    assert all(torch.equal(loaded.model.get_parameter(name), tensor) for name, tensor in saved.items())
    replies = answer(loaded, PROMPTS)
    assert len(replies) == len(PROMPTS) and all(isinstance(r, str) for r in replies)

    out = merge_run(run_dir, tmp_path / "merged")
    plain = AutoModelForSeq2SeqLM.from_pretrained(out).eval()  # plain transformers: no peft, no research
    tokenizer = AutoTokenizer.from_pretrained(out)
    enc = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    decoder = torch.zeros((len(PROMPTS), 3), dtype=torch.long)  # pad id: T5's decoder start token
    with torch.no_grad():
        merged_logits = plain(**enc, decoder_input_ids=decoder).logits
        torch.testing.assert_close(merged_logits, loaded.model(**enc, decoder_input_ids=decoder).logits, atol=0, rtol=0)
    assert answer(dataclasses.replace(loaded, model=plain), PROMPTS) == replies  # it serves the same answers
