"""The paths a newcomer walks, through the real command line where that is what a user types: a misspelled
sweep is refused with the list; sweep job folders and the end-of-sweep table name the swept values; every
command says where it wrote; `merge` exports a plain transformers model (LoRA, QLoRA, a GGUF base) or refuses
with the reason; infer finds a moved base by override; and library notices nobody can act on stay off the
console while our own warnings stay on it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from omegaconf import OmegaConf, open_dict, read_write
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from research import infer, merge
from research.models import ModelSpec, build_tokenizer
from research.models.loading import build_base
from research.pipeline import build, evaluate, rebuild
from research.pipeline.serving import answer, prompts
from research.runs import read_record, sweep_names
from tests.helpers import (
    CONF,
    DIALOGSUM,
    SMOLLM2,
    TEXTS,
    cli_env,
    compose_cfg,
    evaluate_cfg,
    needs_assets,
    small,
    train_run,
)

ENV = cli_env()
# Library notices nobody running this framework can act on (research/views/quiet.py), and the eval-mode warning
# Lightning gave for a base read with from_pretrained (fixed in research/loop/module.py).
NOISE = (
    "gemm_4bit_forward",  # bitsandbytes, at import
    "pip install kernels",
    "💡 Tip",  # Lightning's advertisements
    "litlogger",
    "litmodels",
    "module(s) in eval mode",
    "is_gradient_checkpointing",  # transformers, through peft
    "Using default tokenizer",  # rouge_score, through absl
    "LeafSpec",  # torch, through Lightning
    "estimate number of stepping batches",
    "vocabulary was not modified",  # peft, saving an adapter of a GGUF base
)
TINY_RUN = small("trainer.max_steps=1", "logger=none", "callbacks=none", "data.eval_limit=2", "data.test_limit=2")


def cli(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600
    )


def assert_quiet(proc: subprocess.CompletedProcess) -> None:
    shown = proc.stdout + proc.stderr
    assert not [n for n in NOISE if n in shown], shown[-4000:]


# --- sweeps ------------------------------------------------------------------------------------------------


def test_a_misspelled_sweep_is_refused_with_the_available_ones():
    with pytest.raises(MissingConfigException, match="Could not find 'sweep/lora_ranks'") as err:
        compose_cfg("sweep=lora_ranks")
    assert "lora_rank\n" in str(err.value) and "prompt_length" in str(err.value)


def test_a_misspelled_sweep_on_the_command_line_exits_nonzero_and_runs_nothing(tmp_path: Path):
    proc = cli("research.cli", "train", "sweep=lora_ranks", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Could not find 'sweep/lora_ranks'" in proc.stderr and "\tlora_rank\n" in proc.stderr, proc.stderr
    assert not (tmp_path / "outputs").exists()


MODEL_SIZE = "model.config={d_model:64,d_ff:128,d_kv:16,num_heads:4,num_layers:1,num_decoder_layers:1}"


@pytest.mark.parametrize(
    ("job_overrides", "folder"),
    [
        (["sweep=lora_rank", "method.peft_config.r=4"], "2_lora_r4"),
        (["sweep=methods", "method=adapter"], "2_adapter"),
        (["sweep=seeds", "seed=2"], "2_lora_seed2"),
        (["sweep=[seeds,lora_rank]", "seed=2", "method.peft_config.r=4"], "2_lora_seed2_r4"),
        (["sweep=prompt_length", "method.peft_config.num_virtual_tokens=20"], "2_prompt_tuning_num_virtual_tokens20"),
        (["sweep=model_size", MODEL_SIZE], "2_lora_d64x1"),
        (["sweep=[seeds,model_size]", "seed=2", MODEL_SIZE], "2_lora_d64x1_seed2"),
        (["sweep=lr_search", "method.lr=0.001"], "2_lora_lr0.001"),
        (["model=tiny_llama", "+trainer.limit_val_batches=0", "data.template=null"], "2_lora_tiny_llama_limit_val_batches0_templatenull"),
    ],
)  # fmt: skip
def test_every_sweep_names_its_job_folders_by_the_swept_values(job_overrides: list[str], folder: str):
    """Composed as Hydra composes job 2 of the sweep: with that job's overrides (and the resolver every command
    registers as it starts, which this test must not owe to a test that ran before it)."""
    sweep_names.register()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=job_overrides, return_hydra_config=True)
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.job.num = 2
    assert OmegaConf.select(cfg, "hydra.sweep.subdir") == folder


@pytest.mark.slow
def test_a_multirun_names_jobs_and_table_rows_by_the_swept_value_and_prints_where_it_wrote(tmp_path: Path):
    sweep = tmp_path / "sweep"
    args = ["-m", "method.peft_config.r=2,4", "zero_shot=false", *TINY_RUN, f"hydra.sweep.dir={sweep}"]
    proc = cli("research.train", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0_lora_r2", "1_lora_r4"]
    table = proc.stdout[proc.stdout.index(f"Sweep {sweep}") :].splitlines()
    assert [row.split()[0] for row in table[3:5]] == ["0_lora_r2", "1_lora_r4"]
    assert table[-1] == f"sweep folder: {sweep}"
    for job in ("0_lora_r2", "1_lora_r4"):
        assert f"run folder: {sweep / job}\nrun record: {sweep / job / 'run.json'}" in proc.stdout


def test_evaluate_prints_where_its_record_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    evaluate(evaluate_cfg("data.test_limit=2", "generation.max_new_tokens=2", f"paths.output_dir={tmp_path}"))
    assert capsys.readouterr().out.endswith(f"run folder: {tmp_path}\nrun record: {tmp_path / 'run.json'}\n")


# --- a base read from a folder (from_pretrained): train quietly, infer after the base moved ----------------


@pytest.fixture(scope="module")
def folder_base_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """The tiny Llama saved as a model folder and trained through the command line, its inputs cut short."""
    root = tmp_path_factory.mktemp("folder_base")
    cfg = compose_cfg("model=tiny_llama")
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    build_base(spec, build_tokenizer(spec), build(cfg)[0].method, seed=cfg.seed).save_pretrained(root / "base")
    run_dir = root / "run"
    args = ["model=tiny_llama", "model.pretrained=true", f"model.name_or_path={root / 'base'}"]
    args += ["data.max_source_length=16", *TINY_RUN, f"hydra.run.dir={run_dir}"]
    return cli("research.train", *args, cwd=root), run_dir, root / "base"


@pytest.mark.slow
def test_train_keeps_library_notices_off_the_console_and_our_warnings_on_it(folder_base_run):
    proc, run_dir, _ = folder_base_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_quiet(proc)
    assert "inputs longer than data.max_source_length=16 tokens were cut" in proc.stdout  # Hydra logs to stdout
    assert proc.stdout.endswith(f"run folder: {run_dir}\nrun record: {run_dir / 'run.json'}\n")


@pytest.mark.slow
def test_infer_says_when_the_base_moved_and_takes_its_new_place_as_an_override(folder_base_run, tmp_path: Path):
    _, run_dir, base = folder_base_run
    moved = tmp_path / "moved"
    shutil.move(base, moved)
    proc = cli("research.infer", f"run_dir={run_dir}", "prompt=hello", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"model.name_or_path='{base}' does not exist" in proc.stderr and "model.name_or_path=/path" in proc.stderr
    assert_quiet(proc)
    run = rebuild(run_dir, [f"model.name_or_path={moved}"])
    assert run.model.get_base_model().config.name_or_path == str(moved) and answer(run, TEXTS)

    # evaluate takes the new place too, and with no data given scores the run's own data and settings
    scored = tmp_path / "scored"
    proc = cli("research.evaluate", f"run_dir={run_dir}", f"model.name_or_path={moved}", "logger=none",
               f"hydra.run.dir={scored}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "scoring the run's own data: synthetic, split test" in proc.stdout
    record, trained = read_record(scored), read_record(run_dir)
    assert record["artifacts"]["data_from"] == "run" and record["config"]["data"] == trained["config"]["data"]
    assert record["metrics"]["test/loss"] == pytest.approx(trained["metrics"]["test/loss"], abs=1e-6)


# --- merge ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("merge_runs")
    llama = ["model=tiny_llama", "generation.max_new_tokens=12", "method.lr=0.01"]
    return {
        "lora": train_run(root / "lora", *llama),
        "qlora": train_run(root / "qlora", *llama, "method=qlora"),
        "prompt_tuning": train_run(root / "prompt_tuning", *llama, "method=prompt_tuning"),
    }


def merged_answers(out: Path, texts: list[str], max_new_tokens: int) -> list[str]:
    """Plain transformers on the merged folder, as its user would call it."""
    model, tokenizer = AutoModelForCausalLM.from_pretrained(out).eval(), AutoTokenizer.from_pretrained(out)
    replies = []
    for text in texts:
        enc = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False)
        replies.append(tokenizer.decode(ids[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return replies


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_merge_writes_a_plain_transformers_model_that_answers_as_the_run(
    runs: dict[str, Path], method: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    out = tmp_path / "merged"
    merge.main([f"run_dir={runs[method]}", f"out={out}"])
    assert capsys.readouterr().out == f"merged model and tokenizer written to {out}\n"
    assert not (out / "adapter_config.json").exists()
    weights = load_file(out / "model.safetensors")
    assert not [k for k in weights if "lora" in k or "base_layer" in k]
    assert {w.dtype for w in weights.values()} == {torch.float32}  # QLoRA: de-quantized
    assert "quantization_config" not in AutoModelForCausalLM.from_pretrained(out).config.to_dict()
    run = rebuild(runs[method])
    assert merged_answers(out, prompts(run, TEXTS), 12) == answer(run, TEXTS)


def test_merge_refuses_a_method_that_cannot_merge_in_one_line(runs: dict[str, Path], tmp_path: Path):
    with pytest.raises(SystemExit) as refused:
        merge.main([f"run_dir={runs['prompt_tuning']}", f"out={tmp_path / 'merged'}"])
    message = str(refused.value.code)
    assert message.startswith("merge: method 'prompt_tuning' learns virtual tokens") and "\n" not in message
    assert not (tmp_path / "merged").exists()


def test_merge_refuses_a_folder_that_holds_files(runs: dict[str, Path], tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit, match=f"merge: out='{tmp_path}' already exists and is not an empty folder"):
        merge.main([f"run_dir={runs['lora']}", f"out={tmp_path}"])
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_merge_and_infer_refuse_what_is_not_a_finished_run(tmp_path: Path):
    with pytest.raises(SystemExit, match="merge: run_dir=.* holds no run.json"):
        merge.main([f"run_dir={tmp_path}", f"out={tmp_path / 'out'}"])
    with pytest.raises(SystemExit, match="missing out="):
        merge.main([f"run_dir={tmp_path}"])
    with pytest.raises(SystemExit, match="infer: run_dir=.* holds no run.json"):
        infer.main([f"run_dir={tmp_path}", "prompt=hi"])


# --- the offline SmolLM2 (a GGUF base), as docs/serving.md walks it --------------------------------------------


@pytest.mark.integration
@needs_assets(SMOLLM2, DIALOGSUM)
def test_smollm2_gguf_run_trains_quietly_merges_to_plain_transformers_and_serves_with_its_chat_template(
    tmp_path: Path,
):
    run_dir, out = tmp_path / "run", tmp_path / "merged"
    args = ["experiment=dialogsum_smollm2", f"model.name_or_path={SMOLLM2}", f"data.path={DIALOGSUM}", "logger=none"]
    args += ["callbacks=none", "zero_shot=false", "test=false", "+trainer.limit_val_batches=0"]
    args += ["trainer.max_steps=1", "data.train_limit=2", "data.batch_size=2", "generation.max_new_tokens=6"]
    proc = cli("research.train", *args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_quiet(proc)

    proc = cli("research.merge", f"run_dir={run_dir}", f"out={out}", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.endswith(f"written to {out}\n"), proc.stderr[-3000:]
    assert_quiet(proc)
    assert AutoTokenizer.from_pretrained(out).chat_template, "the chat template travels with the merged model"

    run = rebuild(run_dir)
    served = prompts(run, TEXTS)
    assert served[0].startswith("<|im_start|>") and "Summarize the following conversation." in served[0]
    assert merged_answers(out, served, 6) == answer(run, TEXTS)
