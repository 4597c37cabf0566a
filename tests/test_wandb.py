"""W&B as the comparison surface, through the real wandb client offline, read back with `wandb leet inspect`:
one group per sweep root across launches (one folder launched into again, or the default timestamped folders),
unique names, the record's identity in the config and its cost in the summary, the weights as a `model` artifact,
a killed-and-resumed job as one run, a raising job as a failed run, evaluations in the trained run's group; the
model card; the keys docs/wandb.md names."""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig

from research.compare import build_report, load_records
from research.pipeline import evaluate, train
from research.runs import overrides, read_record
from research.runs.record import RunRecord
from research.views import card, wandb_run
from research.views.wandb_study import log_study
from tests.helpers import CONF, ROOT, compose_cfg, kill_after_first_checkpoint, run_cli, small, start_cli

WANDB = Path(sys.executable).parent / "wandb"
DOCS = ROOT / "docs" / "wandb.md"
DATA = ["model=tiny_t5", "data.num_examples=40", "data.eval_limit=4", "data.test_limit=4"]
TINY = [*DATA, "generation.max_new_tokens=8", "trainer.log_every_n_steps=1", "logger=wandb"]


# --- reading offline runs back ------------------------------------------------------------------------------
def offline_runs(run_dir: Path) -> list[Path]:
    """The run's offline W&B runs, oldest first (the folder name starts with its start time)."""
    return sorted((run_dir / "wandb").glob("offline-run-*"))


def only_run(run_dir: Path) -> Path:
    (run,) = offline_runs(run_dir)
    return run


