"""research.compare.best: the study scripts' learning-rate choice, on run.json records as train writes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from research.compare.best import best_run, main
from tests.helpers import write_run


@pytest.fixture
def search(tmp_path: Path) -> Path:
    for i, (lr, acc) in enumerate([(1e-4, 0.80), (1e-3, 0.90), (1e-2, 0.90)]):
        write_run(tmp_path, f"{i}_lora", f"method.lr={lr}", metrics={"val/accuracy": acc, "val/loss": 1 - acc},
                  started_at=float(i))  # fmt: skip
    write_run(tmp_path, "3_lora", "method.lr=0.1", status="failed", started_at=3.0)
    write_run(tmp_path, "4_lora", "method.lr=0.3", metrics={"val/accuracy": 0.99, "val/loss": 0.0}, started_at=4.0,
              status="running")  # fmt: skip
    return tmp_path


def test_the_best_completed_run_wins_and_a_tie_goes_to_the_earlier_run(search: Path, capsys) -> None:
    assert best_run([search], "val/accuracy", "maximize")["config"]["method"]["lr"] == 1e-3
    main([str(search), "--metric", "val/accuracy", "--key", "method.lr"])
    assert capsys.readouterr().out.strip() == "0.001"
    main([str(search), "--metric", "val/loss", "--direction", "minimize"])
    assert capsys.readouterr().out.strip() == str((search / "1_lora").resolve())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--metric", "val/rouge1"], "no completed run under"),
        (["--metric", "val/accuracy", "--direction", "up"], "--direction 'up': allowed maximize, minimize"),
        (["--metric", "val/accuracy", "--key", "method.rank"], "its config has no 'method.rank'"),
    ],
)
def test_what_cannot_be_chosen_is_one_clear_error(search: Path, args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([str(search), *args])
    assert message in str(exit_.value)
