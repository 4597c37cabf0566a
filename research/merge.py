"""Merge a run's weights into its base and export a plain transformers model with its tokenizer:
    peftlab merge run_dir=outputs/.../<run> out=merged/ [model.name_or_path=... other overrides]

The result loads with `AutoModelFor*.from_pretrained(out)` and `AutoTokenizer.from_pretrained(out)`, no peft
and no this package. The method named in the run's record does the merge: LoRA-family and IA3 fold into the
weights (QLoRA into the de-quantized base, a GGUF base as the float weights transformers read from it), full
and selective runs are exported as they are, and methods that cannot merge (soft prompts, bottleneck
adapters) are refused with the reason. Overrides use Hydra's syntax, as `train` reads them."""

from __future__ import annotations

import sys
from pathlib import Path

from research.command import started

USAGE = "usage: peftlab merge run_dir=<run folder> out=<new folder> [key=value ...]"


def parse(argv: list[str]) -> tuple[Path, Path, list[str]]:
    """`run_dir=` and `out=` are required; every other argument overrides the run's config."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        raise SystemExit(0)
    args = {k: v for k, _, v in (a.partition("=") for a in argv) if k in ("run_dir", "out")}
    overrides = [a for a in argv if a.partition("=")[0] not in ("run_dir", "out")]
    missing = [f"{k}=" for k in ("run_dir", "out") if not args.get(k)]
    if missing:
        raise SystemExit(f"{USAGE}\nmerge: missing {' and '.join(missing)}")
    return Path(args["run_dir"]), Path(args["out"]), overrides


def main(argv: list[str] | None = None) -> None:
    run_dir, out, overrides = parse(sys.argv[1:] if argv is None else argv)
    started()
    from research.methods.base import MergeRefused  # the heavy imports, once the arguments are read
    from research.pipeline.serving import merge_run

    try:
        merge_run(run_dir, out, overrides)
    except (MergeRefused, OSError, ValueError) as err:
        raise SystemExit(f"merge: {err}") from None
    print(f"merged model and tokenizer written to {out}")


if __name__ == "__main__":
    main()
