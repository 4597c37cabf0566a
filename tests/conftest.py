"""Shared fixtures: real Hydra composition of conf/, tiny models built in memory (no files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is never needed by the unit tests
os.environ.setdefault("WANDB_SILENT", "true")
# Models this small run faster on one thread; on shared cores, threads that spin-wait for each other cost
# several times more. Subprocesses (sweeps, DDP, the bench) inherit it through the environment.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
ASSETS = ROOT.parent / "shared" / "assets"


def compose_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def small(*overrides: str) -> list[str]:
    """Overrides that keep a tiny run to seconds."""
    return ["data.num_examples=60", "data.eval_limit=4", "data.test_limit=4", "generation.max_new_tokens=8", *overrides]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def sst2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SST-2-format files (`<label> <sentence>`) whose label a tiny model can learn from the words."""
    root = tmp_path_factory.mktemp("sst2")
    for split in ("train", "dev", "test"):
        lines = [f"{i % 2} {'good' if i % 2 else 'poor'} film {i}" for i in range(32)]  # length says nothing
        (root / f"stsa.binary.{split}").write_text("\n".join(lines) + "\n")
    return root
