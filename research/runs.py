"""A finished run, rebuilt from its record: the config it was trained under (plus any overrides), its
base model built exactly as the run built it, and its weights loaded by the method that wrote them
(named in run.json). `evaluate`, `infer` and `merge` all start here; nothing guesses a method from
the files on disk."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.configs import build_node
from research.methods.base import Context, Method
from research.models import ModelSpec, build_tokenizer
from research.models.loading import build_base, fingerprint
from research.schema import check_config
from research.tracking import read_record

WEIGHTS = "weights"


@dataclass
class LoadedRun:
    cfg: DictConfig
    spec: ModelSpec
    method: Method
    tokenizer: PreTrainedTokenizerBase
    model: nn.Module


def run_config(run_dir: Path, overrides: Sequence[str] = ()) -> DictConfig:
    """The run's own composed config, with `key=value` overrides (e.g. model.name_or_path=... when the
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
    cfg = OmegaConf.create(record["config"])
    try:
        cfg.merge_with_dotlist(list(overrides))
    except Exception as err:  # omegaconf's grammar errors name the override only
        raise ValueError(f"override {list(overrides)}: {err}") from None
    check_config(cfg)  # an override is checked as on the command line of `train`
    return cfg


def check_same_base(run_dir: Path, found: str, spec: ModelSpec) -> None:
    """Weights fit only the base they were trained on: refuse another one (another size, architecture,
    random seed, or a moved checkpoint that is not the same), naming both."""
    record = read_record(run_dir) or {}
    trained_on = record.get("artifacts", {}).get("base_fingerprint")
    if trained_on and trained_on != found:
        model = record.get("config", {}).get("model", {})
        raise ValueError(
            f"the weights in {run_dir / WEIGHTS} were trained on another base: model {model.get('name')!r} "
            f"({model.get('name_or_path') or 'built from config'}, seed {record.get('seed')}, fingerprint "
            f"{trained_on}); this base is model {spec.name!r} ({spec.name_or_path or 'built from config'}, "
            f"fingerprint {found}). Load them onto the base they were trained on."
        )


def load_run(run_dir: Path, overrides: Sequence[str] = ()) -> LoadedRun:
    cfg = run_config(run_dir, overrides)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    method: Method = build_node(cfg.method)
    tokenizer = build_tokenizer(spec)
    base = build_base(spec, tokenizer, method, seed=cfg.seed)
    check_same_base(run_dir, fingerprint(base), spec)
    model = method.load(base, run_dir / WEIGHTS, Context(spec.task, tokenizer))
    return LoadedRun(cfg, spec, method, tokenizer, model)
