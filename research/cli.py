"""`peftlab <command> [args ...]`: the one console script, one command per entry-point module.

`peftlab train ARGS` runs what `python -m research.train ARGS` runs (the module as `__main__`, through
runpy), so Hydra's overrides, --help and multiruns, and Lightning's DDP re-launch (which starts
`python -m <that module> ARGS` again for each extra process) behave the same both ways. A command's module is
imported only when the command runs: `peftlab --help` loads no torch, and a module this version lacks fails
its own command only.
"""

from __future__ import annotations

import argparse
import importlib.util
import runpy
import sys

from research import ours

COMMANDS = {  # command -> (module run as __main__, one line for `peftlab --help`)
    "train": ("research.train", "fine-tune: Hydra overrides, e.g. method=lora sweep=seeds"),
    "evaluate": ("research.evaluate", "score a base model, or a run's weights: run_dir=outputs/..."),
    "study": ("research.study", "a comparison protocol: conf/study/<name>.yaml, e.g. peftlab study smoke"),
    "compare": ("research.compare", "tables and plots over run folders (comparison.md/.csv/.html)"),
    "bench": ("research.bench", "time and memory per method vs plain PyTorch and HF Trainer"),
    "infer": ("research.infer", "answer prompts as a run was trained: run_dir=outputs/... prompt=..."),
    "merge": ("research.merge", "a run as a plain transformers model: run_dir=outputs/... out=<folder>"),
}


def parser() -> argparse.ArgumentParser:
    """Only for `peftlab --help` and usage errors: a command's own arguments are never parsed here."""
    top = argparse.ArgumentParser(
        prog="peftlab",
        description="Parameter-efficient fine-tuning research: Hydra + Lightning + peft.",
        epilog="`peftlab <command> ARGS` runs `python -m research.<command> ARGS`; "
        "`peftlab <command> --help` shows its options.",
    )
    commands = top.add_subparsers(title="commands", metavar="<command>", required=True)
    for name, (_, summary) in COMMANDS.items():
        commands.add_parser(name, help=summary)
    return top


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if problem := ours.clash():
        sys.exit(f"peftlab: {problem}")
    if not args or args[0] not in COMMANDS:
        parser().parse_args(args)  # prints the help, or the usage error, and exits
    command, *rest = args
    module = COMMANDS[command][0]
    if importlib.util.find_spec(module) is None:
        sys.exit(f"peftlab {command}: this version of peftlab has no {module} module")
    saved, sys.argv = sys.argv, [module, *rest]  # runpy sets argv[0] to the module's file, as `python -m` does
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
