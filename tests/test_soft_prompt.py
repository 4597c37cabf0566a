"""Soft-prompt interpretability (Lester et al., 2021): the nearest vocabulary tokens of each virtual token.
Untrained, a prompt initialised from text is those tokens' own embeddings: each virtual token's nearest
neighbour is its init token at cosine 1. After training, the table lands in the run dir and in W&B."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from research.analyses.soft_prompt import soft_prompt_neighbors
from research.pipeline import build, train
from tests.helpers import compose_cfg, small

INIT_TEXT = "Summarize the following conversation."


@pytest.mark.parametrize("model", ["tiny_llama", "tiny_t5"])
def test_untrained_text_init_is_its_own_nearest_neighbour(model: str):
    module, _ = build(
        compose_cfg(*small(f"model={model}", "method=prompt_tuning", "method.peft_config.num_virtual_tokens=12"))
    )
    rows = soft_prompt_neighbors(module.model, module.tokenizer, k=3)

    init_ids = module.tokenizer(INIT_TEXT, add_special_tokens=False)["input_ids"]
    stacks = 2 if model == "tiny_t5" else 1  # peft gives a seq2seq model one prompt per stack
    assert len(rows) == 12 * stacks
    for i, row in enumerate(rows):
        nearest = row["neighbors"][0]
        assert nearest["id"] == init_ids[i % len(init_ids)]
        assert nearest["cosine"] == pytest.approx(1.0, abs=1e-5)
        assert [n["cosine"] for n in row["neighbors"]] == sorted((n["cosine"] for n in row["neighbors"]), reverse=True)


def test_training_writes_the_table_to_the_run_dir_and_wandb(tmp_path: Path):
    run = tmp_path / "run"
    train(
        compose_cfg(
            *small("model=tiny_llama", "method=prompt_tuning", "callbacks=soft_prompt", "trainer.max_steps=2"),
            "test=false",
            "zero_shot=false",
            "trainer.enable_progress_bar=false",
            "logger.wandb.mode=offline",
            f"paths.output_dir={run}",
        )
    )
    rows = json.loads((run / "soft_prompt_neighbors.json").read_text())
    assert [r["virtual_token"] for r in rows] == list(range(20))
    assert all(len(r["neighbors"]) == 5 and -1 <= r["neighbors"][0]["cosine"] <= 1 for r in rows)
    table = (run / "soft_prompt_neighbors.md").read_text().splitlines()
    assert table[0].startswith("| virtual token | neighbor 1 (cos) |") and len(table) == 2 + 20
    assert list(run.glob("wandb/offline-run-*/files/media/table/soft_prompt_neighbors_*.table.json"))


def test_methods_without_a_soft_prompt_are_refused_before_the_model_loads(tmp_path: Path):
    cfg = compose_cfg(
        *small("model=tiny_llama", "method=lora", "logger=none", "callbacks=soft_prompt"),
        "model.name_or_path=/nonexistent",
        "model.pretrained=true",
        f"paths.output_dir={tmp_path / 'run'}",
    )
    with pytest.raises(ValueError, match="soft_prompt_neighbors reads a soft prompt; method=lora has none"):
        train(cfg)
