"""Shared fixtures and the session's environment; the helpers test files share are in tests/helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the hub is never needed by the unit tests
os.environ.setdefault("WANDB_SILENT", "true")
# Models this small run faster on one thread; on shared cores, threads that spin-wait for each other cost
# several times more. Subprocesses (sweeps, DDP, the bench) inherit it through the environment.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


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
