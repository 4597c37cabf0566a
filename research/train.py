"""Train, evaluate and record one run:  python -m research.train [overrides]

compose config -> build tokenizer + base model -> DataModule -> strategy (a LightningModule)
-> zero-shot test of the base -> fit -> save weights -> test -> run.json (+ W&B / CSV views)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.strategies import FSDPStrategy
from pytorch_lightning.utilities import rank_zero_only

from research import forgetting, soft_prompt
from research.callbacks import EpochSeed, RecordProgress
from research.checks import check_precision, check_resume, check_strategy, check_writable
from research.configs import config_dir
from research.data import DataModule
from research.methods.base import FineTuneModule, count_parameters
from research.models import ModelSpec, build_model, build_tokenizer
from research.tracking import RunRecord, memory, relaunch
from research.tracking.loggers import closing_wandb, start_loggers
from research.tracking.summary import run_table

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> RunRecord:
    run_dir = Path(cfg.paths.output_dir)
    check_writable(run_dir)
    cfg = with_resume(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    record = RunRecord.start(config, cfg.method.name, cfg.model.name, cfg.data.name)
    if cfg.ckpt_path:
        record.artifacts["resumed_from"] = cfg.ckpt_path
    memory.reset_peak()
    zero = is_global_zero()  # under DDP every process runs train(); only rank 0 writes run.json and files
    with record.recorded(run_dir) if zero else nullcontext(), closing_wandb():
        pl.seed_everything(cfg.seed, workers=True)
        module, datamodule = build(cfg)
        record.params = count_parameters(module.model)
        record.artifacts["truncated_inputs"] = datamodule.truncated
        loggers, note = start_loggers(cfg.logger, run_dir)
        if note:
            record.artifacts["logger_fallback"] = note
        callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values()]
        callbacks += [EpochSeed(cfg.seed), RecordProgress(record, run_dir)]
        trainer: pl.Trainer = instantiate(
            cfg.trainer, default_root_dir=run_dir, logger=loggers or False, callbacks=callbacks
        )
        for lg in loggers:
            lg.log_hyperparams(_flat(config) | {f"params/{k}": v for k, v in record.params.items()})

        if cfg.test and cfg.zero_shot:
            module.eval_prefix = "zero_shot"
            trainer.test(module, datamodule=datamodule, verbose=False)
        if cfg.train:
            probe = forgetting.before_fit(cfg.get("forgetting"), module)
            started = time.perf_counter()
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
            record.timing["train_s"] = time.perf_counter() - started
            record.timing["train_tokens_per_s"] = module.tokens_seen / record.timing["train_s"]
            with full_weights(trainer):
                if zero:
                    weights = module.save_weights(run_dir / "weights")
                    record.artifacts |= {"weights_dir": str(weights), "weights_bytes": _dir_bytes(weights)}
                    soft_prompt.write_neighbors(module, run_dir, loggers)
            forgetting.after_fit(probe, module, loggers)
        if cfg.test:
            module.eval_prefix = "test"
            trainer.test(module, datamodule=datamodule, verbose=False)
        record.metrics = dict(module.results)
        record.timing.update({k.replace("/", "_"): v for k, v in module.results.items() if k.endswith("eval_s")})
        record.memory = memory.peak() | memory.model_bytes(module.model)
        if zero:
            _write_examples(run_dir, module.examples, loggers)
    if zero:
        print(run_table(record.__dict__))
    return record


@contextmanager
def full_weights(trainer: pl.Trainer) -> Iterator[None]:
    """Under FSDP each process holds a shard of every weight: gather them onto rank 0 (CPU) for saving.
    A collective, so every rank enters. Not run here (FSDP needs CUDA GPUs)."""
    if not isinstance(trainer.strategy, FSDPStrategy):
        yield
        return
    from torch.distributed.fsdp import FullyShardedDataParallel

    with FullyShardedDataParallel.summon_full_params(
        trainer.strategy.model, writeback=False, rank0_only=True, offload_to_cpu=True
    ):
        yield


def is_global_zero() -> bool:
    """Rank 0, known before the Trainer starts the other processes: Lightning reads the rank from the
    environment that its DDP launcher (or torchrun, SLURM) gives them; NODE_RANK covers the first process
    of another node started by hand."""
    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0


def with_resume(cfg: DictConfig) -> DictConfig:
    """`resume=auto`: set ckpt_path to the last checkpoint of the newest unfinished run of this exact
    config (none: start from scratch). An explicit ckpt_path wins."""
    if cfg.resume not in (False, "auto"):
        raise ValueError(f"resume={cfg.resume!r}; allowed: false, auto (or pass ckpt_path=<file>)")
    if cfg.resume != "auto" or cfg.ckpt_path:
        return cfg
    ckpt = relaunch.resumable_checkpoint(cfg)
    if ckpt is None:
        log.info("resume=auto: no unfinished run of this config to continue; starting from scratch")
        return cfg
    log.info("resume=auto: continuing from %s", ckpt)
    cfg = cfg.copy()
    cfg.ckpt_path = str(ckpt)
    return cfg


def build(cfg: DictConfig) -> tuple[FineTuneModule, DataModule]:
    """Tokenizer + base model -> strategy module (injects, freezes) and its DataModule (set up)."""
    check_precision(cfg)
    check_strategy(cfg, relaunch.is_multirun())
    check_resume(cfg)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    tokenizer = build_tokenizer(spec)
    # transformers refuses a quantization_config next to a GGUF file: such a base loads de-quantized and
    # the strategy quantizes it itself (QLoRA re-loads it through from_pretrained).
    load_kwargs = {} if spec.gguf_file else get_class(cfg.method._target_).load_kwargs(cfg.method)
    module = _instantiate(
        cfg.method,
        backbone=build_model(spec, tokenizer, **load_kwargs),
        tokenizer=tokenizer,
        task=spec.task,
        optimizer=cfg.optimizer,
        generation=cfg.generation,
    )
    datamodule = _instantiate(cfg.data, tokenizer=tokenizer, task=spec.task, chat_template=spec.chat_template)
    datamodule.setup()
    return module, datamodule


def _instantiate(node: DictConfig, **kwargs: Any) -> Any:
    """`instantiate`, re-raising our own validation error instead of Hydra's wrapper around it,
    so the message starts with the field name."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | OSError):
            raise err.__cause__ from None
        raise


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """W&B config as flat dotted keys, so dashboards filter and group on any one of them."""
    out = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        out.update(_flat(v, f"{key}.") if isinstance(v, dict) else {key: v})
    return out


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _write_examples(run_dir: Path, examples: dict[str, list[dict]], loggers: list) -> None:
    """A few (prediction, references) pairs per stage, for a human to read."""
    if not examples:
        return
    with (run_dir / "examples.jsonl").open("w") as fh:
        for stage, rows in examples.items():
            for row in rows:
                fh.write(json.dumps({"stage": stage, **row}) + "\n")
    for lg in loggers:
        if hasattr(lg, "log_text"):
            rows = [[s, r["prediction"], " || ".join(r["references"])] for s, rs in examples.items() for r in rs]
            lg.log_text(key="examples", columns=["stage", "prediction", "references"], data=rows)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """One job; in a multirun it is skipped when already completed and a failure does not end the sweep.
    Returns `optimized_metric` (default test/loss) for sweepers such as Optuna."""
    if relaunch.is_multirun():
        return relaunch.run_sweep_job(cfg, train)
    return relaunch.objective(train(cfg).metrics, cfg)


if __name__ == "__main__":
    main()
