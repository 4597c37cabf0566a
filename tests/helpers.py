"""What more than one test file uses: the repository's paths (the offline assets' among them), Hydra composition
of conf/, the command line run as a user runs it, tiny models trained and compared in memory, data loaded as
research.train loads it, and run.json files as research.train writes them. Fixtures and hooks stay in
conftest.py; a helper that one test file alone uses stays in that file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader

from research.data import DataModule
from research.data.sources import load_splits
from research.methods.base import Context
from research.models import ModelSpec, build_tokenizer
from research.models.loading import build_base
from research.models.tokenizers import byte_tokenizer
from research.pipeline import build, train
from research.runs import RunRecord
from research.runs.record import read_record

# --- paths -------------------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
ASSETS = ROOT.parent / "shared" / "assets"  # the offline models and data sets, beside the repository (see README)
SMOLLM2 = ASSETS / "models" / "smollm2-135m-instruct-gguf"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DIALOGSUM = ASSETS / "data" / "dialogsum"


def needs_assets(*paths: Path) -> pytest.MarkDecorator:
    """Skip unless every one of `paths` (files or folders of the offline assets) exists; the reason names the
    first one absent."""
    missing = next((p for p in paths if not p.exists()), None)
    reason = f"asset absent: {missing} (the offline assets belong at {ASSETS}, see the project README)"
    return pytest.mark.skipif(missing is not None, reason=reason)


# --- configs -----------------------------------------------------------------------------------------------------


def compose_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides))


def small(*overrides: str) -> list[str]:
    """Overrides that keep a tiny run to seconds."""
    return ["data.num_examples=60", "data.eval_limit=4", "data.test_limit=4", "generation.max_new_tokens=8", *overrides]


def evaluate_cfg(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("evaluate", overrides=list(small("logger=none", *overrides)))


FAST = ["trainer.max_epochs=1", *small("data.num_examples=40")]
LORA_OVERRIDES = small(
    "model=tiny_llama", "method=lora", "scheduler.warmup_ratio=0", "method.peft_config.lora_dropout=0"
)


def user_files(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: dict[str, str] | None = None,
    conf: dict[str, str] | None = None,
) -> str:
    """A user's own Python files (on the path) and config files (`<group>/<name>.yaml`, found by Hydra) in
    folders of their own; returns the override that puts the configs on Hydra's search path."""
    for name, text in (code or {}).items():
        (tmp_path / "my_code").mkdir(exist_ok=True)
        (tmp_path / "my_code" / name).write_text(text)
    for name, text in (conf or {}).items():
        (tmp_path / "my_conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "my_conf" / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "my_code"))
    return f"hydra.searchpath=[file://{tmp_path / 'my_conf'}]"


# --- the command line --------------------------------------------------------------------------------------------


def cli_env() -> dict[str, str]:
    """The environment of a command run as a user runs it: offline, this checkout's `research` importable."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}


def run_cli(*args: str, cwd: Path, timeout: float = 600, module: str = "research.train") -> subprocess.CompletedProcess:
    """`python -m research.train` (or another command's module), waited for, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args: str, cwd: Path, log: Path | None = None) -> subprocess.Popen:
    """`python -m research.train` in the background; stdout and stderr to `log` (a file: a pipe nobody reads
    would fill up and stall the run)."""
    out = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "research.train", *args], cwd=cwd, env=cli_env(), stdout=out, stderr=subprocess.STDOUT
    )


