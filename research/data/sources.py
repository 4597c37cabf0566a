"""Raw examples from the hub, local files or the synthetic generator, as one `DatasetDict` shape.

Every source yields splits `train`, `validation`, `test` with columns `input` and either `references`
(a list of reference strings; `target` = the first, used for training) or `label` (an int). Local
files are checked line by line first, so a malformed line fails as `file:line: what is wrong`.

`group_references` merges rows that share an input into one example holding every row's target as a
reference: the hub's DialogSum test split flattens each dialogue's three summaries into three rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from datasets import Dataset, DatasetDict, load_dataset

from research.data.synthetic import generate

SPLITS = ("train", "validation", "test")
FORMATS = ("synthetic", "jsonl", "csv", "sst2")  # of local files; `path: null` reads `hub_id`


class DataFormatError(ValueError):
    """A data file that cannot be read as declared: the message starts with `file:line:`."""


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
) -> DatasetDict:
    if format not in FORMATS:
        raise ValueError(f"data.format={format!r} is unknown; allowed: {', '.join(FORMATS)}")
    fields = _Fields(input_field, target_field, reference_fields, label_field, group_references)
    if format == "synthetic":
        return _synthetic(num_examples, seed, fields)
    if path is None:
        if not hub_id:
            raise ValueError("data.path is null and data.hub_id is not set: name one of them")
        try:
            raw = load_dataset(hub_id, hub_name)
        except (OSError, ConnectionError) as err:
            raise OSError(f"cannot load data.hub_id={hub_id!r} ({err}). Offline? Pass data.path=/local/dir") from err
        names = {s: (hub_splits or {}).get(s, s) for s in SPLITS}
        return DatasetDict({s: fields.normalize(raw[n], f"{hub_id}[{n}]") for s, n in names.items() if n in raw})
    files = _local_files(path, files)
    if format == "sst2":
        return DatasetDict(
            {s: fields.normalize(Dataset.from_list(list(read_labelled_lines(f))), str(f)) for s, f in files.items()}
        )
    for f in files.values():  # validate every line before handing the files to `datasets` (which caches)
        if not sum(1 for _ in (read_jsonl(f) if format == "jsonl" else _read_csv(f))):
            raise DataFormatError(f"{f}: the split is empty (no examples in the file)")
    builder = "json" if format == "jsonl" else "csv"
    # One load per split: splits may differ in columns (DialogSum's test has summary1..3, no summary).
    return DatasetDict(
        {s: fields.normalize(load_dataset(builder, data_files=str(f), split="train"), str(f)) for s, f in files.items()}
    )


class _Fields:
    def __init__(
        self,
        input_field: str,
        target_field: str | None,
        reference_fields: list[str] | None,
        label_field: str | None,
        group_references: bool = False,
    ) -> None:
        self.input, self.target, self.label = input_field, target_field, label_field
        self.references = list(reference_fields or ([target_field] if target_field else []))
        self.group = group_references

    def normalize(self, ds: Dataset, where: str) -> Dataset:
        wanted = [self.input] + ([self.label] if self.label else [])
        present = [f for f in [self.target, *self.references] if f in ds.column_names]
        missing = [f for f in wanted if f not in ds.column_names]
        if not self.label and not present:
            missing += [self.target or "target"]
        if missing:
            raise DataFormatError(
                f"{where}: field(s) {missing} not found; columns are {ds.column_names}. "
                "Set data.input_field / data.target_field / data.reference_fields / data.label_field."
            )
        if len(ds) == 0:
            raise DataFormatError(f"{where}: the split is empty")
        if self.label:
            if min(ds[self.label]) < 0:
                raise DataFormatError(
                    f"{where}: labels are hidden (negative), as in GLUE's test splits; "
                    "evaluate on the validation split instead (data.hub_splits.test=validation)"
                )
            return ds.map(
                lambda ex: {"input": ex[self.input], "label": int(ex[self.label])},
                remove_columns=ds.column_names,
            )
        refs = [f for f in self.references if f in ds.column_names] or [self.target]
        target = self.target if self.target in ds.column_names else refs[0]
        ds = ds.map(
            lambda ex: {"input": ex[self.input], "target": ex[target], "references": [ex[f] for f in refs]},
            remove_columns=ds.column_names,
        )
        return _group_by_input(ds) if self.group else ds


def _group_by_input(ds: Dataset) -> Dataset:
    """One example per distinct input, in first-seen order, with the references of all its rows."""
    groups: dict[str, dict] = {}
    for ex in ds:
        if ex["input"] in groups:
            groups[ex["input"]]["references"] += ex["references"]
        else:
            groups[ex["input"]] = ex
    return Dataset.from_list(list(groups.values()))


def _synthetic(num_examples: int, seed: int, fields: _Fields) -> DatasetDict:
    # Dedupe before splitting so no test dialogue also appears in training.
    unique = list({ex["dialogue"]: ex for ex in generate(num_examples * 2, seed)}.values())[:num_examples]
    n_eval = max(1, len(unique) // 10)
    parts = {
        "validation": unique[:n_eval],
        "test": unique[n_eval : 2 * n_eval],
        "train": unique[2 * n_eval :],
    }
    return DatasetDict({s: fields.normalize(Dataset.from_list(rows), f"synthetic[{s}]") for s, rows in parts.items()})


def _local_files(path: str | None, files: dict[str, str] | None) -> dict[str, Path]:
    if path is None:
        raise ValueError("data.path must name a local file or directory for this data.format")
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"data.path={path!r} does not exist")
    if root.is_file():
        return {"train": root, "validation": root, "test": root}
    if not files:
        raise ValueError(f"data.path={path!r} is a directory: set data.files (a file name per split)")
    out = {s: root / name for s, name in files.items() if name}
    for s, f in out.items():
        if not f.is_file():
            raise FileNotFoundError(f"data.files.{s}: {f} does not exist")
    return out


def read_jsonl(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
            if not isinstance(row, dict):
                raise DataFormatError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield row


def _read_csv(path: Path) -> Iterator[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            raise DataFormatError(f"{path}:1: empty file, expected a header row")
        for row in reader:
            if len(row) != len(header):
                raise DataFormatError(
                    f"{path}:{reader.line_num}: {len(row)} fields, the header has {len(header)} ({header})"
                )
            yield dict(zip(header, row, strict=True))


def read_labelled_lines(path: Path) -> Iterator[dict]:
    """SST-2 `stsa.binary.*`: `<label> <sentence>` per line."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            label, _, sentence = line.rstrip("\n").partition(" ")
            if label not in ("0", "1") or not sentence:
                raise DataFormatError(f"{path}:{lineno}: expected '<0|1> <sentence>', got {line[:60]!r}")
            yield {"sentence": sentence, "label": int(label)}
