"""Hostile input, as a new user meets it every week, through the real command line.

Every case runs an entry point in a subprocess (`python -m research.<command> ...`, on the tiny T5) and
asserts what the user sees and what is left on disk: (a) a non-zero exit status; (b) a message naming the
field, or `file:line`, and what is allowed; (c) no traceback (HYDRA_FULL_ERROR=1 keeps one: checked once);
(d) no run.json claiming `completed` (one written before the failure says `failed`, with the error), no
weights or checkpoint written, and the trained runs that evaluate, infer and merge read left untouched.

Each failure is classed EARLY (before the base model starts loading) or LATE, by the line
`loading the base model` that research/models/loading.py logs when the load starts, and timed. EARLY ones
are split further: CONFIG (refused before torch was even imported: about a second) or BUILD (after the
heavy imports). A sitecustomize on the subprocesses' PYTHONPATH turns INFO logging on (`infer` and `merge`
configure none) and says at exit whether torch was imported. The table of cases and the counts are
printed when the module ends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

TINY = (
    "model=tiny_t5",
    "data.num_examples=40",
    "data.eval_limit=4",
    "data.test_limit=4",
    "generation.max_new_tokens=8",
    "trainer.max_epochs=1",
    "logger=csv",
)
MARKER = "loading the base model"
HEAVY = "[hostile] torch imported: True"
SITECUSTOMIZE = """import atexit
import logging
import sys

logging.basicConfig(level=logging.INFO)
atexit.register(lambda: print(f"[hostile] torch imported: {'torch' in sys.modules}", file=sys.stderr))
"""
HYDRA_COMMANDS = ("train", "evaluate")  # Hydra apps: they get TINY and hydra.run.dir
GOOD = [{"input": f"say {w}", "target": w} for w in ("yes", "no", "maybe")]
PAYLOAD_RAN = "[hostile] a pickle payload ran"


class Payload:
    """What a stranger's checkpoint may carry: a pickle that runs code when it is loaded."""

    def __reduce__(self) -> tuple[Any, ...]:
        return print, (PAYLOAD_RAN,)


@dataclass(frozen=True)
class Case:
    """One bad command line. `{data}` is the folder of data files below, `{out}` a fresh folder, and
    `{lora}`, `{prompt}`, `{failed}`, `{no_weights}`, `{no_record}`, `{corrupt}`, `{pickled}` the runs of the
    `runs` fixture."""

    id: str
    command: str
    args: tuple[str, ...]
    message: str  # a regex the user must see on stderr
    late: bool = False  # expected to fail only after the base model started loading
    gpu_only: bool = False  # a valid setting where a CUDA GPU is visible


def case(id: str, command: str, args: str, message: str, **kw: Any) -> Case:
    """`args` as typed on the command line (no argument here holds a space)."""
    return Case(id, command, tuple(args.split()), message, **kw)


@dataclass(frozen=True)
class Outcome:
    id: str
    command: str
    stage: str  # CONFIG | BUILD (both EARLY) | LATE: see Result.stage
    seconds: float
    record: str  # the status in the command's run.json, "-" when none was written


OUTCOMES: list[Outcome] = []

