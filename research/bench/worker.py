"""One benchmark job in a fresh process: `python -m research.bench.worker JOB.json RESULT.json`.

A fresh process per method keeps its memory peak its own (the peak resident size of a process only
grows, and freed memory is not always returned to the system)."""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import save_file

from research.bench import evaluation, generation, padding, runners
from research.bench.options import Options, compose_config
from research.bench.resources import matmul_ceiling, mfu
from research.bench.workload import eval_rows, train_workload
from research.data import build_data
from research.methods.base import count_parameters, trainable_tensors
from research.models import ModelSpec, build_tokenizer
from research.runs import memory


def train_job(opts: Options, method: str) -> dict:
    """Ours and the baselines interleaved (ours, baselines..., then reversed: A B B A), each from the same
    initial weights, then generation; the first method's job also compares batched with per-example
    generation and our evaluation with a plain generate loop (saves a process start)."""
    rss_start = memory.rss_mb()
    cfg = _sized(compose_config(opts, method), opts)
    runners.check_trainer(cfg)
    module, datamodule = _build(cfg)
    rss_built = memory.rss_mb()
    work = train_workload(datamodule, opts.warmup + opts.steps, module.model)
    segments = []
    with tempfile.TemporaryDirectory() as tmp:  # on disk, not in memory: it would count in every peak
        initial = Path(tmp) / "initial.safetensors"
        save_file(trainable_tensors(module.model), str(initial))
        for repeat in range(opts.repeats):
            order = ["ours", *opts.baselines]
            for runner in order if repeat % 2 == 0 else order[::-1]:
                segments.append(runners.run(runner, module, cfg, work, opts.warmup, repeat, initial))
    params = count_parameters(module.model)
    first = segments[0]  # ours, first thing after the build: its peak is not inflated by earlier runs
    ours_tps = [s.tokens_per_s for s in segments if s.runner == "ours"]
    rows = eval_rows(datamodule, opts.gen_batch)
    compared = evaluated = None
    if method == opts.methods[0]:
        compared = generation.batched_vs_loop(module, rows, datamodule.collate, opts.gen_tokens, opts.repeats)
        evaluated = evaluation.ours_vs_loop(module, datamodule, cfg, opts.repeats)
    return {
        "method": method,
        "model": cfg.model.name,
        "data": cfg.data.name,
        "params": params,
        "batch_size": work.batch_size,
        "tokens_per_step": work.tokens_per_step,
        "segments": [asdict(s) for s in segments],
        "memory": {
            "rss_start_mb": rss_start,
            "rss_after_build_mb": rss_built,
            **{f"train_{k}": v for k, v in first.memory.items()},
            **{k.replace("bytes", "mb"): v / 2**20 for k, v in memory.model_bytes(module.model).items()},
        },
        "mfu": mfu(params["total"], max(ours_tps), opts.peak_tflops),
        "matmul_ceiling": matmul_ceiling(next(module.model.parameters()).device),
        "generation": generation.throughput(module, rows, datamodule.collate, opts.gen_tokens),
        "batched_vs_loop": compared,
        "evaluation_vs_loop": evaluated,
    }


def padding_job(opts: Options, method: str) -> dict:
    """Padding of the training pipeline as configured (its batch size and length cap, not the timing
    workload's); only the tokenizer and the data: no model is needed to count padding."""
    limit = f"data.train_limit={opts.padding_examples or 'null'}"
    cfg = compose_config(opts, method, limit, workload_sizes=False)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    datamodule = build_data(cfg.data, spec, build_tokenizer(spec))
    datamodule.setup()
    return {"data": cfg.data.name, "examples": len(datamodule.splits["train"]), "batch_size": datamodule.batch_size,
            "max_source_length": datamodule.max_source_length,
            **padding.padding_share(datamodule)}  # fmt: skip


def _build(cfg: DictConfig):
    from research.pipeline import build  # imported here: it pulls in every logger and the sweep plugins

    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    return build(cfg)


def _sized(cfg: DictConfig, opts: Options) -> DictConfig:
    """Tokenize only what the jobs read: the training steps' examples, the generation and evaluation rows."""
    needed = (opts.warmup + opts.steps) * cfg.data.batch_size
    cfg.data.train_limit = min(cfg.data.train_limit or needed, needed)
    cfg.data.eval_limit = min(cfg.data.eval_limit or opts.gen_batch, opts.gen_batch)
    rows = max(opts.gen_batch, opts.eval_rows)
    cfg.data.test_limit = min(cfg.data.test_limit or rows, rows)
    return cfg


JOBS = {"train": train_job, "padding": padding_job}


def main(job_path: str, result_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    opts = Options(**job["options"])
    torch.set_num_threads(opts.threads)
    result = JOBS[job["kind"]](opts, job["method"])
    result["threads"] = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
    Path(result_path).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
