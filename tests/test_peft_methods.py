"""Every shipped peft method (conf/method/*.yaml driven by research.methods.PeftMethod) on a tiny T5 and a
tiny Llama, through the real build, a real Lightning Trainer and real peft: the trainable count equals
the method's formula, the loss on a fixed batch goes down, only the method's tensors change, the saved
weights loaded onto a fresh untouched base reproduce the trained outputs, the zero-shot base is the
untouched base, and merging equals the unmerged model or is refused with the reason. Then what makes
each method itself: rsLoRA's scale, DoRA's magnitudes, PiSSA's singular vectors, AdaLoRA's moving
ranks, VeRA's shared frozen matrices, prompt tuning's text init; and tuners the loop cannot drive are
refused, by name and reason, before any model loads."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTunerLayer
from transformers import PreTrainedModel

from research.loop.module import FineTuneModule
from research.methods.base import MergeRefused
from research.models import ModelSpec, build_tokenizer
from research.models.loading import build_base
from research.pipeline import build
from tests.helpers import compose_cfg, fit_on_one_batch, small

MODELS = ("tiny_t5", "tiny_llama")
METHODS = (
    "lora", "rslora", "dora", "pissa", "qlora", "loha", "lokr", "vera", "adalora", "oft", "ia3",
    "prefix_tuning", "prompt_tuning",
)  # fmt: skip
STEPS = 6
# float32 tolerance on logits, for every comparison below: saved -> loaded is exact for all but PiSSA
# (converted to plain LoRA at save), merged differs from unmerged by summation order.
ATOL = 1e-5
REFUSED = {"prefix_tuning", "prompt_tuning"}  # virtual tokens are not weights: nothing to merge
# A few steps at the YAML's lr barely move these (vectors and factor products that start small).
TEST_LR = {"adalora": 1e-2, "loha": 1e-2, "lokr": 1e-2, "vera": 1e-1, "ia3": 1e-1, "prefix_tuning": 3e-2}

# Both tiny models are 128 wide (conf/model/tiny_*.yaml), and every default target below is a 128 x 128
# Linear: peft's per-architecture defaults are the attention query and value, i.e. T5's q and v in 2
# encoder self-, 2 decoder self- and 2 cross-attention modules (12 layers), Llama's q_proj and v_proj in
# 2 layers (4 layers).
D, R = 128, 8
LAYERS = {"tiny_t5": 12, "tiny_llama": 4}
LORA = R * (D + D)  # A: r x in, B: out x r
PER_LAYER = {
    "lora": LORA,
    "rslora": LORA,
    "pissa": LORA,
    "qlora": LORA,
    "dora": LORA + D,  # + a magnitude per output row
    "loha": 2 * R * (D + D),  # two low-rank products, Hadamard-multiplied
    # 128 = 8 x 16 (peft's factorization): W = w1 (8x8) kron w2 (16x16); w2 is kept full since r=8 is
    # not below 16/2, w1 is full unless decompose_both
    "lokr": 8 * 8 + 16 * 16,
    "vera": D + 64,  # lambda_b (out) + lambda_d (r=64); the random A and B are shared and frozen
    "adalora": 12 * (D + D) + 12,  # P, Q and the singular values at init_r=12
    "oft": (D // 32) * (32 * 31 // 2),  # 4 blocks of 32, each a skew-symmetric 32x32 (its upper triangle)
}
WHOLE_MODEL = {  # methods whose count is not per target layer
    # peft's AdaLoRA default for T5 is q, k, v, o, wi, wo: q, k, v, o in 6 attention modules (24 layers) and
    # wo (256 -> 128) in 4 FF blocks; this T5 is gated (wi_0, wi_1), so no wi
    ("adalora", "tiny_t5"): 24 * PER_LAYER["adalora"] + 4 * (12 * (256 + D) + 12),
    # vectors over k and v outputs (6 T5 attention modules / 2 Llama layers) and the FF down input (256)
    ("ia3", "tiny_t5"): 12 * D + 4 * 256,
    ("ia3", "tiny_llama"): 4 * D + 2 * 256,
    # 20 virtual tokens x a key and a value of width 128 in each of the 2 layers peft reads off the config
    ("prefix_tuning", "tiny_t5"): 20 * 2 * 2 * D,
    ("prefix_tuning", "tiny_llama"): 20 * 2 * 2 * D,
    ("prompt_tuning", "tiny_t5"): 2 * 20 * D,  # peft gives an encoder-decoder one prompt per stack
    ("prompt_tuning", "tiny_llama"): 20 * D,
}


def expected_trainable(method: str, model: str) -> int:
    return WHOLE_MODEL.get((method, model)) or LAYERS[model] * PER_LAYER[method]


def overrides(method: str, model: str, *extra: str) -> list[str]:
    """A fixed batch of 4 short examples; trainer.max_steps is the run length AdaLoRA schedules over."""
    lr = [f"method.lr={TEST_LR[method]}"] if method in TEST_LR else []
    fast = ["data.num_examples=12", "data.batch_size=4", "data.max_source_length=64", "data.max_target_length=16"]
    return small(
        f"model={model}", f"method={method}", "scheduler.warmup_ratio=0", f"trainer.max_steps={STEPS}",
        *fast, *lr, *extra,
    )  # fmt: skip


def fit(module: pl.LightningModule, batch: dict, steps: int = STEPS) -> None:
    """The loop's own training step, optimizer and per-step method hook, on one batch repeated."""
    fit_on_one_batch(module, batch, steps)


