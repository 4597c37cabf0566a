"""Evaluate without training:  python -m research.evaluate [overrides] [run_dir=outputs/.../<run>]

`run_dir=null` scores the base model zero-shot (metrics `zero_shot/*`); a research.train run directory
scores its saved `weights/` (metrics `test/*`) under that run's own model and method configs, so the
weights always meet the architecture they were trained in. Either way on `split` of the composed data,
writing run.json and examples.jsonl to this job's own output directory, as research.train does.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file

from research.configs import config_dir
from research.methods.base import FineTuneModule, count_parameters
from research.tracking import RunRecord, memory, read_record
from research.tracking.summary import run_table
from research.train import _write_examples, build


def evaluate(cfg: DictConfig) -> RunRecord:
    out_dir = Path(cfg.paths.output_dir)
    if cfg.run_dir:
        cfg = with_run_config(cfg, Path(cfg.run_dir))
    method = cfg.method.name if cfg.run_dir else "zero_shot"
    record = RunRecord.start(OmegaConf.to_container(cfg, resolve=True), method, cfg.model.name, cfg.data.name)
    memory.reset_peak()
    with record.recorded(out_dir):
        pl.seed_everything(cfg.seed, workers=True)
        module, datamodule = build(cfg)
        if cfg.run_dir:
            load_weights(module, Path(cfg.run_dir) / "weights")
            record.artifacts = {"weights_dir": str(Path(cfg.run_dir) / "weights")}
        module.eval_prefix = "test" if cfg.run_dir else "zero_shot"
        record.params = count_parameters(module.model)
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=False, callbacks=[])
        started = time.perf_counter()
        trainer.test(module, dataloaders=datamodule.loader(cfg.split, datamodule.eval_batch_size), verbose=False)
        record.timing["eval_s"] = time.perf_counter() - started
        record.metrics, record.memory = dict(module.results), memory.peak()
        _write_examples(out_dir, module.examples, [])
    print(run_table(record.__dict__))
    return record


def with_run_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The run's model and method replace the composed ones: they define what its weights fit."""
    saved = read_record(run_dir)
    if saved is None:
        raise FileNotFoundError(f"run_dir={str(run_dir)!r} holds no run.json: is it a research.train output?")
    if saved["status"] != "completed" or not (run_dir / "weights").is_dir():
        raise ValueError(f"run_dir={str(run_dir)!r} is {saved['status']!r} and has no weights/ to evaluate")
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.model, cfg.method = saved["config"]["model"], saved["config"]["method"]
    return cfg


def load_weights(module: FineTuneModule, directory: Path) -> None:
    """Saved tensors into the freshly built strategy: a peft adapter through peft; anything else (full
    `save_pretrained` shards, selective or bottleneck-adapter safetensors) by parameter name."""
    if isinstance(module.model, PeftModel):
        state = load_file(str(directory / "adapter_model.safetensors"))
        unexpected = set_peft_model_state_dict(module.model, state).unexpected_keys
    else:
        state = {k: v for f in sorted(directory.glob("*.safetensors")) for k, v in load_file(str(f)).items()}
        unexpected = module.model.load_state_dict(state, strict=False).unexpected_keys
    if not state:
        raise FileNotFoundError(f"{directory}: no safetensors weights found")
    if unexpected:
        raise ValueError(f"{directory}: tensors that this model does not have, e.g. {sorted(unexpected)[:5]}")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
