"""What a run does, once its config is composed and checked (the entry points are research/train.py and
research/evaluate.py, kept light so that `--help` and config errors answer before the heavy imports):

train:    method, optimizer, callbacks (built and checked before anything loads) -> tokenizer, data, base
          model -> method.inject -> zero-shot test of the base -> fit -> method.save -> test -> run.json
evaluate: the same build, but the method loads a finished run's weights instead of injecting -> test
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.strategies import FSDPStrategy
from pytorch_lightning.utilities import rank_zero_only

from research.analyses import ExamplePredictions
from research.callbacks import EpochSeed, RecordProgress
from research.checks import check_precision, check_resume, check_strategy
from research.configs import build_node
from research.data import DataModule, check_num_labels
from research.loop import FineTuneModule
from research.methods.base import Context, Method, count_parameters
from research.models import ModelSpec, build_tokenizer
from research.models.loading import build_base, fingerprint
from research.optim import check_optimizer, check_scheduler
from research.progress import progress_callbacks
from research.runs import WEIGHTS, check_same_base, run_config
from research.schema import check_arguments, check_config
from research.speed import Speed
from research.tasks import Task
from research.tracking import RunRecord, card, memory, overrides, read_record, relaunch, wandb_run
from research.tracking.loggers import closing_wandb, start_loggers
from research.tracking.output_dir import check_writable
from research.tracking.summary import run_table, written

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> RunRecord:
    run_dir = Path(cfg.paths.output_dir)
    check_writable(run_dir)
    relaunch.refuse_other_run(cfg)
    if cfg.get("push_to_hub"):
        card.check_push(cfg.push_to_hub, cfg.train)
    cfg = with_resume(cfg)
    config = OmegaConf.to_container(cfg, resolve=True)
    record = RunRecord.start(config, cfg.method.name, cfg.model.name, cfg.data.name)
    record.artifacts |= overrides.launch()
    if cfg.ckpt_path:
        record.artifacts["resumed_from"] = cfg.ckpt_path
    # read now: a resumed sweep job's run.json (holding the W&B id it continues) is about to be rewritten
    wandb_identity = wandb_run.identity(record, cfg.method.name, wandb_run.group_of(cfg.task_name))
    log_artifact = OmegaConf.select(cfg, "logger.wandb.log_artifact", default=False)
    memory.reset_peak()
    zero = is_global_zero()  # under DDP every process runs train(); only rank 0 writes run.json and files
    with closing_wandb(record, run_dir, log_artifact), record.recorded(run_dir) if zero else nullcontext():
        pl.seed_everything(cfg.seed, workers=True)
        callbacks = [build_node(c) for c in (cfg.callbacks or {}).values()]
        module, datamodule = build(cfg, callbacks=callbacks)
        record.params = count_parameters(module.model)
        record.artifacts |= {
            "base_fingerprint": module.base_fingerprint,
            "injected": module.method.describe(module.model),
        }
        record.artifacts["truncated_inputs"] = datamodule.truncated
        if datamodule.label_names:
            record.artifacts["label_names"] = list(datamodule.label_names)
        loggers, note = start_loggers(cfg.logger, run_dir, wandb_identity)
        record.artifacts |= wandb_run.recorded_run()
        if note:
            record.artifacts["logger_fallback"] = note
        callbacks += [EpochSeed(cfg.seed), RecordProgress(record, run_dir), *progress_callbacks(cfg.trainer)]
        callbacks += [LearningRateMonitor(logging_interval="step")] if loggers else []  # `train/lr` per step
        trainer: pl.Trainer = instantiate(
            cfg.trainer, default_root_dir=run_dir, logger=loggers or False, callbacks=callbacks
        )
        for lg in loggers:
            lg.log_hyperparams(wandb_run.hyperparams(record))

        if cfg.test and cfg.zero_shot:
            with module.scoring("zero_shot", base=True):
                _test(trainer, module, datamodule, record)
        if cfg.train:
            started = time.perf_counter()
            trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
            record.timing["train_s"] = time.perf_counter() - started
            record.timing["train_tokens_per_s"] = module.tokens_seen / record.timing["train_s"]
            record.metrics |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
            record.artifacts["injected"] = module.method.describe(module.model)  # AdaLoRA's ranks moved
            with full_weights(trainer):
                if zero:
                    weights = module.method.save(module.model, run_dir / "weights")
                    record.artifacts |= {"weights_dir": str(weights), "weights_bytes": _dir_bytes(weights)}
        if cfg.test:
            _test(trainer, module, datamodule, record)
        for callback in callbacks:
            record.metrics |= getattr(callback, "metrics", {})
        record.memory = memory.peak() | memory.model_bytes(module.model)
        if zero and "weights_dir" in record.artifacts:
            card.write_card(asdict(record), Path(record.artifacts["weights_dir"]))
    if zero:
        print(run_table(record.__dict__))
        print(written(run_dir))
        if cfg.get("push_to_hub"):
            log.info(
                "pushed weights/ and its model card to %s",
                card.push(Path(record.artifacts["weights_dir"]), cfg.push_to_hub),
            )
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
    check_config(cfg)
    check_precision(cfg)
    check_strategy(cfg, relaunch.is_multirun())
    check_resume(cfg)
    method: Method = build_node(cfg.method)
    optimizer, scheduler = build_node(cfg.optimizer), build_node(cfg.scheduler)
    check_optimizer(optimizer, cuda=str(cfg.trainer.accelerator) in ("gpu", "cuda"))
    check_scheduler(scheduler)
    for section in ("optimizer", "trainer"):  # a key added with `+` that the class does not take
        check_arguments(cfg[section], section)
    for callback in callbacks:
        if hasattr(callback, "preflight"):
            callback.preflight(Task.parse(cfg.model.task), method)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))  # checks a local model folder
    check_num_labels(cfg.data.get("label_names"), spec.num_labels)
    tokenizer = build_tokenizer(spec)
    datamodule = build_node(cfg.data, tokenizer=tokenizer, task=spec.task, chat_template=spec.chat_template)
    datamodule.setup()
    ctx = Context(spec.task, tokenizer, total_steps=planned_steps(cfg, datamodule))
    base = build_base(spec, tokenizer, method, seed=cfg.seed)
    base_fingerprint, base_params = fingerprint(base), count_parameters(base)["total"]
    if weights:
        check_same_base(weights.parent, base_fingerprint, spec)
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
    module.base_fingerprint, module.base_params = base_fingerprint, base_params
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


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def evaluate(cfg: DictConfig) -> RunRecord:
    out_dir = Path(cfg.paths.output_dir)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else None
    if run_dir:
        cfg = with_run_config(cfg, run_dir)
    relaunch.refuse_other_run(cfg)
    method = cfg.method.name if run_dir else "zero_shot"
    record = RunRecord.start(OmegaConf.to_container(cfg, resolve=True), method, cfg.model.name, cfg.data.name)
    record.artifacts |= overrides.launch()
    group = wandb_run.trained_group(read_record(run_dir)) if run_dir else wandb_run.group_of(cfg.task_name)
    memory.reset_peak()
    with closing_wandb(record, out_dir), record.recorded(out_dir):
        pl.seed_everything(cfg.seed, workers=True)
        module, datamodule = build(cfg, weights=run_dir / WEIGHTS if run_dir else None)
        if run_dir:
            record.artifacts |= {"run_dir": str(run_dir), "weights_dir": str(run_dir / WEIGHTS)}
        # zero-shot scores the base as loaded: the composed method's injected parameters are not its own
        record.params = count_parameters(module.model) if run_dir else untrained(module.base_params)
        loggers, note = start_loggers(cfg.logger, out_dir, wandb_run.identity(record, "eval", group, prefix="eval"))
        record.artifacts |= wandb_run.recorded_run() | ({"logger_fallback": note} if note else {})
        for lg in loggers:
            lg.log_hyperparams(wandb_run.hyperparams(record))
        trainer: pl.Trainer = instantiate(
            cfg.trainer,
            default_root_dir=out_dir,
            logger=loggers or False,
            callbacks=[examples_callback(cfg), *progress_callbacks(cfg.trainer)],
        )
        stage = "test" if run_dir else "zero_shot"
        started = time.perf_counter()
        with module.scoring(stage, base=run_dir is None):
            loader = datamodule.loader(cfg.split, datamodule.eval_batch_size)
            results = trainer.test(module, dataloaders=loader, verbose=False)[0]
        record.timing["eval_s"] = time.perf_counter() - started
        results.pop(f"{stage}/eval_s")
        record.metrics, record.memory = results, memory.peak()
    print(run_table(record.__dict__))
    print(written(out_dir))
    return record


def untrained(total: int) -> dict[str, float]:
    return {"trainable": 0, "total": total, "trainable_pct": 0.0}


def examples_callback(cfg: DictConfig) -> pl.Callback:
    """The examples callback as configured (`callbacks.examples`, e.g. num_examples), else its defaults."""
    node = (cfg.get("callbacks") or {}).get("examples")
    return build_node(node) if node else ExamplePredictions()


def with_run_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The run's model, method and seed replace the composed ones: they define what its weights fit."""
    saved = run_config(run_dir)
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.model, cfg.method, cfg.seed = saved.model, saved.method, saved.seed
    return cfg
