"""docs/architecture.md says where each kind of addition goes, one place each. Each test here adds a toy one
the way a user would, in files of their own (a YAML found through `hydra.searchpath`, Python on the path),
and runs it through `train`: a model (one YAML), an analysis (one callback + one YAML) and a logger (one
class + one YAML). A method: tests/test_own_method.py; a task and a metric: tests/test_tasks.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.pipeline import train
from research.runs import read_record
from tests.helpers import compose_cfg, small, user_files

MODEL_YAML = """\
# A tiny GPT-2 built in memory: model_type gpt2 has a row in research/models/architectures.py.
defaults:
  - _base
  - _self_
name: toy_gpt2
task: causal
model_type: gpt2
pretrained: false
tokenizer: byte
config:
  n_embd: 64
  n_layer: 2
  n_head: 4
  n_positions: 1024
"""

ANALYSIS_FILE = '''\
"""The share of trainable parameters whose value moved during fit: a toy analysis."""

import pytorch_lightning as pl
import torch


class MovedShare(pl.Callback):
    def __init__(self, tolerance: float = 0.0) -> None:
        self.tolerance, self.metrics = tolerance, {}

    def on_fit_start(self, trainer, pl_module):
        self.before = {n: p.detach().clone() for n, p in pl_module.model.named_parameters() if p.requires_grad}

    def on_fit_end(self, trainer, pl_module):
        after = dict(pl_module.model.named_parameters())
        moved = sum(int(not torch.allclose(after[n], p, atol=self.tolerance)) for n, p in self.before.items())
        self.metrics = {"moved/share": moved / len(self.before)}
'''

ANALYSIS_YAML = """\
# The default callbacks, and the share of trainable tensors that moved (my_code/moved_share.py).
defaults:
  - default
  - _self_
moved_share:
  _target_: moved_share.MovedShare
"""

LOGGER_FILE = '''\
"""A logger that keeps everything in memory, for the test to read back."""

from pytorch_lightning.loggers.logger import Logger

SEEN = {"hyperparams": {}, "metrics": []}


class MemoryLogger(Logger):
    def __init__(self, run_name: str) -> None:
        super().__init__()
        self._run_name = run_name

    @property
    def name(self):
        return "memory"

    @property
    def version(self):
        return self._run_name

    def log_hyperparams(self, params, *args, **kwargs):
        SEEN["hyperparams"].update(params)

    def log_metrics(self, metrics, step=None):
        SEEN["metrics"].append(dict(metrics))
'''

LOGGER_YAML = """\
# Metrics kept in memory (my_code/memory_logger.py).
memory:
  _target_: memory_logger.MemoryLogger
  run_name: toy
"""

FAST = ("trainer.max_steps=4", "data.max_source_length=64", "data.max_target_length=16")


def test_a_model_of_ones_own_is_one_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    searchpath = user_files(tmp_path, monkeypatch, conf={"model/toy_gpt2.yaml": MODEL_YAML})
    cfg = compose_cfg(
        *small(
            searchpath, "model=toy_gpt2", "method=lora", "logger=none", *FAST, f"paths.output_dir={tmp_path / 'run'}"
        )
    )
    record = train(cfg)
    assert record.status == "completed" and record.model == "toy_gpt2"
    assert record.artifacts["injected"]["target_modules"] == ["c_attn"]  # peft's default for gpt2
    assert record.metrics["test/loss"] < record.metrics["zero_shot/loss"]


def test_an_analysis_of_ones_own_is_one_callback_and_one_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    searchpath = user_files(
        tmp_path, monkeypatch, code={"moved_share.py": ANALYSIS_FILE}, conf={"callbacks/moved.yaml": ANALYSIS_YAML}
    )
    run_dir = tmp_path / "run"
    train(
        compose_cfg(
            *small(searchpath, "callbacks=moved", "method=lora", "logger=none", *FAST, f"paths.output_dir={run_dir}")
        )
    )
    assert read_record(run_dir)["metrics"]["moved/share"] == 1.0  # every LoRA tensor trained


def test_a_logger_of_ones_own_is_one_class_and_one_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    searchpath = user_files(
        tmp_path, monkeypatch, code={"memory_logger.py": LOGGER_FILE}, conf={"logger/memory.yaml": LOGGER_YAML}
    )
    record = train(
        compose_cfg(
            *small(
                searchpath,
                "logger=memory",
                "trainer.log_every_n_steps=1",
                *FAST,
                f"paths.output_dir={tmp_path / 'run'}",
            )
        )
    )
    from memory_logger import SEEN  # the module the run imported from the user's folder

    assert SEEN["hyperparams"]["config_hash"] == record.config_hash
    logged = {k for m in SEEN["metrics"] for k in m}
    assert {"train/loss", "test/loss", "zero_shot/loss"} <= logged
