"""Everything a run needs, cheapest checks first: the config (method, optimizer, schedule, callbacks)
before the tokenizer, the data before the base model. The same model path serves a new run (the method
injects) and a finished one (the method loads its weights onto a fresh base: research/pipeline/rebuilding.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.strategies import FSDPStrategy
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.config import build_node
from research.config.checks import check_extras, check_precision, check_strategy
from research.config.schema import check_arguments, check_config, check_generation
from research.config.speed import Speed
from research.data import DataModule, build_data, check_num_labels
from research.loop.module import FineTuneModule
from research.loop.optim import check_optimizer, check_scheduler, head_rate
from research.methods.base import Context, Method, count_parameters, task_heads, train_heads
from research.models import ModelSpec, build_tokenizer
from research.models.loading import build_base, fingerprint, skeleton
from research.runs import read_record, relaunch
from research.runs.resume import check_resume
from research.tasks import Task

WEIGHTS = "weights"  # a run's folder: the method's saved weights


@dataclass(frozen=True)
class Base:
    """The untouched base model as the run loaded it: its fingerprint (what weights fit), size and task-head
    modules (`task_heads`)."""

    fingerprint: str
    params: int
    heads: tuple[str, ...] = ()


@dataclass
class Built:
    module: FineTuneModule
    datamodule: DataModule
    base: Base


def assemble(cfg: DictConfig, weights: Path | None = None, callbacks: Sequence[pl.Callback] = ()) -> Built:
    """The run's loop module and data. `weights` (a run's weights/) are loaded by the method onto the fresh
    base instead of injecting a new, untrained method."""
    check_config(cfg)
    check_extras(cfg)
    check_precision(cfg)
    check_strategy(cfg, relaunch.is_multirun())
    check_resume(cfg)
    method: Method = build_node(cfg.method)
    optimizer_node, head_lr = head_rate(cfg.optimizer)
    optimizer, scheduler = build_node(optimizer_node), build_node(cfg.scheduler)
    check_optimizer(optimizer, cuda=str(cfg.trainer.accelerator) in ("gpu", "cuda"))
    check_scheduler(scheduler)
    for node, section in ((optimizer_node, "optimizer"), (cfg.trainer, "trainer")):  # a key added with `+`
        check_arguments(node, section)  # that the class does not take
    check_generation(cfg.generation)
    task = Task.parse(cfg.model.task)
    check_head(task, method, head_lr)
    for callback in callbacks:
        if hasattr(callback, "preflight"):
            callback.preflight(task, method)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))  # checks a local model folder
    check_num_labels(cfg.data.get("label_names"), spec.num_labels)
    tokenizer = build_tokenizer(spec)
    if weights is None and (tree := skeleton(spec, tokenizer)) is not None:
        method.check_base(tree, spec.task)  # modules named that the model lacks: before the weights load
    datamodule = build_data(cfg.data, spec, tokenizer)
    datamodule.setup()
    ctx = Context(spec.task, tokenizer, total_steps=planned_steps(cfg, datamodule))
    model, base = model_of(spec, method, tokenizer, cfg.seed, ctx, weights)
    module = FineTuneModule(
        model=model,
        method=method,
        tokenizer=tokenizer,
        task=spec.task,
        optimizer=optimizer,
        scheduler=scheduler,
        generation=cfg.generation,
        speed=Speed.from_config(cfg.get("speed")),
        heads=base.heads,
        head_lr=head_lr,
    )
    return Built(module, datamodule, base)


def check_head(task: Task, method: Method, head_lr: float | None) -> None:
    """A head-only method, or a head's own rate, on a task without a head would train nothing or change nothing:
    refused before the model loads."""
    if task.has_head:
        return
    if method.needs_head:
        raise ValueError(
            f"method={method.name} trains only a classifier's task head, and model.task={task} has none; "
            "use it with model.task=classification"
        )
    if head_lr is not None:
        raise ValueError(f"optimizer.head_lr={head_lr} is a classifier's task-head rate; model.task={task} has no head")


def build(
    cfg: DictConfig, weights: Path | None = None, callbacks: Sequence[pl.Callback] = ()
) -> tuple[FineTuneModule, DataModule]:
    """`assemble`, for code that needs only the module and the data (tests, benchmarks)."""
    built = assemble(cfg, weights, callbacks)
    return built.module, built.datamodule


def model_of(
    spec: ModelSpec,
    method: Method,
    tokenizer: PreTrainedTokenizerBase,
    seed: int,
    ctx: Context,
    weights: Path | None = None,
) -> tuple[nn.Module, Base]:
    """The base built as the config says, then the method injected (and the task head trained beside it), or a
    run's `weights` loaded by the method that wrote them (refused on another base than the one they were trained on)."""
    base_model = build_base(spec, tokenizer, method, seed=seed)
    base = Base(fingerprint(base_model), count_parameters(base_model)["total"], task_heads(base_model, spec.task))
    ctx = replace(ctx, heads=base.heads)
    if weights is None:
        model = method.inject(base_model, ctx)
        train_heads(base_model, model, ctx.heads)
        if not any(p.requires_grad for p in model.parameters()):
            raise ValueError(f"method {method.name!r} left no parameter trainable")
        return model, base
    check_same_base(weights.parent, base.fingerprint, spec)
    return method.load(base_model, weights, ctx), base


def check_same_base(run_dir: Path, found: str, spec: ModelSpec) -> None:
    """Weights fit only the base they were trained on: refuse another one (another size, architecture,
    random seed, or a moved checkpoint that is not the same), naming both."""
    record = read_record(run_dir) or {}
    trained_on = record.get("artifacts", {}).get("base_fingerprint")
    if trained_on and trained_on != found:
        model = record.get("config", {}).get("model", {})
        raise ValueError(
            f"the weights in {run_dir / WEIGHTS} were trained on another base: model {model.get('name')!r} "
            f"({model.get('name_or_path') or 'built from config'}, seed {record.get('seed')}, fingerprint "
            f"{trained_on}); this base is model {spec.name!r} ({spec.name_or_path or 'built from config'}, "
            f"fingerprint {found}). Load them onto the base they were trained on."
        )


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
