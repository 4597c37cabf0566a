"""How long the command line takes to answer before any model loads: `--help` and a config error.

Each command runs in a fresh Python process (the interpreter, Hydra composition and our config check,
no torch: the entry points import the heavy modules only after the config is checked); the best of a few
runs is reported, since a shared machine only ever adds time."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

COMMANDS = {  # name -> arguments after `python -m`, and the exit status that command must end with
    "peftlab --help": (["research.cli", "--help"], 0),
    "train --help": (["research.train", "--help"], 0),
    "config error": (["research.train", "method.lr=-1"], 1),
}


def measure(repeats: int = 3) -> dict[str, Any]:
    """Best-of-`repeats` wall seconds per command; a command that ends otherwise than expected is an error."""
    seconds: dict[str, float] = {}
    for name, (args, status) in COMMANDS.items():
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            if proc.returncode != status:
                return {"error": f"{name}: exit {proc.returncode}, expected {status}: {proc.stderr.strip()[-200:]}"}
        seconds[name] = min(times)
    return {"seconds": seconds, "repeats": repeats}
