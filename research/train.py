"""Train, evaluate and record one run:  peftlab train [overrides]   (or python -m research.train)

compose config -> method, optimizer, callbacks (checked before anything loads) -> tokenizer, data, base
model -> method.inject -> zero-shot test of the base -> fit -> method.save -> test -> run.json
(+ W&B / CSV views).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import hydra
import pytorch_lightning as pl
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.strategies import FSDPStrategy
from pytorch_lightning.utilities import rank_zero_only

from research.callbacks import EpochSeed, RecordProgress
from research.checks import check_precision, check_resume, check_strategy, check_writable
from research.configs import config_dir
from research.data import DataModule, check_num_labels
from research.loop import FineTuneModule, Speed
from research.methods.base import Context, Method, count_parameters
from research.models import ModelSpec, build_tokenizer
from research.models.loading import build_base
from research.optim import check_optimizer, check_scheduler
from research.progress import progress_callbacks
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
        callbacks = [_instantiate(c) for c in (cfg.callbacks or {}).values()]
        module, datamodule = build(cfg, callbacks=callbacks)
        record.params = count_parameters(module.model)
        record.artifacts |= {"injected": module.method.describe(module.model), "truncated_inputs": datamodule.truncated}
        if datamodule.label_names:
            record.artifacts["label_names"] = list(datamodule.label_names)
        loggers, note = start_loggers(cfg.logger, run_dir)
        if note:
            record.artifacts["logger_fallback"] = note
        callbacks += [EpochSeed(cfg.seed), RecordProgress(record, run_dir), *progress_callbacks(cfg.trainer)]
        trainer: pl.Trainer = instantiate(
            cfg.trainer, default_root_dir=run_dir, logger=loggers or False, callbacks=callbacks
        )
        for lg in loggers:
            lg.log_hyperparams(_flat(config) | {f"params/{k}": v for k, v in record.params.items()})

        if cfg.test and cfg.zero_shot:
            with module.scoring("zero_shot", base=True):
                _test(trainer, module, datamodule, record)
        if cfg.train:
            started = time.perf_counter()
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
            record.timing["train_s"] = time.perf_counter() - started
            record.timing["train_tokens_per_s"] = module.tokens_seen / record.timing["train_s"]
            record.metrics |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            with full_weights(trainer):
                if zero:
                    weights = module.method.save(module.model, run_dir / "weights")
                    record.artifacts |= {"weights_dir": str(weights), "weights_bytes": _dir_bytes(weights)}
        if cfg.test:
            _test(trainer, module, datamodule, record)
        for callback in callbacks:
            record.metrics |= getattr(callback, "metrics", {})
        record.memory = memory.peak() | memory.model_bytes(module.model)
    if zero:
        print(run_table(record.__dict__))
    return record


def _test(trainer: pl.Trainer, module: FineTuneModule, datamodule: DataModule, record: RunRecord) -> None:
    """Score the test split under the module's current stage; the stage's seconds go to `timing`."""
    results = trainer.test(module, datamodule=datamodule, verbose=False)[0]
    record.timing[f"{module.stage}_eval_s"] = results.pop(f"{module.stage}/eval_s")
    record.metrics |= results


def build(
    cfg: DictConfig, weights: Path | None = None, callbacks: Sequence[pl.Callback] = ()
) -> tuple[FineTuneModule, DataModule]:
    """Everything a run needs, cheapest checks first: the config (method, optimizer, schedule, callbacks)
    before the tokenizer, the data before the base model. `weights` (a run's weights/) are loaded by the
    method onto the fresh base instead of injecting a new, untrained method."""
    check_precision(cfg)
    check_strategy(cfg, relaunch.is_multirun())
    check_resume(cfg)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    method: Method = _instantiate(cfg.method)
    optimizer, scheduler = _instantiate(cfg.optimizer), _instantiate(cfg.scheduler)
    check_optimizer(optimizer, cuda=str(cfg.trainer.accelerator) in ("gpu", "cuda"))
    check_scheduler(scheduler)
    for callback in callbacks:
        if hasattr(callback, "preflight"):
            callback.preflight(spec.task, method)
    check_num_labels(cfg.data.get("label_names"), spec.num_labels)
    tokenizer = build_tokenizer(spec)
    datamodule = _instantiate(cfg.data, tokenizer=tokenizer, task=spec.task, chat_template=spec.chat_template)
    datamodule.setup()
    ctx = Context(spec.task, tokenizer, total_steps=planned_steps(cfg, datamodule))
    base = build_base(spec, tokenizer, method, seed=cfg.seed)
    model = method.load(base, weights, ctx) if weights else method.inject(base, ctx)
    if not weights and not any(p.requires_grad for p in model.parameters()):
        raise ValueError(f"method {method.name!r} left no parameter trainable")
    module = FineTuneModule(
        model=model,
        method=method,
        tokenizer=tokenizer,
        task=spec.task,
        optimizer=optimizer,
        scheduler=scheduler,
        generation=cfg.generation,
        speed=Speed.from_config(cfg.get("speed")),
    )
    return module, datamodule


def planned_steps(cfg: DictConfig, datamodule: DataModule) -> int | None:
    """Optimizer steps of the whole run on one process (what AdaLoRA schedules its rank budget over)."""
    if cfg.trainer.get("max_steps", -1) > 0:
        return int(cfg.trainer.max_steps)
    if "train" not in datamodule.splits:
        return None
    batches = math.ceil(len(datamodule.splits["train"]) / datamodule.batch_size)
    accumulate = cfg.trainer.get("accumulate_grad_batches", 1)
    return max(1, math.ceil(batches / accumulate) * cfg.trainer.get("max_epochs", 1))


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


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """One job; in a multirun it is skipped when already completed and a failure does not end the sweep.
    Returns `optimized_metric` (default test/loss) for sweepers such as Optuna."""
    if relaunch.is_multirun():
        return relaunch.run_sweep_job(cfg, train)
    return relaunch.objective(train(cfg).metrics, cfg)


if __name__ == "__main__":
    main()
