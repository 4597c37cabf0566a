"""`python -m research.bench [options] [hydra overrides]`: run every job in its own process, then
write `bench.json` (also printed on stdout) and `bench.md` into the output directory."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from research.bench import report, startup
from research.bench.options import Options, parse
from research.runs.record import git_commit


def run_job(kind: str, method: str, opts: Options, out: Path) -> dict[str, Any]:
    """A fresh Python process per job; its log goes to `logs/<job>.log`, a failure becomes `error`."""
    name = f"{kind}_{method}"
    job, result, log = out / "jobs" / f"{name}.json", out / "jobs" / f"{name}.result.json", out / "logs" / f"{name}.log"
    job.write_text(json.dumps({"kind": kind, "method": method, "options": opts.to_dict()}))
    env = {**os.environ, "OMP_NUM_THREADS": str(opts.threads), "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), "WANDB_MODE": "disabled"}  # fmt: skip
    started = time.perf_counter()
    print(f"[bench] {name} ...", file=sys.stderr, flush=True)
    with log.open("w") as fh:
        proc = subprocess.run([sys.executable, "-m", "research.bench.worker", str(job), str(result)],
                              stdout=fh, stderr=subprocess.STDOUT, env=env)  # fmt: skip
    seconds = time.perf_counter() - started
    print(f"[bench] {name}: exit {proc.returncode} in {seconds:.0f} s", file=sys.stderr, flush=True)
    if proc.returncode != 0 or not result.exists():
        tail = log.read_text().strip().splitlines()[-1:] or ["no output"]
        return {"error": f"exit {proc.returncode}: {tail[0]} (see {log})", "wall_s": seconds}
    return json.loads(result.read_text()) | {"wall_s": seconds}


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    out = Path(opts.out or f"outputs/bench/{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    (out / "jobs").mkdir(parents=True, exist_ok=True)
    (out / "logs").mkdir(exist_ok=True)
    raw = {m: run_job("train", m, opts, out) for m in opts.methods}
    first_failed = {"error": f"the {opts.methods[0]} job failed"}
    gen = raw[opts.methods[0]].get("batched_vs_loop") or first_failed
    evaluation = raw[opts.methods[0]].get("evaluation_vs_loop") or first_failed
    pad = run_job("padding", opts.methods[0], opts, out) if opts.padding else None
    start = startup.measure()
    methods = {m: r if "error" in r else report.method_summary(r) | {"wall_s": r["wall_s"]} for m, r in raw.items()}
    ok = {m: r for m, r in methods.items() if "error" not in r}
    first = next(iter(raw.values()))
    result = {
        "meta": _meta(opts, argv, first),
        "methods": methods,
        "generation": gen,
        "evaluation": evaluation,
        "matmul_ceiling": first.get("matmul_ceiling"),
        "padding": pad,
        "startup": start,
        "targets": report.targets(
            ok,
            None if "error" in gen else gen,
            None if pad is None or "error" in pad else pad,
            _clock(),
            None if "error" in evaluation else evaluation,
            None if "error" in start else start,
        ),
        "raw": raw,
    }
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    (out / "bench.md").write_text(report.markdown(result))
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}, indent=1))
    print(f"[bench] wrote {out / 'bench.json'} and {out / 'bench.md'}", file=sys.stderr)
    failed = [n for n, r in [*raw.items(), ("padding", pad or {}), ("startup", start)] if "error" in r]
    return len(failed)


def _meta(opts: Options, argv: list[str] | None, first: dict[str, Any]) -> dict[str, Any]:
    import torch

    args = sys.argv[1:] if argv is None else argv
    return {
        "command": shlex.join(["python", "-m", "research.bench", *args]),
        "model": first.get("model", opts.model),
        "data": first.get("data", opts.data),
        "batch_size": first.get("batch_size"),
        "steps": opts.steps,
        "warmup": opts.warmup,
        "repeats": opts.repeats,
        "threads": first.get("threads", {}).get("intra_op", opts.threads),
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)",
        "torch": torch.__version__,
        "load_average": os.getloadavg(),
        "git_commit": git_commit(),
        "options": opts.to_dict(),
    }


def _clock() -> str:
    """Throughput targets are judged on CPU time on a CPU (other processes' load is on the wall clock only)."""
    import torch

    return "wall" if torch.cuda.is_available() else "cpu"


if __name__ == "__main__":
    sys.exit(main())
