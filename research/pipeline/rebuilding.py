"""A finished run, rebuilt from its record: the config it was trained under (plus any overrides), its
base model built exactly as the run built it, and its weights loaded by the method that wrote them
(named in run.json). `evaluate` reads the run's config here; `infer` and `merge` start from `rebuild`;
nothing guesses a method from the files on disk."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException
from omegaconf import DictConfig, OmegaConf
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.config import build_node
from research.config.schema import check_config, check_generation
from research.methods.base import Context, Method
from research.models import ModelSpec, build_tokenizer
from research.pipeline.building import WEIGHTS, model_of
from research.runs import read_record
from research.runs.checkpoints import check_weights

_ABSENT = object()


@dataclass
class LoadedRun:
    cfg: DictConfig
    spec: ModelSpec
    method: Method
    tokenizer: PreTrainedTokenizerBase
    model: nn.Module
    adapter: str | None = None  # its peft adapter's name when several runs share `model` (infer.s load_runs)


def run_config(run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The run's own composed config, with overrides in Hydra's syntax (e.g. model.name_or_path=... when the
    base moved, generation.max_new_tokens=...)."""
    record = read_record(run_dir)
    if record is None:
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} holds no run.json: is it a training run's folder?")
    if record.get("status") != "completed":
        raise ValueError(
            f"run_dir={str(run_dir)!r} is {record.get('status')!r}, not 'completed' ({record.get('error')}): "
            "only a completed run's weights are loaded"
        )
    if not (run_dir / WEIGHTS).is_dir():
        raise FileNotFoundError(
            f"run_dir={str(run_dir)!r} has no {WEIGHTS}/ folder (moved or deleted?): nothing to load"
        )
    check_weights(run_dir / WEIGHTS)  # before the base is built: a corrupt file fails now, named
    cfg = OmegaConf.create(record["config"])
    apply_overrides(cfg, overrides)
    check_config(cfg)  # an override is checked as on the command line of `train`
    check_generation(cfg.generation)
    return cfg


def apply_overrides(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """Overrides as `train` reads them (Hydra's grammar), onto a run's recorded config: `key=value` changes a
    key the run has (a misspelled one is refused, naming the closest), `+key=value` adds one. Config groups
    stay as the run chose them: its weights fit that model and method."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except OverrideParseException as err:
        raise ValueError(" ".join(str(err).split("\n")[:2])) from None
    for override in parsed:
        key, line = override.key_or_group, override.input_line
        if override.is_sweep_override() or override.is_delete():
            raise ValueError(f"{line}: a run is rebuilt from one config; sweeps and deletions do not apply")
        value, current = override.value(), OmegaConf.select(cfg, key, default=_ABSENT)
        if isinstance(current, DictConfig) and not isinstance(value, dict):
            raise ValueError(
                f"{line}: {key} is the run's config group, fixed by its weights; override its fields instead "
                f"({key}.<field>=...)"
            )
        if current is _ABSENT and not (override.is_add() or override.is_force_add()):
            raise ValueError(f"{line}: {_missing(cfg, key)}; add a new key with +{line}")
        OmegaConf.update(cfg, key, value, merge=True, force_add=True)


def _missing(cfg: DictConfig, key: str) -> str:
    """Where `key` leaves the config, with the closest names there."""
    node, path = cfg, []
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            where = ".".join(path) or "the run's config"
            names = list(node) if isinstance(node, DictConfig) else []
            close = difflib.get_close_matches(part, names, n=3)
            return f"{where} has no key {part!r}" + (f" (did you mean {', '.join(close)}?)" if close else "")
        node, path = node[part], [*path, part]
    raise AssertionError(f"{key} exists")


def rebuild(run_dir: Path, overrides: Sequence[str] = ()) -> LoadedRun:
    """A completed run as it was trained: its config (plus `overrides`), its base built exactly as the run
    built it, and its weights loaded by the method named in its record."""
    cfg = run_config(run_dir, overrides)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    method: Method = build_node(cfg.method)
    tokenizer = build_tokenizer(spec)
    model, _ = model_of(spec, method, tokenizer, cfg.seed, Context(spec.task, tokenizer), run_dir / WEIGHTS)
    return LoadedRun(cfg, spec, method, tokenizer, model)
