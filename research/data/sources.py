"""Raw examples from the hub, local files or the synthetic generator, as one `DatasetDict` shape.

Every source yields splits `train`, `validation`, `test` with columns `input` and either `references`
(a list of reference strings; `target` = the first, used for training) or `label` (a class index).
Every row is checked here, before tokenization, so bad data fails as `file:line: what is wrong; which
data.* setting is involved` (research/data/readers.py reads the files).

`group_references` merges rows that share an input into one example holding every row's target as a
reference: the hub's DialogSum test split flattens each dialogue's three summaries into three rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset

from research.data.labels import LabelMap
from research.data.readers import (
    FILE_FORMATS,
    DataFormatError,
    Records,
    json_kind,
    read_jsonl,
    read_labelled_lines,
    read_records,
)
from research.data.synthetic import generate

__all__ = ["FORMATS", "SPLITS", "DataFormatError", "load_splits", "read_jsonl", "read_labelled_lines"]

SPLITS = ("train", "validation", "test")
FORMATS = ("synthetic", *FILE_FORMATS)  # of local files; `path: null` reads `hub_id`


def load_splits(
    format: str,
    *,
    path: str | None,
    hub_id: str | None,
    hub_name: str | None,
    hub_splits: dict[str, str] | None,
    files: dict[str, str] | None,
    input_field: str,
    target_field: str | None,
    reference_fields: list[str] | None,
    label_field: str | None,
    group_references: bool,
    num_examples: int,
    seed: int,
    label_names: list[str] | None = None,
) -> DatasetDict:
    if format not in FORMATS:
        raise ValueError(f"data.format={format!r} is unknown; allowed: {', '.join(FORMATS)}")
    fields = Fields(input_field, target_field, reference_fields, label_field, label_names, group_references)
    if format == "synthetic":
        parts = _synthetic(num_examples, seed)
    elif path is None:
        parts = _hub(hub_id, hub_name, hub_splits, fields)
    else:
        parts = _local(path, files, format)
    built: dict[int, Dataset] = {}  # one file serving several splits is checked once
    for records in parts.values():
        if id(records) not in built:
            built[id(records)] = Dataset.from_list(fields.normalize(records))
    return DatasetDict({split: built[id(records)] for split, records in parts.items()})


class Fields:
    """Which fields of a row hold the input, the target(s) or the label, and each row's check of them."""

    def __init__(
        self,
        input_field: str,
        target_field: str | None,
        reference_fields: list[str] | None,
        label_field: str | None,
        label_names: list[str] | None = None,
        group_references: bool = False,
    ) -> None:
        if not (label_field or target_field or reference_fields):
            raise ValueError(
                "set data.target_field (or data.reference_fields) for generation, data.label_field for classification"
            )
        self.input, self.target, self.label = input_field, target_field, label_field
        self.references = list(reference_fields or [])
        self.labels, self.group = LabelMap(label_names), group_references

    def layout(self, columns: list[str]) -> tuple[str, list[str]]:
        """(target field, reference fields) for a file or split with these columns. Reference fields absent
        from it fall back to the target field (DialogSum: `summary1..3` in test, `summary` elsewhere)."""
        present = [f for f in self.references if f in columns]
        if self.target and (self.target in columns or not present):
            return self.target, present or [self.target]
        refs = present or self.references  # no target field here: the first reference is the training target
        return refs[0], refs

    def used(self, columns: list[str]) -> list[str]:
        if self.label:
            return [self.input, self.label]
        target, refs = self.layout(columns)
        return list(dict.fromkeys([self.input, target, *refs]))

    def normalize(self, records: Records) -> list[dict[str, Any]]:
        pairs = zip(records.rows, records.where, strict=True)
        if self.label:
            return [
                {
                    "input": self._text(row, self.input, where, records.unit),
                    "label": self._label(row, where, records.unit),
                }
                for row, where in pairs
            ]
        target, refs = self.layout(list(dict.fromkeys(key for row in records.rows for key in row)))
        out = [
            {
                "input": self._text(row, self.input, where, records.unit),
                "target": self._text(row, target, where, records.unit),
                "references": [self._text(row, f, where, records.unit) for f in refs],
            }
            for row, where in pairs
        ]
        return _group_by_input(out) if self.group else out

    def _label(self, row: dict[str, Any], where: str, unit: str) -> int:
        return self.labels(self._value(row, self.label, where, unit), where, self.label)

    def _text(self, row: dict[str, Any], field: str, where: str, unit: str) -> str:
        value = self._value(row, field, where, unit)
        if isinstance(value, str):
            return value
        problem = "null" if value is None else f"{json_kind(value)} ({str(value)[:40]}), not a string"
        raise DataFormatError(
            f"{where}: field {field!r} is {problem}; data.{self._setting(field)} names a string field of every {unit}"
        )

    def _value(self, row: dict[str, Any], field: str, where: str, unit: str) -> Any:
        if field not in row:
            raise DataFormatError(
                f"{where}: field {field!r} is missing; data.{self._setting(field)} names a field of every {unit} "
                f"(this {unit} has: {', '.join(row) or 'no fields'})"
            )
        return row[field]

    def _setting(self, field: str) -> str:
        """The data.* setting that names `field`, for messages."""
        if field == self.input:
            return "input_field"
        if field == self.label:
            return "label_field"
        return "target_field" if field == self.target else "reference_fields"


