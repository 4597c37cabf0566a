"""Merge a run's weights into its base and export a plain transformers model with its tokenizer:
    peftlab merge run_dir=outputs/.../<run> out=merged/ [model.name_or_path=... other overrides]

The result loads with `AutoModelFor*.from_pretrained(out)` and `AutoTokenizer.from_pretrained(out)`, no peft
and no this package. The method named in the run's record does the merge: LoRA-family and IA3 fold into the
weights (QLoRA into the de-quantized base), full and selective runs are exported as they are, and methods
that cannot merge (soft prompts, bottleneck adapters) are refused with the reason."""

from __future__ import annotations

import sys
from pathlib import Path

from research.methods.base import MergeRefused
from research.runs import load_run


def merge_run(run_dir: Path, out: Path, overrides: list[str] | None = None) -> Path:
    run = load_run(run_dir, overrides or [])
    run.method.export(run.model, run.tokenizer, out)
    return out


def parse(argv: list[str]) -> tuple[Path, Path, list[str]]:
    """`run_dir=` and `out=` are required; every other `key=value` overrides the run's config."""
    args = dict(a.split("=", 1) for a in argv if "=" in a and a.split("=", 1)[0] in ("run_dir", "out"))
    overrides = [a for a in argv if a.split("=", 1)[0] not in ("run_dir", "out")]
    missing = [k for k in ("run_dir", "out") if not args.get(k)]
    bad = [a for a in overrides if "=" not in a]
    if missing or bad:
        raise SystemExit(
            f"usage: peftlab merge run_dir=<run folder> out=<new folder> [key=value ...]; missing {missing}"
        )
    return Path(args["run_dir"]), Path(args["out"]), overrides


def main(argv: list[str] | None = None) -> None:
    run_dir, out, overrides = parse(sys.argv[1:] if argv is None else argv)
    try:
        merge_run(run_dir, out, overrides)
    except (MergeRefused, FileNotFoundError, ValueError) as err:
        raise SystemExit(f"merge: {err}") from None
    print(f"merged model and tokenizer written to {out}")


if __name__ == "__main__":
    main()