TRAIN_CASES = [
    # numbers: non-finite, non-positive, out of range, wrong type
    case("lr_nan", "train", "method.lr=nan", r"method\.lr=nan must be a finite number > 0"),
    case("lr_inf", "train", "method.lr=inf", r"method\.lr=inf must be a finite number > 0"),
    case("lr_zero", "train", "method.lr=0", r"method\.lr=0 must be a finite number > 0"),
    case("lr_negative", "train", "method.lr=-1", r"method\.lr=-1 must be a finite number > 0"),
    case("lr_text", "train", "method.lr=abc", r"method\.lr='abc' must be a finite number > 0"),
    case("lr_missing_interpolation", "train", "method.lr=${{optimizer.lrr}}", r"'optimizer\.lrr' not found\s+full_key: method\.lr"),
    case("zero_epochs", "train", "trainer.max_epochs=0", r"trainer\.max_epochs=0, trainer\.max_steps=-1 train nothing; set one > 0"),
    case("zero_steps", "train", "trainer.max_steps=0", r"trainer\.max_steps=0 train nothing; set one > 0"),
    case("endless_run", "train", "trainer.max_epochs=-1", r"trainer\.max_epochs=-1 with trainer\.max_steps=-1 never ends; set one > 0"),
    case("warmup_over_max_steps", "train", "trainer.max_steps=5 scheduler.warmup_steps=10", r"scheduler\.warmup_steps=10 is not shorter than the run \(trainer\.max_steps=5\)"),
    case("warmup_over_epochs", "train", "scheduler.warmup_steps=1000", r"scheduler\.warmup_steps=1000 is not shorter than the run \(\d+ optimizer steps\)", late=True),
    case("warmup_ratio_whole_run", "train", "scheduler.warmup_ratio=1", r"scheduler\.warmup_ratio=1 must be a finite number >= 0 and < 1"),
    case("weight_decay_negative", "train", "optimizer.weight_decay=-0.1", r"optimizer\.weight_decay=-0\.1 must be a finite number >= 0"),
    case("beta_one", "train", "optimizer.betas=[0.9,1.0]", r"optimizer\.betas\.1=1\.0 must be a finite number >= 0 and < 1"),
    case("eps_zero", "train", "optimizer.eps=0", r"optimizer\.eps=0 must be a finite number > 0"),
    case("test_limit_negative", "train", "data.test_limit=-4", r"data\.test_limit=-4 must be an integer > 0 \(or null\)"),
    case("train_limit_zero", "train", "data.train_limit=0", r"data\.train_limit=0 must be an integer > 0 \(or null\)"),
    case("max_new_tokens_zero", "train", "generation.max_new_tokens=0", r"generation\.max_new_tokens=0 must be an integer > 0"),
    case("max_new_tokens_negative", "train", "generation.max_new_tokens=-3", r"generation\.max_new_tokens=-3 must be an integer > 0"),
    case("batch_size_fraction", "train", "data.batch_size=0.5", r"data\.batch_size=0\.5 must be an integer > 0"),
    case("rank_text", "train", "method.peft_config.r=abc", r"method\.peft_config\.r='abc' must be an integer > 0"),
    case("several_at_once", "train", "method.lr=0 optimizer.eps=-1", r"method\.lr=0 must be .*; optimizer\.eps=-1 must be"),
    # names: unknown choices list the available ones, a misspelled key is refused
    case("unknown_method", "train", "method=lorax", r"Could not find 'method/lorax'\s+Available options in 'method':.*\blora\b"),
    case("unknown_model", "train", "model=t5_tiny", r"Could not find 'model/t5_tiny'\s+Available options in 'model':.*\btiny_t5\b"),
    case("unknown_data", "train", "data=dialogsun", r"Could not find 'data/dialogsun'\s+Available options in 'data':.*\bdialogsum\b"),
    case("unknown_sweep", "train", "sweep=lora_ranks", r"Could not find 'sweep/lora_ranks'\s+Available options in 'sweep':.*\blora_rank\b"),
    case("unknown_logger", "train", "logger=wandbb", r"Could not find 'logger/wandbb'\s+Available options in 'logger':.*\bwandb\b"),
    case("misspelled_key", "train", "trainer.max_epoch=3", r"Could not override 'trainer\.max_epoch'..*Key 'max_epoch' is not in struct"),
    # method settings checked when the method is built (before the model) or injected (after)
    case("empty_target_modules", "train", "method.peft_config.target_modules=[]", r"method\.peft_config\.target_modules=\[\] adapts nothing; list module names, or null"),
    case("target_module_not_in_model", "train", "method.peft_config.target_modules=[q_proj]", r"target_modules: \['q_proj'\] not in the model; .*available linear modules: \['k', 'lm_head', 'o', 'q', 'v'"),
    case("added_trainer_argument", "train", "+trainer.max_epoch=3", r"trainer\.max_epoch is not an argument of pytorch_lightning\.Trainer \(did you mean max_epochs or min_epochs\?\); it takes: accelerator, .*max_epochs"),
    case("added_optimizer_argument", "train", "+optimizer.momentum=0.9", r"optimizer\.momentum is not an argument of torch\.optim\.AdamW; it takes: params, lr, betas, eps, weight_decay"),
    # data files
    case("not_utf8", "train", "data=jsonl data.path={data}/latin1.jsonl", r"latin1\.jsonl:4: not UTF-8 \(byte 0xe9 at column \d+\); save the file as UTF-8"),
    case("not_json", "train", "data=jsonl data.path={data}/notjson.jsonl", r"notjson\.jsonl:4: not valid JSON \(Expecting value at column \d+\)"),
    case("missing_field", "train", "data=jsonl data.path={data}/missing.jsonl", r"missing\.jsonl:4: field 'target' is missing; data\.target_field names a field of every line \(this line has: input\)"),
    case("null_field", "train", "data=jsonl data.path={data}/null.jsonl", r"null\.jsonl:4: field 'target' is null; data\.target_field names a string field of every line"),
    case("number_field", "train", "data=jsonl data.path={data}/number.jsonl", r"number\.jsonl:4: field 'input' is a number \(5\), not a string; data\.input_field"),
    case("label_unknown_name", "train", "model=tiny_bert data=jsonl data.path={data}/labels.jsonl data.target_field=null data.label_field=label data.label_names=[negative,positive]", r"labels\.jsonl:2: label field 'label' is a string \('great'\); allowed: negative, positive \(data\.label_names\) or their index 0\.\.1"),
    case("label_not_integer", "train", "model=tiny_bert data=jsonl data.path={data}/fraction.jsonl data.target_field=null data.label_field=label", r"fraction\.jsonl:2: label field 'label' is a number \(1\.5\); labels are class indices 0, 1, \.\.\."),
    case("empty_split", "train", "data=jsonl data.path={data}/empty.jsonl", r"empty\.jsonl:1: the train split is empty: data\.path names a file with no examples"),
    case("json_array_as_jsonl", "train", "data=jsonl data.path={data}/array.jsonl", r"array\.jsonl:1: one JSON array, not JSON lines \(an object per line\); read it with data\.format=json"),
    case("data_path_missing", "train", "data=jsonl data.path={data}/nope.jsonl", r"data\.path='.*nope\.jsonl' does not exist"),
    case("too_few_synthetic", "train", "data.num_examples=2", r"the train split is empty: data\.num_examples=2 .*; set data\.num_examples >= 3"),
    # the base model
    case("model_path_missing", "train", "model.pretrained=true model.name_or_path={data}/no_model", r"model\.name_or_path='.*no_model' does not exist"),
    case("model_folder_without_config", "train", "model.pretrained=true model.name_or_path={data}/no_config", r"model\.name_or_path='.*no_config' holds no config\.json: not a transformers model folder"),
    case("gguf_file_not_there", "train", "model.pretrained=true model.name_or_path={data}/gguf model.gguf_file=c.gguf", r"model\.gguf_file='c\.gguf' is not in .*gguf; \.gguf files there: \['a\.gguf', 'b\.gguf'\]"),
    case("hub_unreachable_offline", "train", "model=flan_t5_small", r"cannot load model\.name_or_path='google/flan-t5-small' .*Pass a local directory \(model\.name_or_path=/path/to/model\)"),
    case("checkpoint_missing", "train", "ckpt_path={data}/last.ckpt", r"ckpt_path='.*last\.ckpt' does not exist"),
    case("checkpoint_pickle_payload", "train", "ckpt_path={data}/payload.ckpt", r"ckpt_path='.*payload\.ckpt' carries more than tensors \(Unsupported global: GLOBAL print.*\): refused unloaded"),
    case("data_path_not_set", "train", "data=jsonl", r"data\.path is required and not set; it takes a local data file .* data\.path=null reads data\.hub_id"),
    case("target_modules_bare_string", "train", "method.peft_config.target_modules=q", r"target_modules='q' matches no module: a string is a regular expression over whole module paths .*target_modules=\[q\]. Available linear modules: \['k', 'lm_head', 'o', 'q', 'v'"),
    # GPU-only settings on a CPU
    case("trainer_gpu", "train", "trainer=gpu", r"trainer\.accelerator=gpu but no CUDA GPU is visible; use trainer=default \(CPU\)", gpu_only=True),
    case("bf16_precision", "train", "trainer.precision=bf16-mixed", r"trainer\.precision=bf16-mixed needs a CUDA GPU with bfloat16; on CPU use 32-true", gpu_only=True),
    case("paged_optimizer", "train", "optimizer._target_=bitsandbytes.optim.PagedAdamW8bit", r"optimizer\._target_=PagedAdamW8bit needs a GPU; on CPU use AdamW8bit or AdamW", gpu_only=True),
    case("fsdp", "train", "trainer=fsdp", r"trainer\.accelerator=gpu but no CUDA GPU is visible", gpu_only=True),
]  # fmt: skip

