"""One run's life, owned in one place, for `train` and `evaluate` alike (job type = the method's name, or
`eval`): the folder checked and claimed, the resume point found, the record started and kept (running, then completed,
failed or interrupted by a signal), the command line, the loggers with the W&B identity, the cost (seconds
per stage, peak memory, the model's bytes), the weights' model card and Hub push, and the closing table.

The pipeline (research/pipeline/) only builds and steps; everything it learns goes to the record through
here. Under DDP every process runs the pipeline, and only rank 0 writes files."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor
from pytorch_lightning.utilities import rank_zero_only

from research.runs import claims, memory, overrides, relaunch
from research.runs.checkpoints import RecordProgress
from research.runs.output_dir import check_writable
from research.runs.record import RunRecord, read_record
from research.runs.resume import with_resume
from research.views import card, wandb_run
from research.views.loggers import closing_wandb, start_loggers
from research.views.predictions import KeptPredictions
from research.views.progress import progress_callbacks
from research.views.summary import run_table, written

log = logging.getLogger(__name__)
EVAL = "eval"  # the job type (and W&B name prefix) of an evaluation
FIT_TIMING = ("fit_s", "val_s", "train_s", "train_tokens_per_s")  # what `fit` costs, in a record's timing


class Run:
    """`with run:` brackets the work: the record is written when it starts and when it ends, however it
    ends, and the W&B run is closed with it. `close()` then prints the table and pushes the weights."""

    def __init__(self, cfg: DictConfig, job_type: str, method: str, group: str) -> None:
        self.cfg, self.job_type, self.dir = cfg, job_type, Path(cfg.paths.output_dir)
        self.record = RunRecord.start(OmegaConf.to_container(cfg, resolve=True), method, cfg.model.name, cfg.data.name)
        self.record.artifacts |= overrides.launch()
        self.resumed: dict[str, Any] | None = None  # the record of the run this one continues, as it was
        if cfg.get("ckpt_path"):
            self.record.artifacts["resumed_from"] = cfg.ckpt_path
            self.resumed = read_record(Path(cfg.ckpt_path).parent.parent)  # <run dir>/checkpoints/last.ckpt
        # read now: a resumed sweep job's run.json (holding the W&B id it continues) is about to be rewritten
        prefix = EVAL if job_type == EVAL else ""
        self.wandb_identity = wandb_run.identity(self.record, job_type, group, prefix=prefix)
        self.writes = is_global_zero()
        self._stack = ExitStack()

    @classmethod
    def training(cls, cfg: DictConfig) -> Run:
        """A training run: its folder must take files and hold no other config's run; `push_to_hub` must be
        possible; `resume=auto` finds the checkpoint it continues."""
        check_writable(Path(cfg.paths.output_dir))
        relaunch.refuse_other_run(cfg)
        if cfg.get("push_to_hub"):
            card.check_push(cfg.push_to_hub, cfg.train)
        cfg = with_resume(cfg)
        return cls(cfg, cfg.method.name, cfg.method.name, wandb_run.group_of(cfg.task_name))

    @classmethod
    def evaluation(cls, cfg: DictConfig, trained: dict[str, Any] | None) -> Run:
        """An evaluation, of a trained run (its record: the evaluation joins its W&B group) or zero-shot."""
        relaunch.refuse_other_run(cfg)
        group = wandb_run.trained_group(trained) if trained else wandb_run.group_of(cfg.task_name)
        return cls(cfg, EVAL, cfg.method.name if trained else "zero_shot", group)

    def __enter__(self) -> Run:
        if self.writes and not relaunch.is_multirun():  # a sweep job's folder is claimed by its launch
            self._claim()
        memory.reset_peak()
        log_artifact = OmegaConf.select(self.cfg, "logger.wandb.log_artifact", default=False)
        self._stack.enter_context(closing_wandb(self.record, self.dir, log_artifact and self.job_type != EVAL))
        if self.writes:
            self._stack.enter_context(self.record.recorded(self.dir))
        return self

    def __exit__(self, *exc: object) -> bool:
        if exc[0] is None:
            self.record.memory |= memory.peak()
            if self.writes and "weights_dir" in self.record.artifacts and self.job_type != EVAL:
                card.write_card(asdict(self.record), Path(self.record.artifacts["weights_dir"]))
        return bool(self._stack.__exit__(*exc))

    def _claim(self) -> None:
        """Hold the folder for this run: a second launch into it while this one runs stops before anything
        loads, instead of both writing one record, one checkpoint and one weights folder."""
        holder = self._stack.enter_context(claims.claimed(self.dir, self.record.config_hash))
        if holder is not None:
            self._stack.close()
            raise ValueError(
                f"paths.output_dir={str(self.dir)!r} (hydra.run.dir) is being run by another launch: "
                f"{holder.describe(self.dir / claims.LOCK_FILE)}; give this run a new folder"
            )

    # --- what the pipeline built and learned -------------------------------------------------------------
    def built(self, params: dict[str, float], artifacts: dict[str, Any]) -> None:
        self.record.params = params
        self.record.artifacts |= artifacts

    def trainer(self, callbacks: Sequence[pl.Callback], training: bool) -> pl.Trainer:
        """The configured Trainer with this run's loggers (W&B under the run's identity; CSV where a logger
        cannot start, said in run.json), progress bar, every evaluated row kept (predictions.jsonl), and for
        training the per-step learning rate and run.json's checkpoint progress."""
        loggers, note = start_loggers(self.cfg.logger, self.dir, self.wandb_identity)
        self.record.artifacts |= wandb_run.recorded_run() | ({"logger_fallback": note} if note else {})
        for lg in loggers:
            lg.log_hyperparams(wandb_run.hyperparams(self.record))
        bar = progress_callbacks(self.cfg.trainer, self.cfg.get("progress_bar", "tqdm"))
        extra: list[pl.Callback] = [*bar, KeptPredictions()]
        if training:
            extra.append(RecordProgress(self.record, self.dir))
            extra += [LearningRateMonitor(logging_interval="step")] if loggers else []  # `train/lr` per step
        return instantiate(
            self.cfg.trainer, default_root_dir=self.dir, logger=loggers or False, callbacks=[*callbacks, *extra]
        )

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Seconds of a stage into the record's `timing` (`fit_s`, `<stage>_eval_s`)."""
        started = time.perf_counter()
        yield
        self.record.timing[name] = time.perf_counter() - started

    def earlier_fit(self) -> tuple[dict[str, float], dict[str, float]] | None:
        """The fit's cost (`timing`) and validation scores recorded by the attempt this run resumes, when that
        attempt finished fitting (interrupted in its final test): a fit resumed from its last checkpoint
        trains nothing and would record a fraction of a second and no validation."""
        earlier = self.resumed or {}
        timing = {k: v for k, v in earlier.get("timing", {}).items() if k in FIT_TIMING}
        if "train_s" not in timing:
            return None
        return timing, {k: v for k, v in earlier["metrics"].items() if k.startswith("val/")}

    def saved(self, weights: Path) -> None:
        self.record.artifacts |= {"weights_dir": str(weights), "weights_bytes": dir_bytes(weights)}

    def close(self) -> RunRecord:
        """The closing table and where the run is; a completed training run's weights pushed to the Hub."""
        if self.writes:
            print(run_table(self.record.__dict__))
            print(written(self.dir))
            if self.cfg.get("push_to_hub") and "weights_dir" in self.record.artifacts:
                url = card.push(Path(self.record.artifacts["weights_dir"]), self.cfg.push_to_hub)
                log.info("pushed weights/ and its model card to %s", url)
        return self.record


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def is_global_zero() -> bool:
    """Rank 0, known before the Trainer starts the other processes: Lightning reads the rank from the
    environment that its DDP launcher (or torchrun, SLURM) gives them; NODE_RANK covers the first process
    of another node started by hand."""
    return rank_zero_only.rank == 0 and int(os.environ.get("NODE_RANK", 0)) == 0
