"""Catastrophic forgetting on tiny models: held-out general text is scored on the base before and on the
fine-tuned model after. Training moves the score; with the adapter (or soft prompt) switched off, a
PEFT model gives back exactly the "before" value, since its frozen base never changed."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from research.analyses import ForgettingProbe, forgetting
from research.pipeline import build, train
from tests.helpers import compose_cfg, fit_on_one_batch, small

GENERAL = [
    "The museum opens at nine and closes early on Sundays.",
    "Rain is expected over the hills by the end of the week.",
    "She planted tomatoes, beans and a row of sunflowers.",
    "The committee will publish its report in the spring.",
    "A short train ride separates the two old market towns.",
    "He repaired the bicycle with a borrowed set of tools.",
]


@pytest.fixture
def general_text(tmp_path: Path) -> Path:
    path = tmp_path / "general.txt"
    path.write_text("\n".join(GENERAL) + "\n")
    return path


def probe_of(path: Path, **extra) -> ForgettingProbe:
    return ForgettingProbe(**{"path": str(path), "limit": 5, "batch_size": 2, "max_length": 48, **extra})


@pytest.mark.parametrize(
    ("model", "method"),
    [("tiny_llama", "full"), ("tiny_llama", "lora"), ("tiny_llama", "prompt_tuning"), ("tiny_t5", "prompt_tuning")],
)
def test_fine_tuning_moves_the_held_out_nll_and_the_frozen_base_stays_put(general_text: Path, model, method):
    module, datamodule = build(compose_cfg(*small(f"model={model}", f"method={method}", "scheduler.warmup_ratio=0")))
    probe = probe_of(general_text)
    fit_on_one_batch(module, next(iter(datamodule.train_dataloader())), steps=5, callbacks=[probe])

    res = probe.metrics
    assert res["forgetting/passages"] == 5 and res["forgetting/tokens"] > 5 * 40  # byte tokens, first one unscored
    assert res["forgetting/delta"] != 0
    assert res["forgetting/delta"] == res["forgetting/after"] - res["forgetting/before"]
    assert res["forgetting/ppl_before"] == pytest.approx(math.exp(res["forgetting/before"]))
    if method == "prompt_tuning":  # the initial soft prompt alone already changes the score
        assert res["forgetting/untrained"] != res["forgetting/before"]
    else:  # LoRA starts with B = 0: exactly the base
        assert res["forgetting/untrained"] == res["forgetting/before"]
    with module.method.base_model(module.model) as base:
        untouched, _ = probe.score(base, module)  # the same passages and settings
    if method == "full":
        assert untouched == res["forgetting/after"]  # full fine-tuning has no separate base to go back to
    else:
        assert untouched == res["forgetting/before"]  # bit-identical: the base weights never moved


def test_train_records_forgetting_in_run_json_and_the_csv_log(tmp_path: Path, general_text: Path):
    run = tmp_path / "run"
    record = train(
        compose_cfg(
            *small("model=tiny_llama", "method=lora", "logger=csv", "callbacks=forgetting", "trainer.max_steps=2"),
            "test=false",
            "trainer.enable_progress_bar=false",
            f"callbacks.forgetting.path={general_text}",
            "callbacks.forgetting.limit=3",
            f"paths.output_dir={run}",
        )
    )
    keys = {"before", "untrained", "after", "delta", "ppl_before", "ppl_after", "tokens", "passages"}
    assert {f"forgetting/{k}" for k in keys} <= set(record.metrics)
    assert record.metrics["forgetting/passages"] == 3
    rows = list(csv.DictReader(next(run.glob("csv/**/metrics.csv")).open()))
    logged = [float(r["forgetting/delta"]) for r in rows if r.get("forgetting/delta")]
    assert logged == [pytest.approx(record.metrics["forgetting/delta"])]


def test_texts_load_from_sst2_and_jsonl_files_and_bad_settings_fail_by_name(tmp_path: Path):
    sst2 = tmp_path / "sst2.dev"
    sst2.write_text("1 a gorgeous , witty film .\n0 it is a dull mess .\n")
    assert forgetting.load_texts(str(sst2), "sst2") == ["a gorgeous , witty film .", "it is a dull mess ."]
    jsonl = tmp_path / "texts.jsonl"
    jsonl.write_text('{"body": "first"}\n{"body": "second"}\n{"body": "third"}\n')
    assert forgetting.load_texts(str(jsonl), "jsonl", "body", limit=2) == ["first", "second"]

    with pytest.raises(ValueError, match="callbacks.forgetting.path is not set"):
        ForgettingProbe(path=None)
    with pytest.raises(ValueError, match="callbacks.forgetting.format='csv'; allowed: text, jsonl, sst2"):
        forgetting.load_texts(str(sst2), "csv")
    with pytest.raises(ValueError, match="callbacks.forgetting.field='text'"):
        forgetting.load_texts(str(jsonl), "jsonl")
    with pytest.raises(ValueError, match="callbacks.forgetting.batch_size=0"):
        probe_of(sst2, batch_size=0)


def test_forgetting_on_a_classifier_is_refused_before_the_model_loads(tmp_path: Path, general_text: Path):
    cfg = compose_cfg(
        *small("model=tiny_bert", "data=sst2", "data.path=/nonexistent", "callbacks=forgetting"),
        f"callbacks.forgetting.path={general_text}",
        f"paths.output_dir={tmp_path}",
    )
    with pytest.raises(ValueError, match="callbacks.forgetting scores language-model loss; model.task=classification"):
        train(cfg)