RUN_CASES = [
    case("evaluate_folder_without_record", "evaluate", "run_dir={no_record}", r"run_dir='.*no_record' holds no run\.json: is it a training run's folder\?"),
    case("evaluate_failed_run", "evaluate", "run_dir={failed}", r"run_dir='.*failed' is 'failed', not 'completed' \(.*not UTF-8.*\): only a completed run's weights"),
    case("evaluate_weights_missing", "evaluate", "run_dir={no_weights}", r"run_dir='.*no_weights' has no weights/ folder \(moved or deleted\?\)"),
    case("evaluate_unknown_split", "evaluate", "run_dir={lora} split=dev", r"split='dev' is unknown; allowed: train, validation, test"),
    case("infer_folder_without_record", "infer", "run_dir={no_record} prompt=hello", r"infer: run_dir='.*no_record' holds no run\.json"),
    case("infer_without_prompt", "infer", "run_dir={lora}", r"usage: peftlab infer run_dir=<run folder> .*prompt="),
    case("infer_max_new_tokens_zero", "infer", "run_dir={lora} prompt=hello generation.max_new_tokens=0", r"infer: generation\.max_new_tokens=0 must be an integer > 0"),
    case("infer_other_seed", "infer", "run_dir={lora} prompt=hello seed=7", r"trained on another base: model 'tiny_t5' \(built from config, seed 42, fingerprint \w+\); this base is model 'tiny_t5' \(built from config, fingerprint \w+\)", late=True),
    case("merge_other_size", "merge", "run_dir={lora} out={out}/merged model.config.d_model=64", r"merge: the weights in .*lora/weights were trained on another base: model 'tiny_t5' .*; this base is model 'tiny_t5'", late=True),
    case("merge_prompt_tuning", "merge", "run_dir={prompt} out={out}/merged", r"merge: method 'prompt_tuning' learns virtual tokens, not weights: there is nothing to fold into the base", late=True),
    case("merge_without_out", "merge", "run_dir={lora}", r"usage: peftlab merge run_dir=<run folder> out=<new folder>.*missing \[?'?out"),
    case("compare_folder_without_runs", "compare", "{no_record}", r"research\.compare: no run\.json under .*no_record"),
    case("compare_missing_folder", "compare", "{out}/nowhere", r"research\.compare: no such folder: .*nowhere"),
    case("compare_unknown_metric", "compare", "{lora} --metric test/nosuch", r"research\.compare: --metric test/nosuch is not a metric of these runs; they have: .*val/loss"),
    case("compare_unknown_also", "compare", "{lora} --also val/los --decide-metric val/rouge", r"--also val/los is not a metric of these runs \(did you mean val/loss.*; --decide-metric val/rouge is not a metric"),
    case("evaluate_corrupt_weights", "evaluate", "run_dir={corrupt}", r"corrupt/weights/adapter_model\.safetensors is not a readable safetensors file \(.*header"),
    case("infer_corrupt_weights", "infer", "run_dir={corrupt} prompt=hello", r"infer: .*corrupt/weights/adapter_model\.safetensors is not a readable safetensors file"),
    case("evaluate_pickled_weights", "evaluate", "run_dir={pickled}", r"pickled/weights/adapter_model\.bin: carries more than tensors \(Unsupported global: GLOBAL print.*\): refused unloaded"),
    case("infer_pickled_weights", "infer", "run_dir={pickled} prompt=hello", r"infer: .*pickled/weights/adapter_model\.bin: carries more than tensors"),
    case("infer_misspelled_generation_option", "infer", "run_dir={lora} prompt=hello +generation.num_beamz=2", r"infer: generation\.num_beamz is not a generation option of transformers \(did you mean num_beams"),
]  # fmt: skip


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def stage(self) -> str:
        """CONFIG: refused before torch was imported; BUILD: after the heavy imports, before the base model
        started loading (both EARLY); LATE: after."""
        if MARKER in self.stdout or MARKER in self.stderr:
            return "LATE"
        return "BUILD" if HEAVY in self.stderr else "CONFIG"


