"""Command-line options of the benchmark, and the Hydra config each job composes from them."""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from research.config import config_dir

CONF = config_dir()
METHODS = ("full", "selective", "lora", "qlora", "adapter", "prompt_tuning")
BASELINES = ("manual", "hf")


@dataclass
class Options:
    model: str | None = None  # conf/model choice; None: train.yaml's default (or the experiment's)
    data: str | None = None
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    steps: int = 6
    warmup: int = 2
    batch_size: int | None = None  # None: data.batch_size
    seq_len: int | None = None  # None: data.max_source_length
    repeats: int = 2
    threads: int = 1  # 0: every core this process may use
    gen_tokens: int = 16
    gen_batch: int = 16
    eval_rows: int = 40  # test examples our evaluation and the plain generate loop both score
    padding_examples: int | None = None  # None: the whole training split
    padding: bool = True
    peak_tflops: float | None = None  # accelerator peak, for model FLOPs utilisation (GPU only)
    out: str | None = None
    overrides: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("steps", "warmup", "repeats", "gen_tokens", "gen_batch", "eval_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')}={getattr(self, name)} must be >= 1")
        unknown = [m for m in self.methods if not (CONF / "method" / f"{m}.yaml").exists()]
        if unknown:
            raise ValueError(
                f"--methods: {unknown} not in conf/method/; allowed: {', '.join(METHODS)} (or any conf/method)"
            )
        if bad := [b for b in self.baselines if b not in BASELINES]:
            raise ValueError(f"--baselines: {bad}; allowed: {', '.join(BASELINES)}")
        if self.threads < 0:
            raise ValueError(f"--threads={self.threads} must be >= 0 (0: all available cores)")
        self.threads = self.threads or len(os.sched_getaffinity(0))

    def to_dict(self) -> dict:
        return asdict(self)


def parse(argv: list[str] | None = None) -> Options:
    d = Options()  # the defaults live in one place
    p = argparse.ArgumentParser(prog="python -m research.bench", description=__doc__)
    p.add_argument("--model", help="conf/model choice (default: tiny_t5, or the experiment's)")
    p.add_argument("--data", help="conf/data choice (default: synthetic, or the experiment's)")
    p.add_argument("--methods", default=",".join(d.methods), help="comma-separated conf/method choices")
    p.add_argument("--baselines", default=",".join(d.baselines), help="manual (hand-written loop), hf (HF Trainer)")
    p.add_argument("--steps", type=int, default=d.steps, help="timed training steps per run")
    p.add_argument("--warmup", type=int, default=d.warmup, help="untimed training steps first")
    p.add_argument("--batch-size", type=int, help="default: data.batch_size")
    p.add_argument("--seq-len", type=int, help="data.max_source_length (default: the data config's)")
    p.add_argument("--repeats", type=int, default=d.repeats, help="interleaved runs per side (A B A B)")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads; 0: all available cores (on a shared, busy machine more threads than free cores slow everything down)",
    )
    p.add_argument("--gen-tokens", type=int, default=d.gen_tokens, help="new tokens per row in the generation workload")
    p.add_argument("--gen-batch", type=int, default=d.gen_batch, help="rows in the generation workload")
    p.add_argument(
        "--eval-rows", type=int, default=d.eval_rows, help="test examples scored by our evaluation and a plain loop"
    )
    p.add_argument("--padding-examples", type=int, help="training examples for the padding count (default: all)")
    p.add_argument("--no-padding", dest="padding", action="store_false", help="skip the padding measurement")
    p.add_argument("--peak-tflops", type=float, help="accelerator peak TFLOP/s for MFU (GPU)")
    p.add_argument("--out", help="output directory (default: outputs/bench/<time>)")
    p.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. model.name_or_path=/path")
    a = p.parse_args(argv)
    return Options(
        model=a.model, data=a.data, methods=_csv(a.methods), baselines=_csv(a.baselines), steps=a.steps,
        warmup=a.warmup, batch_size=a.batch_size, seq_len=a.seq_len, repeats=a.repeats, threads=a.threads,
        gen_tokens=a.gen_tokens, gen_batch=a.gen_batch, eval_rows=a.eval_rows, padding_examples=a.padding_examples, padding=a.padding,
        peak_tflops=a.peak_tflops, out=a.out, overrides=a.overrides,
    )  # fmt: skip


def _csv(text: str) -> list[str]:
    return [t for t in (s.strip() for s in text.split(",")) if t]


def compose_config(opts: Options, method: str, *extra: str, workload_sizes: bool = True) -> DictConfig:
    """The run config a job measures: the user's overrides win over the bench's own. `workload_sizes`:
    apply --batch-size / --seq-len (the timing workload); without, the data config's own sizes."""
    chosen = [f"{g}={v}" for g, v in (("model", opts.model), ("data", opts.data)) if v]
    sizes = [f"data.batch_size={opts.batch_size}"] if opts.batch_size and workload_sizes else []
    sizes += [f"data.max_source_length={opts.seq_len}"] if opts.seq_len and workload_sizes else []
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=[*chosen, f"method={method}", *sizes, *extra, *opts.overrides])
