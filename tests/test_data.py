"""Data sources on small real files: every format, multi-reference grouping and scoring, the causal
prompt/target layout, and the data configs as Hydra composes them. Bad data: tests/test_data_errors.py;
labels and JSON arrays: tests/test_data_labels.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from research.data.collate import IGNORE_INDEX
from research.data.readers import DataFormatError
from research.models.tokenizers import byte_tokenizer
from research.tasks import Task
from tests.helpers import ASSETS, CONF, ROOT, compose_cfg, load

SPLIT_FILES = {"train": "train", "validation": "dev", "test": "test"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_synthetic_splits_are_disjoint_and_normalized():
    splits = load("synthetic", None, num_examples=60)
    assert set(splits) == {"train", "validation", "test"}
    assert splits["test"].column_names == ["input", "target", "references"]
    assert not set(splits["test"]["input"]) & set(splits["train"]["input"])
    assert all(ex["references"] == [ex["target"]] for ex in splits["test"])


def test_jsonl_directory_with_multi_reference_test(tmp_path: Path):
    write_jsonl(tmp_path / "a.train", [{"dialogue": "d1", "summary": "s1"}, {"dialogue": "d2", "summary": "s2"}])
    write_jsonl(tmp_path / "a.dev", [{"dialogue": "d3", "summary": "s3"}])
    write_jsonl(tmp_path / "a.test", [{"dialogue": "d4", "summary1": "r1", "summary2": "r2", "summary3": "r3"}])
    files = {s: f"a.{n}" for s, n in SPLIT_FILES.items()}
    splits = load("jsonl", tmp_path, files=files, reference_fields=["summary1", "summary2", "summary3"])
    assert splits["train"]["target"] == ["s1", "s2"] and splits["train"]["references"] == [["s1"], ["s2"]]
    assert splits["test"][0] == {"input": "d4", "target": "r1", "references": ["r1", "r2", "r3"]}


def test_csv_single_file_serves_every_split_with_custom_fields(tmp_path: Path):
    path = tmp_path / "mine.csv"
    path.write_text('question,answer\n"Hi, you?",fine\nq2,a2\n')
    splits = load("csv", path, input_field="question", target_field="answer")
    assert splits["validation"]["input"] == ["Hi, you?", "q2"] and splits["test"]["target"] == ["fine", "a2"]


def test_sst2_lines_become_labelled_examples(tmp_path: Path):
    for name in SPLIT_FILES.values():
        (tmp_path / f"stsa.binary.{name}").write_text("1 a gorgeous film .\n\n0 one long string of cliches .\n")
    files = {s: f"stsa.binary.{n}" for s, n in SPLIT_FILES.items()}
    splits = load("sst2", tmp_path, files=files, input_field="sentence", target_field=None, label_field="label")
    assert splits["test"].to_list() == [
        {"input": "a gorgeous film .", "label": 1},
        {"input": "one long string of cliches .", "label": 0},
    ]


def test_hub_style_flattened_references_are_grouped_back(tmp_path: Path):
    """A local dataset directory goes through the same `load_dataset(hub_id)` call as a hub id, offline:
    here shaped like knkarthick/dialogsum, whose test split repeats each dialogue once per summary."""
    write_jsonl(tmp_path / "train.jsonl", [{"dialogue": "d1", "summary": "s1"}])
    write_jsonl(tmp_path / "validation.jsonl", [{"dialogue": "d2", "summary": "s2"}])
    rows = [{"dialogue": d, "summary": f"{d}-r{i}"} for d in ("d3", "d4") for i in (1, 2, 3)]
    write_jsonl(tmp_path / "test.jsonl", rows)
    splits = load("jsonl", None, hub_id=str(tmp_path), group_references=True)
    assert splits["test"].to_list() == [
        {"input": "d3", "target": "d3-r1", "references": ["d3-r1", "d3-r2", "d3-r3"]},
        {"input": "d4", "target": "d4-r1", "references": ["d4-r1", "d4-r2", "d4-r3"]},
    ]


def test_hidden_test_labels_point_to_the_validation_split(tmp_path: Path):
    """GLUE's test labels are -1: scoring them would be meaningless, so the hub split is remapped."""
    for split, label in (("train", 1), ("validation", 0), ("test", -1)):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"sentence": f"{split} text", "label": label}])
    fields = dict(input_field="sentence", target_field=None, label_field="label")
    with pytest.raises(DataFormatError, match=r"test\]:\[0\]: label field 'label' is -1: labels are hidden"):
        load("sst2", None, hub_id=str(tmp_path), **fields)
    splits = load("sst2", None, hub_id=str(tmp_path), hub_splits={"test": "validation"}, **fields)
    assert splits["test"].to_list() == [{"input": "validation text", "label": 0}]


