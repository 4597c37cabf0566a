"""Local data files read as records: every row keeps where it came from (`file:line`, or `file:[index]`
for an element of a JSON array), so any problem found later, before tokenization, names that exact spot.

Files are decoded as UTF-8 (a leading byte-order mark is dropped); a byte that is not UTF-8 fails as
`file:line: not UTF-8`. Blank lines are skipped in every line-based format.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FILE_FORMATS = ("jsonl", "json", "csv", "sst2")


class DataFormatError(ValueError):
    """Data that cannot be read as declared: the message starts with where (`file:line:`, `file:[index]:`)."""


@dataclass(frozen=True)
class Records:
    """The rows of one file or hub split; `where[i]` locates `rows[i]`, `unit` names a row in messages."""

    name: str
    rows: list[dict[str, Any]]
    where: list[str]
    unit: str


def read_records(path: Path, format: str) -> Records:
    """Every row of one local file in `format` (one of FILE_FORMATS)."""
    text = read_text(path)
    if format == "csv":
        return _csv(path, text)
    if format == "sst2":
        return _labelled_lines(path, text)
    # A `.json` file holding one array is read as such even under format=jsonl (SAMSum ships train.json so).
    array = text.lstrip().startswith("[")
    if format == "json" or (path.suffix == ".json" and array):
        return _json(path, text)
    if array:
        line = text[: text.index("[")].count("\n") + 1
        raise DataFormatError(
            f"{path}:{line}: one JSON array, not JSON lines (an object per line); read it with data.format=json"
        )
    return _json_lines(path, text)


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """The objects of a JSON-lines file (research.forgetting reads held-out text with it)."""
    return iter(_json_lines(path, read_text(path)).rows)


def read_labelled_lines(path: Path) -> Iterator[dict[str, Any]]:
    """`<label> <sentence>` lines (SST-2's `stsa.binary.*`) as {"label": str, "sentence": str}."""
    return iter(_labelled_lines(path, read_text(path)).rows)


def read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        line = data.count(b"\n", 0, err.start) + 1
        raise DataFormatError(
            f"{path}:{line}: not UTF-8 (byte 0x{data[err.start]:02x} at column {err.start - line_start + 1}); "
            "save the file as UTF-8"
        ) from None


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines; split on newlines only, as JSON strings may hold U+2028."""
    for lineno, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield lineno, line.rstrip("\r")


def _json_lines(path: Path, text: str) -> Records:
    rows, where = [], []
    for lineno, line in _lines(text):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
        if not isinstance(row, dict):
            raise DataFormatError(f"{path}:{lineno}: expected a JSON object, got {json_kind(row)}")
        rows.append(row)
        where.append(f"{path}:{lineno}")
    return Records(str(path), rows, where, "line")


def _json(path: Path, text: str) -> Records:
    """One array of objects; several values one after another are JSON lines (`Dataset.to_json` writes those)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data":
            return _json_lines(path, text)
        raise DataFormatError(f"{path}:{err.lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(data, list):
        keys = f" with keys {', '.join(data)}" if isinstance(data, dict) else ""
        raise DataFormatError(f"{path}:1: expected one JSON array of objects, got {json_kind(data)}{keys}")
    for index, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataFormatError(f"{path}:[{index}]: expected a JSON object, got {json_kind(row)}")
    return Records(str(path), data, [f"{path}:[{i}]" for i in range(len(data))], "element")


def _csv(path: Path, text: str) -> Records:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = _next_csv_row(reader, path)
    if not header:
        raise DataFormatError(f"{path}:1: empty file, expected a header row")
    rows, where = [], []
    while True:
        start = reader.line_num + 1  # a quoted field may span lines: name the line the row starts on
        row = _next_csv_row(reader, path)
        if row is None:
            return Records(str(path), rows, where, "row")
        if not row:
            continue
        if len(row) != len(header):
            missing = f": column {header[len(row)]!r} is missing" if len(row) < len(header) else ""
            raise DataFormatError(
                f"{path}:{start}: {len(row)} fields, the header has {len(header)} ({', '.join(header)}){missing}"
            )
        rows.append(dict(zip(header, row, strict=True)))
        where.append(f"{path}:{start}")


def _next_csv_row(reader: Any, path: Path) -> list[str] | None:
    try:
        return next(reader, None)
    except csv.Error as err:
        raise DataFormatError(f"{path}:{reader.line_num}: not valid CSV ({err})") from None


def _labelled_lines(path: Path, text: str) -> Records:
    rows, where = [], []
    for lineno, line in _lines(text):
        label, _, sentence = line.partition(" ")
        if not label or not sentence.strip():
            raise DataFormatError(f"{path}:{lineno}: expected '<label> <sentence>', got {line[:60]!r}")
        rows.append({"label": label, "sentence": sentence})
        where.append(f"{path}:{lineno}")
    return Records(str(path), rows, where, "line")


def json_kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    kinds = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")
