"""trainer=ddp on 2 CPU processes (gloo), through the real CLI: Lightning's launcher re-runs the command line
for rank 1. LoRA trains; rank 0 alone writes run.json, the adapter (once), examples, predictions and one W&B run; the
evaluation metrics cover both processes' shares of the split, so they equal a single-process evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from research.config.checks import check_strategy
from research.pipeline import train
from research.runs.predictions import read_predictions
from tests.helpers import cli_env, compose_cfg

# Evaluation batches of one example: the loss is then a plain mean over examples, however they are split.
DATA = ["data.num_examples=40", "data.eval_limit=4", "data.test_limit=4", "data.eval_batch_size=1"]
RUN = [*DATA, "generation.max_new_tokens=8", "trainer.max_epochs=1", "~callbacks.model_checkpoint"]


def _ddp_run(run_dir: Path) -> subprocess.CompletedProcess:
    env = cli_env()
    env.pop("LOCAL_RANK", None)
    args = ["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "logger=wandb", *RUN]
    return subprocess.run(
        [sys.executable, "-m", "research.train", *args, f"hydra.run.dir={run_dir}"],
        cwd=run_dir.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_lora_under_ddp_on_two_cpu_processes_trains_and_rank0_alone_saves(tmp_path: Path):
    run_dir = tmp_path / "ddp"
    proc = _ddp_run(run_dir)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "distributed_backend=gloo" in log and "Starting with 2 processes" in log
    assert (run_dir / "train_ddp_process_1.log").exists(), "rank 1 ran the same command in the same run dir"

    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and record["config"]["trainer"]["strategy"] == "ddp"
    assert record["params"]["trainable_pct"] < 5, "LoRA: the base stays frozen"
    assert {"val/loss", "test/loss", "zero_shot/loss"} <= set(record["metrics"])
    assert sorted(p.name for p in (run_dir / "weights").iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ], "the adapter only, saved once"
    stages = Counter(json.loads(line)["stage"] for line in (run_dir / "examples.jsonl").read_text().splitlines())
    assert stages == {"zero_shot": 4, "val": 4, "test": 4}, "every process's examples, written once"
    kept = [(row["stage"], row["id"]) for row in read_predictions(run_dir)]
    assert kept == [(stage, i) for stage in ("zero_shot", "test") for i in range(4)], "every test row, once"
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1, "one W&B run, not one per process"
    assert log.count("lora on tiny_t5 / synthetic: completed") == 1, "the run table is printed by rank 0 only"

    # The same zero-shot evaluation in one process: each rank saw 2 of the 4 test examples, gathered they are 4.
    single = train(compose_cfg(*RUN, "train=false", "logger=none", f"paths.output_dir={tmp_path / 'single'}"))
    for key in ("zero_shot/loss", "zero_shot/rouge1"):
        assert record["metrics"][key] == pytest.approx(single.metrics[key], rel=1e-5), key


def test_fsdp_is_refused_on_cpu_naming_the_field():
    cfg = compose_cfg("trainer=fsdp")
    assert cfg.trainer.strategy._target_.endswith("FSDPStrategy") and cfg.trainer.devices == 2
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: FSDP is allowed")
    with pytest.raises(ValueError, match=r"trainer.strategy=FSDPStrategy \(trainer=fsdp\) .*CUDA"):
        check_strategy(cfg, multirun=False)


def test_multi_process_jobs_in_a_multirun_are_refused_unless_slurm_starts_the_processes(monkeypatch):
    cfg = compose_cfg("trainer=ddp", "trainer.accelerator=cpu")
    for key in ("LOCAL_RANK", "RANK", "SLURM_NTASKS"):
        monkeypatch.delenv(key, raising=False)
    check_strategy(cfg, multirun=False)
    with pytest.raises(ValueError, match=r"trainer.strategy=ddp with trainer.devices=2 in a multirun"):
        check_strategy(cfg, multirun=True)
    monkeypatch.setenv("SLURM_NTASKS", "2")
    check_strategy(cfg, multirun=True)
