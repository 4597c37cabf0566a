"""The three training loops measured side by side, each on the module `research.train.build` made:

- `ours`: the real Lightning Trainer from `cfg.trainer` fitting our `FineTuneModule`;
- `manual`: a minimal hand-written PyTorch loop over the same (peft) model: the floor for overhead;
- `hf`: the Hugging Face `Trainer` (`Seq2SeqTrainer` for seq2seq), as the reference lab trains.

Same batches, same optimizer and schedule (the module's own `configure_optimizers`), same gradient
clipping and precision, and every run starts from the same trainable weights and seed (`restore`), so
their loss curves can be compared. `ours` must run first: the baselines take its optimizer settings."""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig
from safetensors.torch import load_file
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer, TrainingArguments

from research.bench.timing import HFClock, LightningClock, StepClock
from research.bench.workload import TrainWorkload
from research.loop.module import FineTuneModule
from research.runs import memory

PRECISIONS = ("32-true", "32", "bf16-mixed")


@dataclass
class Segment:
    runner: str
    repeat: int
    step_s: list[float]
    step_cpu_s: list[float]
    tokens: int
    tokens_per_s: float
    tokens_per_cpu_s: float
    flops: float  # model FLOPs the timed steps needed (resources.train_flops)
    startup_s: float
    threads: int
    memory: dict[str, float]
    losses: list[float]  # training loss of every step, warm-up included


def check_trainer(cfg: DictConfig) -> None:
    """What the baselines mirror; anything else would make the comparison unequal."""
    if str(cfg.trainer.precision) not in PRECISIONS:
        raise ValueError(f"trainer.precision={cfg.trainer.precision}: the bench mirrors only {', '.join(PRECISIONS)}")
    if cfg.trainer.accumulate_grad_batches != 1:
        raise ValueError("trainer.accumulate_grad_batches must be 1 in the bench (a step is one batch)")


def run(
    runner: str, module: FineTuneModule, cfg: DictConfig, work: TrainWorkload, warmup: int, repeat: int, initial: Path
) -> Segment:
    """One timed run from a clean slate: the initial trainable weights (saved in `initial`) and seed, no
    gradients left over, peak memory reset."""
    module.model.load_state_dict(load_file(str(initial)), strict=False)
    torch.manual_seed(cfg.seed)
    module.model.zero_grad(set_to_none=True)
    gc.collect()
    memory.reset_peak()
    clock = StepClock()
    with tempfile.TemporaryDirectory() as tmp:
        RUNNERS[runner](module, cfg, work, clock, tmp)
    if len(clock.ends) != work.steps:
        raise RuntimeError(f"{runner}: {len(clock.ends)} steps ran, {work.steps} expected")
    step_s, step_cpu_s = clock.step_times(warmup), clock.step_times(warmup, cpu=True)
    tokens, flops = sum(work.tokens_per_step[warmup:]), sum(work.flops_per_step[warmup:])
    return Segment(
        runner, repeat, step_s, step_cpu_s, tokens, tokens / sum(step_s), tokens / sum(step_cpu_s),
        flops, clock.startup_s(), torch.get_num_threads(), memory.peak(), clock.losses,
    )  # fmt: skip


def ours(module: FineTuneModule, cfg: DictConfig, work: TrainWorkload, clock: StepClock, tmp: str) -> None:
    trainer = instantiate(
        cfg.trainer,
        max_steps=work.steps,
        max_epochs=-1,
        logger=False,
        callbacks=[LightningClock(clock)],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        default_root_dir=tmp,
    )
    trainer.fit(module, train_dataloaders=work.loader())


def manual(module: FineTuneModule, cfg: DictConfig, work: TrainWorkload, clock: StepClock, tmp: str) -> None:
    model, device = module.model, _device(cfg)
    model.to(device).train()
    optimizer, scheduler = _optimizer(module)
    params = [p for p in model.parameters() if p.requires_grad]
    clip = cfg.trainer.gradient_clip_val
    with _autocast(cfg, device):
        for batch in work.loader():
            loss = model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()}).loss
            loss.backward()
            clock.losses.append(loss.item())
            if clip:
                torch.nn.utils.clip_grad_norm_(params, clip)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            clock.tick()


def hf(module: FineTuneModule, cfg: DictConfig, work: TrainWorkload, clock: StepClock, tmp: str) -> None:
    device = _device(cfg)
    module.model.to(device)
    seq2seq = module.model.config.is_encoder_decoder  # what Seq2SeqTrainer is for
    args = (Seq2SeqTrainingArguments if seq2seq else TrainingArguments)(
        output_dir=tmp,
        max_steps=work.steps,
        per_device_train_batch_size=work.batch_size,
        train_sampling_strategy="sequential",  # the workload is already in training order
        remove_unused_columns=False,
        max_grad_norm=cfg.trainer.gradient_clip_val or 0.0,
        bf16=str(cfg.trainer.precision).startswith("bf16"),
        use_cpu=device.type == "cpu",
        logging_steps=1,  # each step's loss, for the loss curve
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        seed=cfg.seed,
    )
    trainer = (Seq2SeqTrainer if seq2seq else Trainer)(
        model=module.model,
        args=args,
        train_dataset=work.examples,
        data_collator=work.collate,
        optimizers=_optimizer(module),
        callbacks=[HFClock(clock)],
    )
    trainer.train()


def _optimizer(module: FineTuneModule) -> tuple[torch.optim.Optimizer, Any]:
    """A fresh optimizer and schedule exactly as ours configures them (needs the Trainer `ours` attached)."""
    conf = module.configure_optimizers()
    return conf["optimizer"], conf["lr_scheduler"]["scheduler"]


def _device(cfg: DictConfig) -> torch.device:
    gpu = cfg.trainer.accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def _autocast(cfg: DictConfig, device: torch.device):
    if str(cfg.trainer.precision).startswith("bf16"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


RUNNERS: dict[str, Callable[..., None]] = {"ours": ours, "manual": manual, "hf": hf}