def kill_after_first_checkpoint(
    proc: subprocess.Popen, run_dir: Path, sig: int = signal.SIGKILL, timeout: float = 300
) -> dict:
    """Send `sig` (default SIGKILL: nothing flushed) as soon as run.json records a checkpoint (end of epoch
    0), i.e. mid-training with steps done, then wait for the process to end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        record = read_record(run_dir) if (run_dir / "run.json").exists() else None
        if record and record["progress"] and (run_dir / "checkpoints" / "last.ckpt").is_file():
            proc.send_signal(sig)
            proc.wait(timeout=120)
            return read_record(run_dir)
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"no checkpoint was recorded in time (exit code {proc.poll()})")


# --- tiny models in memory ---------------------------------------------------------------------------------------

TEXTS = [
    "#Person1#: Hi, how are you?\n#Person2#: Fine, thanks.",
    "#Person1#: Where is the station?\n#Person2#: Two blocks down the road, then left at the bakery.",
]


def fit_on_one_batch(module: pl.LightningModule, batch: dict, steps: int, callbacks: list | None = None) -> None:
    module.train()
    loader = DataLoader([batch] * steps, batch_size=None)
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(module, train_dataloaders=loader)


@torch.no_grad()
def loss_on(module: pl.LightningModule, batch: dict) -> float:
    module.eval()
    return float(module(batch).loss)


@torch.no_grad()
def logits(model: torch.nn.Module, batch: dict) -> torch.Tensor:
    return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits


def load_fresh(module: pl.LightningModule, weights: Path, overrides: list[str] = LORA_OVERRIDES) -> torch.nn.Module:
    """The run's weights, loaded by its method onto a freshly built base (the same seed: the same weights)."""
    cfg = compose_cfg(*overrides)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    base = build_base(spec, module.tokenizer, module.method, seed=cfg.seed)
    return module.method.load(base, weights, Context(spec.task, module.tokenizer))


def plain_base() -> torch.nn.Module:
    """The run's random tiny Llama, with nothing injected."""
    cfg = compose_cfg("model=tiny_llama", "method=full")
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    return build_base(spec, build_tokenizer(spec), build(cfg)[0].method, seed=cfg.seed)


def train_run(run_dir: Path, *overrides: str) -> Path:
    """A real, short training run (fit, save, run.json) of the tiny defaults plus `overrides`."""
    cfg = compose_cfg(*small("logger=none", "callbacks=none", "zero_shot=false", "trainer.max_steps=2"), *overrides)
    cfg.paths.output_dir = str(run_dir)
    assert train(cfg).status == "completed"
    return run_dir


# --- data --------------------------------------------------------------------------------------------------------


def load(format: str, path: Path | None, **overrides: Any):
    args: dict[str, Any] = dict(
        path=str(path) if path else None, hub_id=None, hub_name=None, hub_splits=None, files=None,
        input_field="dialogue", target_field="summary", reference_fields=None, label_field=None,
        group_references=False, num_examples=0, seed=0,
    )  # fmt: skip
    return load_splits(format, **(args | overrides))


def datamodule(*overrides: str, task: str = "seq2seq") -> DataModule:
    """A DataModule exactly as research.train builds one: Hydra composes conf/, then instantiates cfg.data."""
    try:
        return instantiate(compose_cfg(*overrides).data, tokenizer=byte_tokenizer(), task=task, chat_template=False)
    except InstantiationException as err:  # Hydra wraps the constructor's error; research.train unwraps it too
        raise err.__cause__ from None


# --- run records -------------------------------------------------------------------------------------------------


def write_run(
    root: Path,
    name: str,
    *overrides: str,
    metrics: dict[str, float] | None = None,
    trainable: int = 1_000,
    total: int = 100_000,
    status: str = "completed",
    started_at: float = 0.0,
    head: int = 0,
) -> Path:
    """A run.json as research.train writes it, for the config these overrides compose."""
    run_dir = root / name
    cfg = compose_cfg(f"paths.output_dir={run_dir}", *overrides)
    record = RunRecord.start(OmegaConf.to_container(cfg, resolve=True), cfg.method.name, cfg.model.name, cfg.data.name)
    return finish(record, run_dir, metrics, trainable, total, status, started_at, head)


def finish(
    record: RunRecord,
    run_dir: Path,
    metrics: dict[str, float] | None,
    trainable: int,
    total: int,
    status: str,
    started_at: float,
    head: int = 0,
) -> Path:
    """Fill in what a run of this `status` leaves in its record (`head`: how many of the trainable parameters
    are a classifier's task head), and write it to `run_dir`."""
    record.started_at = started_at
    if status == "completed":
        record.params = {"trainable": trainable, "total": total, "trainable_pct": 100 * trainable / total}
        record.params |= {"head": head, "trainable_without_head": trainable - head}
        record.metrics = metrics or {"test/rouge1": 0.5, "zero_shot/rouge1": 0.1, "test/loss": 1.0}
        record.timing = {"train_s": 2.0}
        record.memory = {"peak_rss_mb": 900.0}
        record.complete()
    elif status == "failed":
        record.fail(ValueError("method.rank must be positive"))
    record.write(run_dir)
    return run_dir
