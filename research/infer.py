"""Answer prompts with trained runs, each set up exactly as it was trained:
    peftlab infer run_dir=outputs/.../<run> prompt="#Person1#: Hi ..." [prompt=...] [key=value ...]
    peftlab infer run_dir=<run a> run_dir=<run b> prompt=...      (peft runs of one base share it)

The run's record gives the base (and its seed), the method that loads the weights, the instruction template
and the chat template. The template is used in its evaluation form: training may draw a different phrasing
per example, scoring and serving always use the first. `key=value` overrides the run's config in Hydra's
syntax, as `train` reads them (model.name_or_path=... when the base moved, generation.max_new_tokens=...).
From Python, `serve` and `generate_mixed` answer a mixed batch with several adapters, one per row."""

from __future__ import annotations

import sys
from pathlib import Path

from research.command import started

USAGE = 'usage: peftlab infer run_dir=<run folder> [run_dir=...] prompt="..." [prompt="..."] [key=value ...]'


def parse(argv: list[str]) -> tuple[list[Path], list[str], list[str]]:
    """`run_dir=` and `prompt=` (each once or more) are taken as they are; the rest are overrides."""
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        raise SystemExit(0)
    run_dirs = [Path(a.split("=", 1)[1]) for a in argv if a.startswith("run_dir=")]
    texts = [a.split("=", 1)[1] for a in argv if a.startswith("prompt=")]
    overrides = [a for a in argv if not a.startswith(("run_dir=", "prompt="))]
    if not run_dirs or not texts:
        raise SystemExit(f"{USAGE}\ninfer: missing {'run_dir=' if not run_dirs else 'prompt='}")
    return run_dirs, texts, overrides


def main(argv: list[str] | None = None) -> None:
    run_dirs, texts, overrides = parse(sys.argv[1:] if argv is None else argv)
    started()
    from research.pipeline.serving import answer, load_runs  # the heavy imports, once the arguments are read

    try:
        runs = load_runs(run_dirs, overrides)
    except (OSError, ValueError) as err:
        raise SystemExit(f"infer: {err}") from None
    for run_dir, run in zip(run_dirs, runs, strict=True):
        label = f"[{run_dir}] " if len(runs) > 1 else ""
        for text, reply in zip(texts, answer(run, texts), strict=True):
            print(f"{label}{text!r} -> {reply!r}")


if __name__ == "__main__":
    main()