@functools.cache
def leet_inspect(run: Path, *options: str) -> str:
    """`wandb leet inspect` of a finished run (cached: several tests read the same runs)."""
    out = subprocess.run([WANDB, "leet", "inspect", *options, run], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout


def inspect_summary(run: Path) -> dict[str, Any]:
    return json.loads(leet_inspect(run, "--summary", "--json"))


def inspect_records(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in leet_inspect(run, "--json").splitlines() if line.strip()]


def header(run: Path) -> dict[str, Any]:
    """The run record: id, display name, group, job type."""
    return next(r["run"] for r in inspect_records(run) if r["type"] == "run")


def model_artifacts(run: Path) -> list[dict[str, Any]]:
    return [r["artifact"] for r in inspect_records(run) if r["type"] == "artifact" and r["artifact"]["type"] == "model"]


# --- a rank sweep, launched twice into one folder (2 jobs, then extended to 3) --------------------------------
@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wandb_sweep")
    folder = root / "rank_sweep"
    with pytest.MonkeyPatch.context() as env:
        env.delenv("WANDB_SERVICE", raising=False)  # each launch its own wandb service, not this process's
        launch(root, "2,4", f"hydra.sweep.dir={folder}")
        launch(root, "2,4,8", f"hydra.sweep.dir={folder}")  # skips r=2 and r=4: they completed in this folder
    return folder


def launch(cwd: Path, ranks: str, *args: str) -> None:
    """A rank sweep from `cwd`, into its default folders unless `args` name one."""
    proc = run_cli("-m", f"method.peft_config.r={ranks}", *TINY, "trainer.max_epochs=1", *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def evaluated(sweep: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`research.evaluate run_dir=<the r=8 job>`: re-scoring a saved run."""
    out = tmp_path_factory.mktemp("wandb_eval")
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("evaluate", [f"run_dir={sweep / '2_lora_r8'}", *TINY, f"paths.output_dir={out}"])
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "offline")
        evaluate(cfg)
    return out


@pytest.mark.slow
def test_a_sweep_and_its_extension_are_one_group_of_distinctly_named_runs(sweep: Path):
    runs = sorted(sweep.glob("*/wandb/offline-run-*"))
    assert len(runs) == 3, "3 configs, each trained once across both launches"
    headers = [header(run) for run in runs]
    assert {h["run_group"] for h in headers} == {f"train-{sweep.name}"}, "the group is the sweep folder"
    assert {h["job_type"] for h in headers} == {"lora"}
    names = [h["display_name"] for h in headers]
    assert len(set(names)) == 3
    for name, rank, run in zip(names, (2, 4, 8), runs, strict=True):
        job = read_record(run.parents[1])
        assert name == f"lora-tiny_t5-synthetic-r={rank}-seed42-{job['config_hash'][:6]}"


@pytest.mark.slow
def test_launches_into_default_folders_that_form_one_sweep_are_one_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    quick = ["zero_shot=false", "logger.wandb.log_artifact=false"]
    launch(tmp_path, "2", *quick)
    launch(tmp_path, "2,4", *quick)  # a folder of its own (its launch time), one sweep: skips r=2
    multiruns = tmp_path / "outputs" / "train" / "multiruns"
    first, second = sorted(multiruns.iterdir())
    runs = sorted(multiruns.glob("*/*/wandb/offline-run-*"))
    assert [run.parents[2] for run in runs] == [first, second], "r=2 once (skipped in the second launch), r=4"
    assert {header(run)["run_group"] for run in runs} == {"train-multiruns"}, "the group is the sweep root"


@pytest.mark.slow
def test_every_sweep_run_carries_its_identity_cost_and_weights(sweep: Path):
    for job in sorted(sweep.glob("*_lora_*")):
        record, run = read_record(job), only_run(job)
        got = inspect_summary(run)
        assert (got["state"], got["exit_code"]) == ("finished", 0)
        config, summary = got["config"], got["summary"]
        assert config["config_hash"] == record["config_hash"]
        assert config["swept"] == f"method.peft_config.r={record['config']['method']['peft_config']['r']}"
        assert config["status"] == "completed" and config["resumed_from"] is None
        assert config["versions.peft"] == record["versions"]["peft"] and config["git_commit"] == record["git_commit"]
        assert summary["cost/train_s"] == record["timing"]["train_s"] > 0
        assert summary["cost/peak_rss_mb"] == record["memory"]["peak_rss_mb"] > 0
        assert summary["cost/weights_bytes"] == record["artifacts"]["weights_bytes"] > 0
        assert summary["params/trainable"] == record["params"]["trainable"]

        lrs = [
            r["history"]["item"]["train/lr"]
            for r in inspect_records(run)
            if "train/lr" in r.get("history", {}).get("item", {})
        ]
        assert len(lrs) == record["progress"]["checkpoint_step"], "one learning rate per optimizer step"

        (artifact,) = model_artifacts(run)
        assert artifact["name"] == f"lora-tiny_t5-synthetic-{record['config_hash']}"
        files = {c["path"] for c in artifact["manifest"]["contents"]}
        assert {"run.json", "weights/README.md", "weights/adapter_model.safetensors"} <= files
        metadata = json.loads(artifact["metadata"])
        assert metadata["metrics"]["test/loss"] == record["metrics"]["test/loss"]
        assert metadata["params"] == record["params"]


@pytest.mark.slow
def test_every_weights_folder_has_a_model_card_from_its_record(sweep: Path):
    job = sweep / "2_lora_r8"
    record = read_record(job)
    saved = ModelCard.load(job / "weights" / card.CARD)
    assert saved.data.library_name == "peft" and saved.data.base_model is None  # a random-init base has no Hub id
    assert {"peftlab", "lora", "tiny_t5", "synthetic"} <= set(saved.data.tags)
    text = saved.text
    assert "r: 8" in text and "lora_alpha: 16" in text
    loss_row = next(line for line in text.splitlines() if line.startswith("| loss |"))
    assert loss_row == f"| loss | {record['metrics']['zero_shot/loss']:.4f} | {record['metrics']['test/loss']:.4f} |"
    p = record["params"]
    assert f"{p['trainable']:,} trainable of {p['total']:,}" in text
    command = next(line for line in text.splitlines() if line.startswith("peftlab train "))
    assert "method.peft_config.r=8" in command.split(), "the job's own command line"


@pytest.mark.slow
def test_evaluate_logs_an_eval_run_into_the_trained_runs_group(sweep: Path, evaluated: Path):
    trained, run = header(only_run(sweep / "2_lora_r8")), only_run(evaluated)
    got = header(run)
    assert got["job_type"] == "eval" and got["run_group"] == trained["run_group"]
    assert got["display_name"].startswith("eval-lora-tiny_t5-synthetic-seed42-")
    summary = inspect_summary(run)
    assert summary["exit_code"] == 0 and summary["summary"]["cost/eval_s"] > 0
    assert summary["summary"]["test/loss"] == read_record(evaluated)["metrics"]["test/loss"]
    assert model_artifacts(run) == [], "an evaluation saves no weights"


@pytest.mark.slow
def test_every_key_docs_wandb_names_is_logged(sweep: Path, evaluated: Path):
    table = DOCS.read_text().split("<!-- logged-keys:start -->")[1].split("<!-- logged-keys:end -->")[0]
    rows = re.findall(r"^\| `([^`]+)` \| ([a-z ]+) \|", table, flags=re.M)
    assert len(rows) > 20
    trained, evaluation = inspect_summary(only_run(sweep / "0_lora_r2")), inspect_summary(only_run(evaluated))
    logged = {"config": trained["config"], "summary": trained["summary"], "eval summary": evaluation["summary"]}
    missing = [(key, where) for key, where in rows if key not in logged[where]]
    assert not missing, f"docs/wandb.md names keys no run logs: {missing}"


# --- failures and resumption --------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_job_that_raises_ends_its_wandb_run_failed_and_the_sweep_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("WANDB_SERVICE", raising=False)
    folder = tmp_path / "sweep"
    # job 0 raises in `fit`, after its W&B run started (validation every 1000 batches of 2); job 1 only tests
    args = ["-m", "train=true,false", "+trainer.val_check_interval=1000", *TINY, "trainer.max_epochs=1"]
    proc = run_cli(*args, f"hydra.sweep.dir={folder}", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr[-3000:]  # the number of failed jobs
    (raised,), (tested,) = folder.glob("0_lora*"), folder.glob("1_lora*")  # named by the swept `train` value
    assert read_record(raised)["status"] == "failed"
    failed = inspect_summary(only_run(raised))
    assert failed["exit_code"] != 0 and failed["state"] == "failed"
    assert failed["config"]["status"] == "failed"
    done = inspect_summary(only_run(tested))
    assert (done["state"], done["exit_code"], done["config"]["status"]) == ("finished", 0, "completed")


@pytest.mark.slow
def test_a_killed_job_resumed_with_resume_auto_is_one_wandb_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    args = [*TINY, "trainer.max_epochs=2", "zero_shot=false"]
    killed = tmp_path / "runs" / "1_killed"
    monkeypatch.delenv("WANDB_SERVICE", raising=False)  # its own wandb service, which dies with it
    record = kill_after_first_checkpoint(start_cli(*args, f"hydra.run.dir={killed}", cwd=tmp_path), killed)
    wandb_id = record["artifacts"]["wandb"]["id"]

    monkeypatch.setenv("WANDB_MODE", "offline")
    resumed = tmp_path / "runs" / "2_resumed"  # a sibling: resume=auto finds the killed run by config hash
    train(compose_cfg(*args, "resume=auto", "logger.wandb.log_artifact=false", f"paths.output_dir={resumed}"))
    first, last = only_run(killed), only_run(resumed)
    # the killed run's log may still be flushed by its orphaned wandb service: read its id from its folder name
    assert first.name.endswith(f"-{wandb_id}") and header(last)["run_id"] == wandb_id
    assert header(last)["display_name"] == record["artifacts"]["wandb"]["name"]
    got = inspect_summary(last)
    assert (got["state"], got["exit_code"]) == ("finished", 0)
    assert got["config"]["resumed_from"] == str(killed / "checkpoints" / "last.ckpt")
    assert model_artifacts(last) == [], "logger.wandb.log_artifact=false"


# --- fast: identity from the Hydra config, the card, push_to_hub refusals -----------------------------------
@pytest.fixture
def sweep_job() -> Any:
    """A job of `sweep=lora_rank` as Hydra's launcher sets it up: HydraConfig holds the job's config."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "train",
            ["sweep=lora_rank", "method.peft_config.r=4", "hydra.sweep.dir=/x/my_sweep"],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    yield cfg
    HydraConfig.instance().cfg = None


def test_a_sweep_configs_job_is_named_by_its_swept_value_and_grouped_by_its_folder(sweep_job: Any):
    assert overrides.swept() == {"method.peft_config.r": "4"}
    assert wandb_run.group_of(sweep_job.task_name) == "sweep_lora_rank-my_sweep"
    record = RunRecord.start({"seed": 42}, "lora", "tiny_t5", "synthetic")
    record.artifacts |= overrides.launch()
    assert wandb_run.run_name(record) == f"lora-tiny_t5-synthetic-r=4-seed42-{record.config_hash[:6]}"


def test_a_single_runs_group_is_its_task_name():
    assert wandb_run.group_of("train") == "train"
    assert overrides.launch() == {"overrides": None, "swept": {}}, "no command line outside a Hydra app"


def test_the_card_names_a_hub_base_model_and_the_command(tmp_path: Path):
    record = {
        "method": "lora",
        "model": "flan_t5_small",
        "data": "dialogsum",
        "config_hash": "0123456789abcdef",
        "config": {
            "model": {"name": "flan_t5_small", "name_or_path": "google/flan-t5-small", "task": "seq2seq"},
            "method": {"name": "lora", "peft_config": {"r": 16}},
            "data": {"name": "dialogsum"},
        },
        "metrics": {"test/rouge1": 0.25, "zero_shot/rouge1": 0.125},
        "params": {"trainable": 10, "total": 1000, "trainable_pct": 1.0},
        "artifacts": {"overrides": ["model=flan_t5_small", "data=dialogsum"]},
        "versions": {"peft": "0.21.2"},
        "git_commit": None,
    }
    saved = ModelCard.load(card.write_card(record, tmp_path))
    assert saved.data.base_model == "google/flan-t5-small"
    assert "| rouge1 | 0.1250 | 0.2500 |" in saved.text
    assert "peftlab train model=flan_t5_small data=dialogsum" in saved.text


@pytest.mark.parametrize(
    ("overrides_", "message"),
    [
        (["push_to_hub=me/adapter"], r"push_to_hub='me/adapter': the Hub is switched off here \(HF_HUB_OFFLINE\)"),
        (["push_to_hub=me/adapter", "train=false"], "push_to_hub='me/adapter' with train=false"),
        (["push_to_hub=a/b/c"], "push_to_hub='a/b/c' is not a Hub repo id"),
    ],
)
def test_push_to_hub_is_refused_before_training(tmp_path: Path, overrides_: list[str], message: str):
    with pytest.raises(ValueError, match=message):
        train(compose_cfg(*small("logger=none", *overrides_), f"paths.output_dir={tmp_path}"))
    assert not (tmp_path / "run.json").exists(), "refused before the run started"


@pytest.mark.slow
def test_a_study_logs_its_tables_as_one_study_run_in_its_group(sweep: Path, tmp_path: Path):
    records = load_records([sweep])
    report = build_report(records, "test/rouge1")
    assert report.decided, "the sweep's runs kept predictions: a Decided? table to log"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WANDB_MODE", "offline")
        run_id = log_study("rank_study", report, records, tmp_path)
    got = header(only_run(tmp_path))
    assert (got["run_id"], got["job_type"], got["run_group"]) == (run_id, "study", "rank_study")
    assert "study/decided" in inspect_summary(only_run(tmp_path))["summary"]
    assert log_study("rank_study", report, [r | {"artifacts": {}} for r in records], tmp_path / "none") is None