def _group_by_input(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One example per distinct input, in first-seen order, with the references of all its rows."""
    groups: dict[str, dict[str, Any]] = {}
    for ex in rows:
        if ex["input"] in groups:
            groups[ex["input"]]["references"] += ex["references"]
        else:
            groups[ex["input"]] = ex
    return list(groups.values())


def _synthetic(num_examples: int, seed: int) -> dict[str, Records]:
    # Dedupe before splitting so no test dialogue also appears in training.
    unique = list({ex["dialogue"]: ex for ex in generate(num_examples * 2, seed)}.values())[:num_examples]
    n_eval = max(1, len(unique) // 10)
    parts = {"validation": unique[:n_eval], "test": unique[n_eval : 2 * n_eval], "train": unique[2 * n_eval :]}
    for split, rows in parts.items():
        if not rows:
            raise DataFormatError(
                f"synthetic[{split}]: the {split} split is empty: data.num_examples={num_examples} gives "
                f"{n_eval} validation and {n_eval} test examples (10%, at least 1 each) before train; "
                "set data.num_examples >= 3"
            )
    return {
        s: Records(f"synthetic[{s}]", rows, [f"synthetic[{s}]:[{i}]" for i in range(len(rows))], "example")
        for s, rows in parts.items()
    }


def _hub(
    hub_id: str | None, hub_name: str | None, hub_splits: dict[str, str] | None, fields: Fields
) -> dict[str, Records]:
    if not hub_id:
        raise ValueError("data.path is null and data.hub_id is not set: name one of them")
    try:
        raw = load_dataset(hub_id, hub_name)
    except (OSError, ConnectionError) as err:
        raise OSError(f"cannot load data.hub_id={hub_id!r} ({err}). Offline? Pass data.path=/local/dir") from err
    parts = {}
    for split in SPLITS:
        name = (hub_splits or {}).get(split, split)
        if name not in raw:
            continue
        ds, where = raw[name], f"{hub_id}[{name}]"
        used = list(fields.used(ds.column_names))
        missing = [f for f in used if f not in ds.column_names]
        if missing:
            raise DataFormatError(
                f"{where}: field(s) {missing} not found; columns are {ds.column_names}. "
                "Set data.input_field / data.target_field / data.reference_fields / data.label_field."
            )
        if len(ds) == 0:
            raise DataFormatError(f"{where}: the {split} split is empty; read another with data.hub_splits.{split}")
        rows = ds.select_columns(used).to_list()  # only the fields used: a hub set may carry big other columns
        parts[split] = Records(where, rows, [f"{where}:[{i}]" for i in range(len(rows))], "example")
    return parts


def _local(path: str, files: dict[str, str] | None, format: str) -> dict[str, Records]:
    read: dict[Path, Records] = {}  # one file may serve several splits: read it once
    parts = {}
    for split, (file, setting) in _local_files(path, files).items():
        parts[split] = read[file] = read.get(file) or read_records(file, format)
        if not parts[split].rows:
            raise DataFormatError(f"{file}:1: the {split} split is empty: {setting} names a file with no examples")
    return parts


def _local_files(path: str, files: dict[str, str] | None) -> dict[str, tuple[Path, str]]:
    """{split: (file, the data.* setting naming it)}: one file serves every split, or a directory holds one per split."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data.path={path!r} does not exist")
    if root.is_file():
        return {split: (root, "data.path") for split in SPLITS}
    if not files:
        raise ValueError(f"data.path={path!r} is a directory: set data.files (a file name per split)")
    unknown = [s for s in files if s not in SPLITS]
    if unknown:
        raise ValueError(f"data.files names unknown split(s) {unknown}; allowed: {', '.join(SPLITS)}")
    out = {split: (root / name, f"data.files.{split}") for split, name in files.items() if name}
    for split, (file, _) in out.items():
        if not file.is_file():
            raise FileNotFoundError(f"data.files.{split}: {file} does not exist")
    return out