def cli(command: str, args: list[str], cwd: Path, env: dict[str, str]) -> Result:
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"research.{command}", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - started)


def start(command: str, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", f"research.{command}", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The worktree's package first; INFO logging in every subprocess (see the module docstring)."""
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    environ = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(site)]),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "WANDB_SILENT": "true",
    }


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Data files with one bad line after three good ones, and model folders that are not models."""
    root = tmp_path_factory.mktemp("data")
    good = jsonl(GOOD)
    (root / "good.jsonl").write_text(good)
    (root / "latin1.jsonl").write_bytes(good.encode() + b'{"input": "caf\xe9", "target": "x"}\n')
    (root / "notjson.jsonl").write_text(good + '{"input": "x", "target": }\n')
    (root / "missing.jsonl").write_text(good + jsonl([{"input": "x"}]))
    (root / "null.jsonl").write_text(good + jsonl([{"input": "x", "target": None}]))
    (root / "number.jsonl").write_text(good + jsonl([{"input": 5, "target": "y"}]))
    (root / "labels.jsonl").write_text(jsonl([{"input": "fine", "label": 1}, {"input": "bad", "label": "great"}]))
    (root / "fraction.jsonl").write_text(jsonl([{"input": "fine", "label": 1}, {"input": "bad", "label": 1.5}]))
    (root / "empty.jsonl").write_text("")
    (root / "array.jsonl").write_text(json.dumps(GOOD) + "\n")
    (root / "no_config").mkdir()
    (root / "no_config" / "model.safetensors").write_bytes(b"")
    (root / "gguf").mkdir()
    for name in ("a.gguf", "b.gguf"):
        (root / "gguf" / name).write_bytes(b"")
    torch.save({"state_dict": {}, "callbacks": Payload()}, root / "payload.ckpt")
    return root


@dataclass(frozen=True)
class Runs:
    lora: Path
    prompt: Path  # prompt tuning: nothing to merge
    failed: Path  # a run that failed on its data
    no_weights: Path  # a copy of `lora` whose weights/ was deleted
    no_record: Path  # a folder holding a copy of `lora`'s weights/ only
    corrupt: Path  # a copy of `lora` whose adapter_model.safetensors was cut short
    pickled: Path  # a copy of `lora` whose weights are an adapter_model.bin carrying a pickle payload
    before: dict[str, Any]  # every file of the runs above, as first written

    def snapshot(self) -> dict[str, Any]:
        return {
            k: v for run in (v for v in vars(self).values() if isinstance(v, Path)) for k, v in files_of(run).items()
        }


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under `folder` with its size and modification time: what a write would change."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], data: Path) -> Runs:
    """Three real training runs, started together: LoRA and prompt tuning complete, one fails on its data."""
    root = tmp_path_factory.mktemp("runs")
    jobs = {
        "lora": ["method=lora"],
        "prompt": ["method=prompt_tuning"],
        "failed": ["data=jsonl", f"data.path={data}/latin1.jsonl"],
    }
    procs = {
        name: start(
            "train", [*TINY, *extra, "zero_shot=false", "test=false", f"hydra.run.dir={root / name}"], root, env
        )
        for name, extra in jobs.items()
    }
    outputs = {name: proc.communicate(timeout=600)[0] for name, proc in procs.items()}
    for name in ("lora", "prompt"):
        assert procs[name].returncode == 0, outputs[name][-3000:]
        assert (root / name / "checkpoints" / "last.ckpt").is_file()
    assert procs["failed"].returncode == 1, outputs["failed"][-3000:]
    shutil.copytree(root / "lora", root / "no_weights")
    shutil.rmtree(root / "no_weights" / "weights")
    shutil.copytree(root / "lora" / "weights", root / "no_record" / "weights")
    shutil.copytree(root / "lora", root / "corrupt")
    weights = root / "corrupt" / "weights" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    shutil.copytree(root / "lora", root / "pickled")
    (root / "pickled" / "weights" / "adapter_model.safetensors").unlink()
    torch.save({"base_model.model.lm_head.weight": Payload()}, root / "pickled" / "weights" / "adapter_model.bin")
    names = ("lora", "prompt", "failed", "no_weights", "no_record", "corrupt", "pickled")
    runs = Runs(*(root / name for name in names), {})
    return replace(runs, before=runs.snapshot())


def expand(case: Case, places: dict[str, Path]) -> list[str]:
    args = [a.format(**places) for a in case.args]
    if case.command in HYDRA_COMMANDS:
        return [*TINY, *args, f"hydra.run.dir={places['out'] / 'run'}"]
    return args


def check_refused(case: Case, result: Result, out: Path) -> None:
    """(a)-(d) of the module docstring for the command's own output folder, and the stage recorded."""
    shown = result.stderr[-4000:]
    assert result.returncode != 0, shown  # (a)
    assert re.search(case.message, result.stderr, re.DOTALL), shown  # (b)
    assert "Traceback (most recent call last)" not in result.stderr + result.stdout, shown  # (c)
    assert PAYLOAD_RAN not in result.stderr + result.stdout, "a pickle from the user's files was unpickled"
    record_file = out / "run" / "run.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else None
    if case.command == "train" and result.stage != "CONFIG":  # (d) past the entry's check, the run has started
        assert record is not None, shown
    if record is not None:  # recorded as failed, with what the user was told
        assert record["status"] == "failed", record["status"]
        assert re.search(case.message, record["error"], re.DOTALL), record["error"]
    assert not (out / "run" / "weights").exists()
    assert not list(out.rglob("*.ckpt"))
    OUTCOMES.append(Outcome(case.id, case.command, result.stage, result.seconds, record["status"] if record else "-"))
    assert (result.stage == "LATE") == case.late, shown


