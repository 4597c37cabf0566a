"""The studies' learning-rate grids (sweeps/studies/common.sh, `beyond`): a grid whose best rate is at its
edge gets one more rate half a decade past that edge, and only past an edge of the grid itself, so a
re-run of a study never extends a search twice; and `ARMS`, which splits a study's arms between launches."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT

COMMON = ROOT / "sweeps" / "studies" / "common.sh"


def common(function: str, *args: str, cwd: Path, arms: str = "") -> subprocess.CompletedProcess:
    """One function of common.sh, sourced as a study sources it, with ARMS set."""
    script = f'STUDY=grid; . "{COMMON}"; trap - EXIT; {function} "$@"'
    env = os.environ | {"ARMS": arms}
    return subprocess.run(["bash", "-c", script, "_", *args], cwd=cwd, capture_output=True, text=True, env=env)


def beyond(grid: str, best: str, tmp_path: Path) -> str:
    done = common("beyond", grid, best, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize(
    ("grid", "best", "expected"),
    [
        ("1e-3,3e-4,3e-3", "0.003", "0.01"),  # the usual rate first: the edge is by value, not position
        ("1e-3,3e-4,3e-3", "0.0003", "0.0001"),
        ("2e-5,5e-5,1e-4", "0.0001", "0.0003"),  # off the 1-3 ladder: the next ladder rate past it
        ("2e-5,5e-5,1e-4", "2e-05", "1e-05"),
        ("1e-3,3e-4,3e-3", "0.001", ""),  # an interior best: the search is done
        ("1e-3,3e-4,3e-3", "0.01", ""),  # the rate beyond already won: never a second extension
        ("1e-3", "0.001", ""),  # one rate (FIRST_PASS): nothing to extend
    ],
)
def test_beyond_extends_only_a_winning_edge(grid, best, expected, tmp_path):
    assert beyond(grid, best, tmp_path) == expected


@pytest.mark.parametrize(
    ("arms", "arm", "runs"),
    [
        ("", "adapter", True),  # ARMS unset: every arm
        ("lora full", "lora", True),
        ("lora full", "full", True),
        ("lora full", "adapter", False),
        ("lora", "lora_r16", False),  # whole names only: a prefix is another arm
    ],
)
def test_arms_selects_whole_arm_names(arms, arm, runs, tmp_path):
    assert (common("selected", arm, cwd=tmp_path, arms=arms).returncode == 0) == runs
