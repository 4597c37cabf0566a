"""Serving a trained run (research/infer.py): `answer` gives what `model.generate` gives on the same adapter
and prompts (tiny T5 and tiny Llama), with the run's prompt format in its evaluation form; the command takes
Hydra overrides as train does, refusing misspelled keys; several peft runs of one base share it. And
multi-adapter serving on one tiny Llama base: a mixed batch with per-row `adapter_names` gives the same
logits and generations as each adapter loaded alone."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from peft import PeftModel

from research import infer
from research.data.templates import TEMPLATES, render
from research.models import ModelSpec
from research.models.loading import build_base
from research.pipeline import build, rebuild
from research.pipeline.serving import adapter_bytes, answer, generate_mixed, load_runs, prompts, serve
from tests.helpers import (
    LORA_OVERRIDES,
    TEXTS,
    compose_cfg,
    fit_on_one_batch,
    load_fresh,
    logits,
    plain_base,
    train_run,
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {
        "tiny_t5": train_run(root / "t5", "model=tiny_t5", "generation.max_new_tokens=12"),
        "tiny_llama": train_run(root / "llama", "model=tiny_llama", "generation.max_new_tokens=12"),
        # the same base (model, seed) as tiny_llama, another adapter and no instruction template
        "tiny_llama_b": train_run(root / "llama_b", "model=tiny_llama", "method.lr=0.05", "data.template=null"),
    }


def reference(run_dir: Path, texts: list[str]) -> list[str]:
    """What a user gets by hand: the run's base, its adapter through plain peft, one prompt at a time through
    `model.generate`, the prompt cut off a decoder-only model's output."""
    run = rebuild(run_dir)
    spec = ModelSpec(**OmegaConf.to_container(run.cfg.model, resolve=True))
    model = PeftModel.from_pretrained(
        build_base(spec, run.tokenizer, run.method, seed=run.cfg.seed), run_dir / "weights"
    )
    causal = spec.task.value == "causal"
    out = []
    for text in texts:
        enc = run.tokenizer(
            TEMPLATES["summarize"][0].format(input=text), return_tensors="pt", add_special_tokens=not causal
        )
        with torch.no_grad():
            ids = model.eval().generate(**enc, max_new_tokens=12, do_sample=False, num_beams=1)
        ids = ids[:, enc["input_ids"].shape[1] :] if causal else ids
        out.append(run.tokenizer.decode(ids[0], skip_special_tokens=True).strip())
    return out


@pytest.mark.parametrize("model", ["tiny_t5", "tiny_llama"])
def test_infer_answers_what_generate_gives_on_the_same_adapter(runs: dict[str, Path], model: str):
    expected = reference(runs[model], TEXTS)
    assert all(expected) and expected[0] != expected[1], expected  # the comparison is not between empty strings
    assert answer(rebuild(runs[model]), TEXTS) == expected


def test_serving_uses_the_evaluation_form_of_the_runs_template(runs: dict[str, Path]):
    run = rebuild(runs["tiny_llama"])
    assert run.cfg.data.template == "summarize"
    # training draws a phrasing per example; a server must not: every prompt gets the first, as scoring does
    drawn = {render("summarize", TEXTS[0], train=True, seed=run.cfg.seed, index=i) for i in range(len(TEXTS) * 10)}
    assert len(drawn) > 1
    assert prompts(run, TEXTS * 10) == [TEMPLATES["summarize"][0].format(input=t) for t in TEXTS * 10]


def test_infer_command_takes_overrides_as_train_does(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]):
    run_dir = runs["tiny_llama"]
    infer.main([f"run_dir={run_dir}", f"prompt={TEXTS[0]}", "generation.max_new_tokens=3"])
    reply = capsys.readouterr().out.strip().split(" -> ")[1]
    assert reply == repr(answer(rebuild(run_dir, ["generation.max_new_tokens=3"]), TEXTS[:1])[0])
    assert len(eval(reply)) <= 3  # the byte tokenizer: one character per new token

    with pytest.raises(SystemExit, match=r"generaton.*did you mean generation\?"):
        infer.main([f"run_dir={run_dir}", "prompt=hi", "generaton.max_new_tokens=3"])
    with pytest.raises(SystemExit, match=r"model=tiny_t5: model is the run's config group"):
        infer.main([f"run_dir={run_dir}", "prompt=hi", "model=tiny_t5"])
    with pytest.raises(SystemExit, match="missing prompt="):
        infer.main([f"run_dir={run_dir}"])


def test_several_runs_of_one_base_are_served_on_it_each_as_it_was_trained(runs: dict[str, Path]):
    one, two = load_runs([runs["tiny_llama"], runs["tiny_llama_b"]], [])
    assert one.model is two.model and set(one.model.peft_config) == {one.adapter, two.adapter}
    assert prompts(two, TEXTS) == TEXTS  # run b trained without a template
    both = answer(one, TEXTS), answer(two, TEXTS)
    assert both == (answer(rebuild(runs["tiny_llama"]), TEXTS), answer(rebuild(runs["tiny_llama_b"]), TEXTS))
    assert both[0] != both[1]

    with pytest.raises(ValueError, match="another base"):
        load_runs([runs["tiny_llama"], runs["tiny_t5"]], [])


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