@pytest.mark.parametrize("case", TRAIN_CASES, ids=[c.id for c in TRAIN_CASES])
def test_bad_training_input_is_refused_with_the_field_and_what_is_allowed(
    case: Case, tmp_path: Path, env: dict[str, str], data: Path
):
    if case.gpu_only and torch.cuda.is_available():
        pytest.skip("a valid setting on a CUDA machine")
    result = cli(case.command, expand(case, {"data": data, "out": tmp_path}), tmp_path, env)
    check_refused(case, result, tmp_path)


@pytest.mark.parametrize("case", RUN_CASES, ids=[c.id for c in RUN_CASES])
def test_bad_use_of_a_finished_run_is_refused_and_leaves_the_run_untouched(
    case: Case, tmp_path: Path, env: dict[str, str], runs: Runs
):
    places = {k: v for k, v in runs.__dict__.items() if isinstance(v, Path)} | {"out": tmp_path}
    result = cli(case.command, expand(case, places), tmp_path, env)
    check_refused(case, result, tmp_path)
    assert runs.snapshot() == runs.before  # nothing written into, or removed from, any run read
    merged = tmp_path / "merged"
    assert not merged.exists() or not any(merged.iterdir())


@pytest.mark.parametrize("command", HYDRA_COMMANDS)
def test_a_run_given_another_runs_folder_is_refused_before_the_model_loads(
    command: str, tmp_path: Path, env: dict[str, str], runs: Runs
):
    """hydra.run.dir naming a finished run of another config (the LoRA run's folder, given prompt tuning or
    the scoring of the prompt-tuning run) would write over its record, checkpoint and weights. Hydra itself
    rewrites its config copy (.hydra/) and appends to the log before any of our code runs; run.json keeps
    the run's config and command line."""
    lora = tmp_path / "lora"  # a copy: Hydra writes into the folder it is given, and `runs` is shared
    shutil.copytree(runs.lora, lora)
    before = files_of(lora)
    extra = "method=prompt_tuning" if command == "train" else f"run_dir={runs.prompt}"
    result = cli(command, [*TINY, extra, f"hydra.run.dir={lora}"], tmp_path, env)
    assert result.returncode == 1, result.stderr[-3000:]
    message = r"paths\.output_dir='.*lora' \(hydra\.run\.dir\) holds another config's run \(completed, config_hash \w+, method lora\); give this run a new folder"
    assert re.search(message, result.stderr), result.stderr[-3000:]
    assert "Traceback (most recent call last)" not in result.stderr
    assert result.stage == "BUILD"

    def ours(files: dict[str, Any]) -> dict[str, Any]:
        return {p: v for p, v in files.items() if "/.hydra/" not in p and not p.endswith(".log")}

    assert ours(files_of(lora)) == ours(before) and any(p.endswith("run.json") for p in ours(before))


