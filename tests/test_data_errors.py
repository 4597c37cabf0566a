"""Bad data fails before tokenization with one error type whose message starts `file:line:` (or
`file:[index]:` in a JSON array), names the field and the data.* setting, and says what is allowed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from research.data.readers import DataFormatError
from tests.helpers import datamodule, load

GOOD = '{"dialogue": "a", "summary": "b"}\n'


@pytest.mark.parametrize(
    ("format", "content", "where", "reason"),
    [
        ("jsonl", GOOD + '{"dialogue": "a", "summary": }\n', "2", "not valid JSON (Expecting value at column 30)"),
        ("jsonl", GOOD + '["a", "b"]\n', "2", "expected a JSON object, got an array"),
        ("jsonl", GOOD + "\n" + '{"dialogue": "a", "summary": null}\n', "3", "field 'summary' is null; data.target_field names a string field of every line"),
        ("jsonl", GOOD + '{"dialogue": 7, "summary": "b"}\n', "2", "field 'dialogue' is a number (7), not a string; data.input_field"),
        ("jsonl", GOOD + '{"dialogue": "a", "topic": "t"}\n', "2", "field 'summary' is missing; data.target_field names a field of every line (this line has: dialogue, topic)"),
        ("json", '[{"dialogue": "a", "summary": "b"},\n {"dialogue": "c", "summary": null}]', "[1]", "field 'summary' is null; data.target_field names a string field of every element"),
        ("json", '[{"dialogue": "a", "summary": "b"}, "oops"]', "[1]", "expected a JSON object, got a string"),
        ("json", '{"data": [{"dialogue": "a"}]}', "1", "expected one JSON array of objects, got an object with keys data"),
        ("json", '[{"dialogue": "a",\n  "summary": "b"},\n]', "3", "not valid JSON"),
        ("csv", "dialogue,summary\na,b\nc,d,e\n", "3", "3 fields, the header has 2 (dialogue, summary)"),
        ("csv", 'dialogue,summary\n"two\nlines",b\nc\n', "4", "1 fields, the header has 2 (dialogue, summary): column 'summary' is missing"),
        ("csv", "dialogue,text\na,b\n", "2", "field 'summary' is missing; data.target_field names a field of every row (this row has: dialogue, text)"),
        ("sst2", "1 fine .\n0 bad .\n2\n", "3", "expected '<label> <sentence>', got '2'"),
    ],
)  # fmt: skip
def test_bad_line_is_named_by_file_and_line(tmp_path: Path, format: str, content: str, where: str, reason: str):
    path = tmp_path / f"data.{format}"
    path.write_text(content)
    with pytest.raises(DataFormatError) as info:
        load(format, path, **({"label_field": "label"} if format == "sst2" else {}))
    assert str(info.value).startswith(f"{path}:{where}: {reason}")


@pytest.mark.parametrize("format", ["jsonl", "json", "csv", "sst2"])
def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path: Path, format: str):
    lines = {"csv": b"dialogue,summary\na,b\n", "sst2": b"1 fine .\n0 bad .\n"}.get(format, GOOD.encode() * 2)
    path = tmp_path / f"data.{format}"
    path.write_bytes(lines + b"1 caf\xe9 ,\n")  # Latin-1, as some old exports are
    with pytest.raises(DataFormatError) as info:
        load(format, path, label_field="label" if format == "sst2" else None)
    line = lines.count(b"\n") + 1
    assert str(info.value) == f"{path}:{line}: not UTF-8 (byte 0xe9 at column 6); save the file as UTF-8"


@pytest.mark.parametrize(
    ("label", "names", "reason"),
    [
        ('"positive"', None, "label field 'label' is a string ('positive'); labels are class indices 0, 1, ...; to use names, list them in data.label_names"),
        ('"great"', ["negative", "positive"], "label field 'label' is a string ('great'); allowed: negative, positive (data.label_names) or their index 0..1"),
        ("2", ["negative", "positive"], "label field 'label' is 2, out of range; allowed: negative, positive"),
        ("1.5", None, "label field 'label' is a number (1.5)"),
        ("true", None, "label field 'label' is a boolean (True)"),
        ("null", None, "label field 'label' is null"),
    ],
)  # fmt: skip
def test_bad_label_names_the_line_and_the_labels_allowed(
    tmp_path: Path, label: str, names: list[str] | None, reason: str
):
    path = tmp_path / "labels.jsonl"
    path.write_text('{"text": "ok", "label": 0}\n' + f'{{"text": "bad", "label": {label}}}\n')
    with pytest.raises(DataFormatError) as info:
        load("jsonl", path, input_field="text", target_field=None, label_field="label", label_names=names)
    assert str(info.value).startswith(f"{path}:2: {reason}")


def test_empty_file_and_header_only_csv_say_the_split_is_empty_and_which_setting(tmp_path: Path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataFormatError, match=re.escape(f"{empty}:1: the train split is empty: data.path names")):
        load("jsonl", empty)
    (tmp_path / "train.csv").write_text("dialogue,summary\na,b\n")
    (tmp_path / "test.csv").write_text("dialogue,summary\n")
    files = {"train": "train.csv", "test": "test.csv"}
    message = f"{tmp_path / 'test.csv'}:1: the test split is empty: data.files.test names a file with no examples"
    with pytest.raises(DataFormatError, match=re.escape(message)):
        load("csv", tmp_path, files=files)


def test_hub_split_without_a_field_lists_its_columns(tmp_path: Path):
    (tmp_path / "train.jsonl").write_text('{"text": "a", "summary": "b"}\n')
    columns = r"\[train\]: field\(s\) \['dialogue'\] not found; columns are \['text', 'summary'\]"
    with pytest.raises(DataFormatError, match=columns):
        load("jsonl", None, hub_id=str(tmp_path))


def test_too_few_synthetic_examples_say_the_split_is_empty_and_which_setting():
    dm = datamodule("data.num_examples=2")
    message = "synthetic[train]: the train split is empty: data.num_examples=2 gives 1 validation and 1 test"
    with pytest.raises(DataFormatError, match=re.escape(message) + r".*set data\.num_examples >= 3"):
        dm.setup()


@pytest.mark.parametrize(
    ("overrides", "task", "expected"),
    [
        (["data=sst2"], "causal", r"data\.label_field='label' is classification data, but the model generates text"),
        ([], "classification", r"model\.task=classification needs data\.label_field"),
        (["data.label_names=[a,b]"], "seq2seq", r"data\.label_names is set but data\.label_field is null"),
        (["data=sst2", "data.label_names=[a,a]"], "classification", r"data\.label_names=\['a', 'a'\] must be at least 2 distinct"),
        (["data.format=parquet"], "seq2seq", r"data\.format='parquet' is unknown; allowed: synthetic, jsonl, json, csv, sst2"),
        (["data=json", "data.path=/nonexistent/train.json"], "seq2seq", r"data\.path='/nonexistent/train\.json' does not exist"),
    ],
)  # fmt: skip
def test_bad_data_setting_names_the_key(overrides: list[str], task: str, expected: str):
    with pytest.raises((ValueError, FileNotFoundError), match=expected):
        datamodule(*overrides, task=task).setup()