@torch.no_grad()
def run(module: FineTuneModule, batch: dict, model: torch.nn.Module | None = None):
    module.eval()
    return module(batch, model)


def fresh_base(cfg: DictConfig) -> PreTrainedModel:
    """The run's untouched base, built as every command rebuilds it (seeded, from the model config)."""
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    return build_base(spec, build_tokenizer(spec), instantiate(cfg.method), seed=cfg.seed).eval()


def tuner_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, BaseTunerLayer) and hasattr(m, "base_layer")}


CASES = [(method, model) for method in METHODS for model in MODELS]


@pytest.mark.parametrize(("method", "model"), CASES)
def test_trains_only_its_tensors_saves_loads_and_merges(method: str, model: str, tmp_path: Path):
    cfg = compose_cfg(*overrides(method, model))
    module, datamodule = build(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    trainable = {n for n, p in module.model.named_parameters() if p.requires_grad}
    assert sum(p.numel() for n, p in module.model.named_parameters() if n in trainable) == expected_trainable(
        method, model
    )
    with module.method.base_model(module.model) as base:
        zero_shot = run(module, batch, base).logits
    before = {n: t.detach().clone() for n, t in [*module.model.named_parameters(), *module.model.named_buffers()]}

    loss_before = float(run(module, batch).loss)
    fit(module, batch)
    trained = run(module, batch)
    assert float(trained.loss) < 0.98 * loss_before, f"{method}: loss {loss_before:.4f} -> {float(trained.loss):.4f}"

    after = {n: t.detach() for n, t in [*module.model.named_parameters(), *module.model.named_buffers()]}
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert not changed - trainable, f"frozen tensors changed: {sorted(changed - trainable)[:5]}"
    unchanged = trainable - changed
    if method == "adalora":  # a module pruned to rank 0 ends with its singular values at their init, 0
        unchanged = {n for n in unchanged if not (".lora_E." in n and not after[n].any())}
    assert not unchanged, f"trainable tensors that never changed: {sorted(unchanged)[:5]}"

    weights = module.method.save(module.model, tmp_path / "weights")
    loaded, _ = build(cfg, weights=weights)  # a fresh method and a fresh untouched base, as evaluate does
    assert not any(p.requires_grad for p in loaded.model.parameters()) and not loaded.model.training
    torch.testing.assert_close(run(loaded, batch).logits, trained.logits, atol=ATOL, rtol=0)
    with loaded.method.base_model(loaded.model) as base:  # the zero-shot pass scores the untouched base
        torch.testing.assert_close(run(loaded, batch, base).logits, zero_shot, atol=ATOL, rtol=0)

    if method in REFUSED:
        with pytest.raises(MergeRefused, match=f"method '{method}' learns virtual tokens, not weights"):
            loaded.method.merge(loaded.model)
        return
    merged = loaded.method.merge(loaded.model)
    assert isinstance(merged, PreTrainedModel) and not isinstance(merged, PeftModel) and not tuner_layers(merged)
    torch.testing.assert_close(run(loaded, batch, merged).logits, trained.logits, atol=ATOL, rtol=0)


@pytest.mark.parametrize(("method", "scale"), [("rslora", 8 / math.sqrt(16)), ("lora", 8 / 16)])
def test_rslora_scales_by_alpha_over_sqrt_r(method: str, scale: float):
    cfg = compose_cfg(*overrides(method, "tiny_llama", "method.peft_config.r=16", "method.peft_config.lora_alpha=8"))
    layers = tuner_layers(build(cfg)[0].model)
    assert len(layers) == LAYERS["tiny_llama"]
    assert {m.scaling["default"] for m in layers.values()} == {scale}


def test_dora_adds_a_trainable_magnitude_per_output_row_equal_to_the_weight_norms():
    module, _ = build(compose_cfg(*overrides("dora", "tiny_llama")))
    for name, layer in tuner_layers(module.model).items():
        magnitude = layer.lora_magnitude_vector["default"].weight
        assert magnitude.shape == (D,) and magnitude.requires_grad, name
        # B = 0 at init, so the magnitude starts as the row norms of the frozen weight itself
        torch.testing.assert_close(magnitude, layer.base_layer.weight.norm(dim=1), atol=1e-6, rtol=0)


def test_pissa_starts_from_the_top_singular_vectors():
    """Exact SVD (`pissa`; the YAML's `pissa_niter_4` is the randomized one): scale * B A is W's best rank-r
    approximation and the base keeps the residual, so the initial model computes what the base does.
    (Saved, it loads onto the untouched base: the parametrized test above, which builds a fresh base.)"""
    cfg = compose_cfg(*overrides("pissa", "tiny_llama", "method.peft_config.init_lora_weights=pissa"))
    module, datamodule = build(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    original = fresh_base(cfg)
    for name, layer in tuner_layers(module.model).items():
        weight = original.get_submodule(name.removeprefix("base_model.model.")).weight
        u, s, vh = torch.linalg.svd(weight)
        top = u[:, :R] @ torch.diag(s[:R]) @ vh[:R]
        adapter = layer.scaling["default"] * layer.lora_B["default"].weight @ layer.lora_A["default"].weight
        torch.testing.assert_close(adapter, top, atol=1e-5, rtol=0)
        torch.testing.assert_close(layer.base_layer.weight, weight - adapter, atol=1e-6, rtol=0)
        assert not torch.equal(layer.base_layer.weight, weight)  # the base weights were rewritten, by design
    untouched = run(module, batch, original).logits
    torch.testing.assert_close(run(module, batch).logits, untouched, atol=ATOL, rtol=0)


def test_adalora_reallocates_ranks_during_training(tmp_path: Path):
    """The loop calls update_and_allocate after every optimizer step: ranks are pruned from init_r=12 per
    module to a total budget of target_r=4 per module by the last step of the run (trainer.max_steps);
    the saved adapter keeps only those ranks."""
    cfg = compose_cfg(*overrides("adalora", "tiny_llama"))
    module, datamodule = build(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    layers = tuner_layers(module.model)
    singular_values = [m.lora_E["default"] for m in layers.values()]
    assert [e.shape[0] for e in singular_values] == [12] * LAYERS["tiny_llama"]
    assert not module.model.peft_config["default"].rank_pattern

    fit(module, batch)
    rank_pattern = module.model.peft_config["default"].rank_pattern
    assert rank_pattern, "update_and_allocate never ran: rank_pattern is empty"
    kept = sorted(sum(mask) for mask in rank_pattern.values())
    assert len(kept) == LAYERS["tiny_llama"] and 0 < sum(kept) <= 4 * LAYERS["tiny_llama"] < 12 * LAYERS["tiny_llama"]
    assert sorted(int((e != 0).sum()) for e in singular_values) == kept  # pruned singular values are zeroed
    recorded = module.method.describe(module.model)["rank_pattern"]  # what run.json shows: a rank per module
    assert sorted(recorded.values()) == kept and set(recorded) == {n.removeprefix("base_model.model.") for n in layers}

    loaded, _ = build(cfg, weights=module.method.save(module.model, tmp_path / "weights"))
    assert {n: m.lora_A["default"].shape[0] for n, m in tuner_layers(loaded.model).items()} == {
        f"base_model.model.{n}": rank for n, rank in recorded.items()
    }


def test_adalora_schedule_is_checked_against_the_run_length():
    schedule = ["method.peft_config.tfinal=2", "method.peft_config.tinit"]
    build(compose_cfg(*overrides("adalora", "tiny_llama", schedule[0], f"{schedule[1]}=3")))  # 3 < 6 - 2
    with pytest.raises(ValueError, match=r"AdaLoraConfig.*budgeting phase.*total_step=6: this run's optimizer steps"):
        build(compose_cfg(*overrides("adalora", "tiny_llama", schedule[0], f"{schedule[1]}=4")))


def test_vera_shares_one_frozen_random_pair_and_trains_only_the_vectors():
    module, _ = build(compose_cfg(*overrides("vera", "tiny_llama")))
    layers = tuner_layers(module.model).values()
    assert len({id(m.vera_A["default"]) for m in layers}) == 1 and len({id(m.vera_B["default"]) for m in layers}) == 1
    shared = next(iter(layers))
    assert shared.vera_A["default"].shape == (64, D) and not shared.vera_A["default"].requires_grad
    trainable = [n for n, p in module.model.named_parameters() if p.requires_grad]
    assert trainable and all(".vera_lambda_b." in n or ".vera_lambda_d." in n for n in trainable)


@pytest.mark.parametrize("model", MODELS)
def test_prompt_tuning_starts_from_the_init_text_embeddings(model: str):
    cfg = compose_cfg(*overrides("prompt_tuning", model))
    module, _ = build(cfg)
    ids = module.tokenizer(cfg.method.init_text, add_special_tokens=False)["input_ids"]
    prompt = module.model.prompt_encoder["default"].embedding.weight
    embeddings = module.model.get_input_embeddings().weight
    assert prompt.shape[0] == expected_trainable("prompt_tuning", model) // D
    for i, row in enumerate(prompt):  # the text's tokens in order, repeated to cover every virtual token
        assert torch.equal(row, embeddings[ids[i % len(ids)]]), i


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("peft.PolyConfig", "PolyConfig: not supported: Poly routes each example by a task id"),
        ("peft.XLoraConfig", "XLoraConfig: not supported: X-LoRA mixes several pre-trained LoRA adapters"),
        ("torch.nn.Linear", "Linear is not a peft config class"),
    ],
)
def test_a_tuner_the_loop_cannot_drive_is_refused_before_the_model_loads(target: str, reason: str, tmp_path: Path):
    # A base that cannot load: the refusal has to come first to be the error seen.
    missing = [f"model.name_or_path={tmp_path / 'no-such-model'}", "model.pretrained=true", "model.tokenizer=null"]
    cfg = compose_cfg(*small("model=tiny_llama", "method=lora", f"method.peft_config._target_={target}", *missing))
    with pytest.raises(ValueError, match=rf"^method\.peft_config\._target_={reason}"):
        build(cfg)


def test_every_field_of_the_peft_config_is_reachable_and_a_typo_is_named():
    """Fields the YAML does not list are still the peft config's own: `+method.peft_config.<field>=...`."""
    only_layer_1 = overrides("lora", "tiny_llama", "+method.peft_config.layers_to_transform=[1]")
    layers = tuner_layers(build(compose_cfg(*only_layer_1))[0].model)
    assert sorted(layers) == [f"base_model.model.model.layers.1.self_attn.{p}_proj" for p in "qv"]
    with pytest.raises(ValueError, match=r"^method\.peft_config \(LoraConfig\): .*unexpected keyword argument 'rank'"):
        build(compose_cfg(*overrides("lora", "tiny_llama", "+method.peft_config.rank=4")))
