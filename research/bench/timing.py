"""Step clocks for the three training loops (their statistics: research/bench/report.py).

A step's time is the interval between the ends of two consecutive optimizer steps, so it includes
everything a loop does between steps (data loading, collation, logging), not only the model. Both the
wall-clock interval and the process CPU time spent in it are kept: on a shared, oversubscribed CPU the
wall clock also counts the time other processes held the cores, the CPU time does not. Each step's
training loss is kept too: the loops' loss curves must agree."""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torch
from transformers import TrainerCallback


class StepClock:
    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ends: list[float] = []
        self.cpu_ends: list[float] = []
        self.losses: list[float] = []

    def tick(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous: time it finished, not when it was queued
        self.ends.append(time.perf_counter())
        self.cpu_ends.append(time.process_time())

    def step_times(self, warmup: int, cpu: bool = False) -> list[float]:
        """Durations of the steps after the first `warmup` (warmup >= 1: the last warm-up end starts the first)."""
        ends = (self.cpu_ends if cpu else self.ends)[warmup - 1 :]
        return [b - a for a, b in zip(ends, ends[1:], strict=False)]

    def startup_s(self) -> float:
        """From the call into the loop to the end of its first step: setup plus one step."""
        return self.ends[0] - self.started


class LightningClock(pl.Callback):
    def __init__(self, clock: StepClock) -> None:
        self.clock = clock

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # after optimizer.step()
        self.clock.tick()
        self.clock.losses.append(float(outputs["loss"]))


class HFClock(TrainerCallback):
    def __init__(self, clock: StepClock) -> None:
        self.clock = clock

    def on_step_end(self, args, state, control, **kwargs):  # after optimizer and scheduler steps
        self.clock.tick()

    def on_log(self, args, state, control, logs=None, **kwargs):  # logging_steps=1: each step's own loss
        if logs and "loss" in logs:
            self.clock.losses.append(float(logs["loss"]))