BASE_KEYS = set(yaml.safe_load((CONF / "data" / "_base.yaml").read_text()))
# A few values each config sets, as they were before the configs inherited from _base.yaml.
CONFIG_VALUES = {
    "synthetic": {
        "format": "synthetic",
        "path": None,
        "input_field": "dialogue",
        "num_examples": 400,
        "batch_size": 16,
    },
    "dialogsum": {"format": "jsonl", "hub_id": "knkarthick/dialogsum", "group_references": True, "eval_limit": 100},
    "sst2": {
        "format": "sst2",
        "target_field": None,
        "label_field": "label",
        "max_source_length": 128,
        "batch_size": 32,
    },
    "jsonl": {"format": "jsonl", "input_field": "input", "target_field": "target", "eval_limit": 100},
    "csv": {"format": "csv", "input_field": "input", "max_source_length": 512, "group_by_length": True},
    "json": {"format": "json", "input_field": "input", "target_field": "target", "batch_size": 8},
}


@pytest.mark.parametrize("name", sorted(CONFIG_VALUES))
def test_data_config_inherits_every_key_from_base_and_sets_its_own(name: str):
    data = compose_cfg(f"data={name}").data
    assert set(data) == BASE_KEYS
    assert (data._target_, data.name) == ("research.data.DataModule", name)
    assert {key: OmegaConf.to_container(data)[key] for key in CONFIG_VALUES[name]} == CONFIG_VALUES[name]
    assert data.seed == compose_cfg().seed


def test_every_data_config_is_checked_and_those_for_own_files_require_a_path():
    assert {p.stem for p in (CONF / "data").glob("[!_]*.yaml")} == set(CONFIG_VALUES)
    for name in ("jsonl", "csv", "json"):
        assert OmegaConf.is_missing(compose_cfg(f"data={name}").data, "path")
    assert list(compose_cfg("data=sst2").data.label_names) == ["negative", "positive"]


def test_multi_reference_rouge_is_best_of_and_mean_of_hand_computed_f1():
    """rouge1 F1 = 2PR/(P+R) on unigrams. `the cat sat` vs `the cat ran away`: P=2/3, R=2/4 -> 4/7;
    vs `a cat sat`: P=R=2/3 -> 2/3. Bigrams: 1 of 2 vs 1 of 3 -> 2/5; 1 of 2 vs 1 of 2 -> 1/2.
    `hello world` vs [`hello world`, `goodbye`]: 1 and 0 for both orders. Means over the 2 examples."""
    scores = Task.SEQ2SEQ.score(
        ["the cat sat", "hello world"], [["the cat ran away", "a cat sat"], ["hello world", "goodbye"]]
    )
    expected = {
        "rouge1": (2 / 3 + 1) / 2,
        "rouge1_mean": ((4 / 7 + 2 / 3) / 2 + 1 / 2) / 2,
        "rouge2": (1 / 2 + 1) / 2,
        "rouge2_mean": ((2 / 5 + 1 / 2) / 2 + 1 / 2) / 2,
        "rougeL": (2 / 3 + 1) / 2,
        "rougeL_mean": ((4 / 7 + 2 / 3) / 2 + 1 / 2) / 2,
    }
    assert {k: scores[k] for k in expected} == pytest.approx(expected, abs=1e-12)


def test_causal_example_masks_the_prompt_and_keeps_its_end_when_cut():
    tokenizer = byte_tokenizer()
    prompt = "Summarize: " + "x" * 50 + "\nSummary:"
    ex = Task.CAUSAL.encode({"target": "ok"}, prompt, tokenizer, max_source_length=30, max_target_length=8)
    assert tokenizer.decode(ex["prompt_ids"]).endswith("\nSummary:") and ex["truncated"]
    assert tokenizer.decode(ex["prompt_ids"]).startswith("Summarize: ") and len(ex["prompt_ids"]) == 30
    target = tokenizer(" ok", add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    assert ex["labels"] == [IGNORE_INDEX] * 30 + target
    chat = Task.CAUSAL.encode({"target": "ok"}, "user turn\nassistant\n", tokenizer, 64, 8)
    assert tokenizer.decode([i for i in chat["labels"] if i != IGNORE_INDEX]) == "ok</s>"


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_composes_and_names_existing_local_files(experiment: str):
    cfg = compose_cfg(f"experiment={experiment}")
    assert cfg.task_name == experiment
    if cfg.data.path is not None and ASSETS.is_dir():  # relative to the repository root, as documented
        assert all((ROOT / cfg.data.path / name).is_file() for name in cfg.data.files.values())
    if cfg.model.gguf_file and ASSETS.is_dir():
        assert (ROOT / cfg.model.name_or_path / cfg.model.gguf_file).is_file()


def test_flan_t5_lab_experiment_is_the_reference_lora():
    cfg = compose_cfg("experiment=dialogsum_flan_t5_base_lab")
    assert (cfg.model.name, cfg.data.name, cfg.method.name) == ("flan_t5_base", "dialogsum", "lora")
    lora = cfg.method.peft_config
    assert (lora.r, lora.lora_alpha, list(lora.target_modules)) == (32, 32, ["q", "v"])
    assert (lora.lora_dropout, cfg.method.lr) == (0.05, 1e-3)
