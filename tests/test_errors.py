"""Bad configuration fails early with a message naming the field and what is allowed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.errors import MissingConfigException

from research.pipeline import build, train
from tests.helpers import cli_env, compose_cfg, small


def build_error(*overrides: str) -> str:
    with pytest.raises((ValueError, OSError)) as info:
        build(compose_cfg(*small(*overrides)))
    return str(info.value)


@pytest.mark.parametrize(
    ("override", "listed"),
    [
        ("method=lorax", ["lora", "prompt_tuning"]),
        ("model=t5_tiny", ["tiny_t5", "smollm2_135m"]),
        ("data=dialogsun", ["dialogsum", "sst2"]),
    ],
)
def test_unknown_group_choice_lists_the_available_ones(override: str, listed: list[str]):
    with pytest.raises(MissingConfigException) as info:
        compose_cfg(override)
    assert override.split("=")[1] in str(info.value)
    assert all(name in str(info.value) for name in listed)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["method=lora", "method.peft_config.r=0"], r"method\.peft_config\.r=0 must be an integer > 0"),
        (["method=lora", "method.peft_config.lora_alpha=-1"], r"method\.peft_config\.lora_alpha=-1 must be"),
        (
            ["method=lora", "method.peft_config.lora_dropout=1.5"],
            r"peft_config\.lora_dropout=1\.5 must be a finite number >= 0 and < 1",
        ),
        (["method=lora", "method.peft_config.target_modules=[]"], r"target_modules=\[\] adapts nothing"),
        (
            ["method=lora", "+method.peft_config.no_such_field=1"],
            r"method\.peft_config \(LoraConfig\): .*no_such_field",
        ),
        (["method=prompt_tuning", "method.peft_config.num_virtual_tokens=0"], r"num_virtual_tokens=0 must be"),
        (["method=lora", "+method.init_text=hello"], r"method\.init_text initialises a soft prompt"),
        (
            ["method=adapter", "method.variant=lightweight"],
            r"method\.variant='lightweight' is unknown; allowed: houlsby",
        ),
        (["method=adapter", "method.bottleneck_size=0"], r"method\.bottleneck_size=0 must be an integer > 0"),
        (["method=selective", "method.mode=random"], r"method\.mode='random' is unknown; allowed: bitfit, layers"),
        (["method=selective", "method.mode=pattern", "method.pattern=nothing_like_this"], r"matches no parameter"),
        (["method=full", "method.lr=0"], r"method\.lr=0 must be a finite number > 0"),
        (["model.task=regression"], r"model\.task='regression' is not supported; allowed: seq2seq, causal"),
        (["model.pretrained=true"], r"model\.pretrained=true needs model\.name_or_path"),
        (["data.template=poem"], r"data\.template='poem' is unknown; allowed: null, summarize"),
        (["data.format=parquet"], r"data\.format='parquet' is unknown; allowed: synthetic, jsonl"),
        (["data.batch_size=0"], r"data\.batch_size=0 must be an integer > 0"),
        (["data.train_limit=0"], r"data\.train_limit=0 must be an integer > 0 \(or null\)"),
        (["overwrite=maybe"], r"overwrite='maybe' is unknown; allowed: false, true"),
        (["data.truncation=drop"], r"data\.truncation='drop'; allowed: warn, error"),
        (
            ["data.truncation=error", "data.max_source_length=16"],
            r"inputs longer than data\.max_source_length=16 tokens were cut \(.*train: \d+ of \d+\); "
            r"raise data\.max_source_length or set data\.truncation=warn",
        ),
        (["optimizer._target_=torch.nn.Linear"], r"optimizer\._target_=Linear is not a torch\.optim\.Optimizer"),
        (["optimizer.weight_decay=-1"], r"optimizer\.weight_decay=-1 must be a finite number >= 0"),
        (["optimizer.betas=[0.9,1.5]"], r"optimizer\.betas\.1=1\.5 must be a finite number >= 0 and < 1"),
        (["+optimizer.lr=0.1"], r"optimizer\.lr: the learning rate is method\.lr"),
        (["optimizer.head_lr=0"], r"optimizer\.head_lr=0 must be a finite number > 0 \(or null\)"),
        (
            ["optimizer.head_lr=0.001"],
            r"optimizer\.head_lr=0\.001 is a classifier's task-head rate; model\.task=seq2seq",
        ),
        (["method=head"], r"method=head trains only a classifier's task head, and model\.task=seq2seq has none"),
        (
            ["scheduler.name=wobbly"],
            r"scheduler\.name='wobbly'; allowed \(transformers\.get_scheduler\): linear, cosine",
        ),
        (["scheduler.warmup_ratio=1.5"], r"scheduler\.warmup_ratio=1\.5 must be a finite number >= 0 and < 1"),
    ],
)
def test_bad_value_names_field_and_allowed(overrides: list[str], expected: str):
    assert re.search(expected, build_error(*overrides))


def test_target_module_not_in_model_lists_available_and_close_matches():
    message = build_error("method=lora", "method.peft_config.target_modules=[q_proj,v]")
    assert "method.peft_config.target_modules: ['q_proj'] not in the model" in message
    assert "close matches {'q_proj': ['q']}" in message or "'q'" in message
    assert "available linear modules: ['k', 'lm_head', 'o', 'q', 'v', 'wi_0', 'wi_1', 'wo']" in message


@pytest.mark.parametrize("model", ["tiny_t5", "tiny_llama"])
def test_bitfit_on_a_model_without_biases_says_why(model: str):
    message = build_error(f"model={model}", "method=bitfit")
    assert "method.mode=bitfit selected no parameter: this model has no biases" in message


def test_unreachable_model_suggests_a_local_path():
    message = build_error("model=flan_t5_small")  # HF_HUB_OFFLINE=1 in the tests: the hub is unreachable
    assert "cannot load model.name_or_path='google/flan-t5-small'" in message
    assert "model.name_or_path=/path/to/model" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["model.dtype=float16"],
            r"float16 with T5 .* overflows; use trainer\.precision=bf16-mixed on a GPU, or 32-true",
        ),
        (["trainer.precision=16-mixed"], r"float16 with T5"),
        (["trainer=gpu"], r"trainer\.accelerator=gpu but no CUDA GPU is visible"),
        (["trainer.precision=bf16-mixed"], r"trainer\.precision=bf16-mixed needs a CUDA GPU"),
        (["ckpt_path=/nonexistent/last.ckpt"], r"ckpt_path='/nonexistent/last.ckpt' does not exist"),
    ],
)
def test_gpu_only_and_unsafe_precision_fail_fast_on_cpu(overrides: list[str], expected: str):
    if torch.cuda.is_available():
        pytest.skip("these settings are valid on a CUDA machine")
    assert re.search(expected, build_error(*overrides))


def test_unknown_resume_mode_names_the_field(tmp_path: Path):
    with pytest.raises(ValueError, match=r"resume='yes'; allowed: false, auto"):
        train(compose_cfg(*small("resume=yes", f"paths.output_dir={tmp_path}")))


def test_unwritable_output_dir_fails_before_anything_loads(tmp_path: Path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match=r"paths\.output_dir='.*a_file/run' is not writable \(Not a directory\)"):
        train(compose_cfg(*small(f"paths.output_dir={blocker / 'run'}")))


@pytest.mark.parametrize(
    ("missing", "overrides", "extra"),
    [
        (["bitsandbytes"], ["model=tiny_llama", "method=qlora"], "qlora"),
        (["bitsandbytes"], ["optimizer._target_=bitsandbytes.optim.AdamW8bit"], "qlora"),
        (["tensorboard", "tensorboardX"], ["logger=tensorboard"], "tensorboard"),  # was: CSV instead, after loading
    ],
)
def test_a_feature_without_its_extra_names_the_extra_before_the_model_loads(
    monkeypatch: pytest.MonkeyPatch, missing: list[str], overrides: list[str], extra: str
):
    for module in missing:
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec gives None
    assert f'pip install "peftlab[{extra}]"' in build_error(*overrides)


@pytest.mark.parametrize(
    ("override", "plugin", "extra"),
    [
        ("sweep=lr_search", "optuna", "search"),
        ("hydra/sweeper=peftlab_optuna", "optuna", "search"),
        ("hydra/launcher=slurm", "hydra_plugins.hydra_submitit_launcher", "slurm"),
    ],
)
def test_a_hydra_plugin_without_its_extra_names_the_extra(tmp_path: Path, override: str, plugin: str, extra: str):
    """Hydra fails the composition itself without the plugin, naming neither package nor extra: the command
    looks for it first."""
    code = (
        f"import sys, runpy; sys.modules[{plugin!r}] = None; sys.argv = ['research.train', {override!r}, '-m']; "
        "runpy.run_module('research.train', run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True, text=True)
    assert proc.returncode == 1
    assert f'pip install "peftlab[{extra}]"' in proc.stderr and override.split("=")[0] in proc.stderr, proc.stderr


def test_resuming_under_a_changed_config_is_refused_with_the_diff(tmp_path: Path):
    first = small("trainer.max_steps=2", "logger=none", "zero_shot=false", "test=false")
    train(compose_cfg(*first, f"paths.output_dir={tmp_path}"))
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    elsewhere = f"paths.output_dir={tmp_path / 'resumed'}"
    build(compose_cfg(*first, elsewhere, f"ckpt_path={ckpt}"))  # same config: accepted
    message = build_error(*first, elsewhere, "method.peft_config.r=4", f"ckpt_path={ckpt}")
    assert "was written under another configuration" in message
    assert "method.peft_config.r: 8 -> 4" in message
