"""Classes named by `data.label_names` (string labels, more than two classes) and JSON-array files,
end to end through the DataModule as research.train builds it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from research.data import check_num_labels
from tests.helpers import datamodule, load

NAMES = ["negative", "neutral", "positive"]
REVIEWS = [
    ("a dull , lifeless mess", "negative"),
    ("it is a film", "neutral"),
    ("a gorgeous , witty film", "positive"),
    ("two hours i will never get back", "negative"),
    ("the plot happens", 1),  # an index is still accepted, if in range
    ("sharp and moving", "positive"),
]


def three_class_file(path: Path) -> Path:
    path.write_text("".join(json.dumps({"review": text, "sentiment": label}) + "\n" for text, label in REVIEWS))
    return path


def test_three_string_classes_map_to_indices_through_the_datamodule(tmp_path: Path):
    path = three_class_file(tmp_path / "reviews.jsonl")
    dm = datamodule(
        "data=jsonl", f"data.path={path}", "data.input_field=review", "data.target_field=null",
        "data.label_field=sentiment", f"data.label_names=[{','.join(NAMES)}]", "data.batch_size=4",
        task="classification",
    )  # fmt: skip
    assert dm.label_names == NAMES
    dm.setup()
    assert dm.splits["train"]["labels"] == [0, 1, 2, 0, 1, 2]
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].dtype == torch.long and batch["labels"].shape == (4,)
    assert set(batch["labels"].tolist()) <= {0, 1, 2}
    assert batch["input_ids"].shape[0] == 4


def test_head_width_must_match_the_named_classes():
    check_num_labels(NAMES, 3)
    check_num_labels(None, 2)  # integer labels without names: nothing to compare
    message = (
        "data.label_names has 3 classes (negative, neutral, positive) but model.num_labels=2; "
        "set model.num_labels=3 or list 2 names in data.label_names"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        check_num_labels(NAMES, 2)


def test_csv_labels_are_text_cells_read_as_indices_or_names(tmp_path: Path):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\nfine,2\nbad,negative\nmeh, 1 \n")
    splits = load("csv", path, input_field="text", target_field=None, label_field="label", label_names=NAMES)
    assert splits["train"]["label"] == [2, 0, 1]


def test_five_class_sst_lines_with_integer_labels(tmp_path: Path):
    """SST-5 (`stsa.fine.*`) has SST-2's line format with labels 0..4."""
    path = tmp_path / "stsa.fine.dev"
    path.write_text("4 a masterpiece .\n0 awful .\n2 it exists .\n")
    splits = load("sst2", path, input_field="sentence", target_field=None, label_field="label")
    assert splits["test"]["label"] == [4, 0, 2]


SAMSUM = [
    {"id": "13818513", "summary": "Amanda baked cookies.", "dialogue": "Amanda: I baked cookies.\nJerry: Sure!"},
    {"id": "13728867", "summary": "Olivia votes.", "dialogue": "Olivia: Who are you voting for?\nOliver: Liberals."},
]


def test_json_array_file_reads_under_format_json_and_jsonl(tmp_path: Path):
    """SAMSum ships train.json as one array; under format=jsonl a `.json` array is read the same way."""
    path = tmp_path / "train.json"
    path.write_text(json.dumps(SAMSUM, indent=2))
    fields = dict(input_field="dialogue", target_field="summary")
    for format in ("json", "jsonl"):
        splits = load(format, path, **fields)
        assert splits["train"]["target"] == ["Amanda baked cookies.", "Olivia votes."]
        assert splits["test"]["input"][1] == SAMSUM[1]["dialogue"]


def test_format_json_also_reads_json_lines(tmp_path: Path):
    """`Dataset.to_json` writes one object per line, often to a `.json` file."""
    path = tmp_path / "train.json"
    path.write_text("".join(json.dumps(row) + "\n" for row in SAMSUM))
    assert load("json", path, input_field="dialogue", target_field="summary")["train"]["target"][1] == "Olivia votes."


def test_json_config_trains_from_an_array_file(tmp_path: Path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(SAMSUM * 3))
    dm = datamodule("data=json", f"data.path={path}", "data.input_field=dialogue", "data.target_field=summary")
    dm.setup()
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].shape[0] == 6 and (batch["labels"] != -100).any()