def test_a_trained_adapter_evaluates_on_another_dataset(tmp_path: Path, env: dict[str, str], runs: Runs, data: Path):
    """The positive case: the data (and split, generation) are evaluate's own; the run's model, method
    and seed rebuild its base."""
    out = tmp_path / "run"
    args = [*TINY, f"run_dir={runs.lora}", "data=jsonl", f"data.path={data}/good.jsonl", f"hydra.run.dir={out}"]
    result = cli("evaluate", args, tmp_path, env)
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["status"] == "completed" and record["data"] == "jsonl" and record["method"] == "lora"
    assert record["artifacts"]["run_dir"] == str(runs.lora)
    assert {"test/loss", "test/rougeL"} <= set(record["metrics"])
    assert len((out / "examples.jsonl").read_text().splitlines()) == len(GOOD)
    assert runs.snapshot() == runs.before


def test_hydra_full_error_keeps_the_traceback_for_debugging(tmp_path: Path, env: dict[str, str]):
    result = cli("train", [*TINY, "method.lr=0"], tmp_path, env | {"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert "ValueError: method.lr=0 must be a finite number > 0" in result.stderr


@pytest.fixture(scope="module", autouse=True)
def early_late_table(request: pytest.FixtureRequest) -> Iterator[None]:
    """When the module ends: one line per refused case, then the counts the lead asked for."""
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if not OUTCOMES or reporter is None:
        return
    capture = request.config.pluginmanager.getplugin("capturemanager")  # else the table is captured
    with capture.global_and_fixture_disabled() if capture else nullcontext():
        write_table(reporter)


def write_table(reporter: Any) -> None:
    reporter.write_sep("-", "hostile input: where each bad input was refused")
    reporter.write_line(f"{'case':34} {'command':9} {'stage':6} {'seconds':>8}  run.json")
    for o in OUTCOMES:
        reporter.write_line(f"{o.id:34} {o.command:9} {o.stage:6} {o.seconds:8.1f}  {o.record}")
    for label, stages in (
        ("EARLY", ("CONFIG", "BUILD")),
        ("  CONFIG", ("CONFIG",)),
        ("  BUILD", ("BUILD",)),
        ("LATE", ("LATE",)),
    ):
        times = [o.seconds for o in OUTCOMES if o.stage in stages]
        median = f", median {statistics.median(times):.1f} s" if times else ""
        reporter.write_line(f"{label}: {len(times)} of {len(OUTCOMES)} cases{median}")
