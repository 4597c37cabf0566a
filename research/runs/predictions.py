"""predictions.jsonl: every row each evaluation of a run scored, beside run.json, one JSON object a line:

    {"stage": "test", "id": 17, "input": "...", "prediction": "...", "references": ["..."],
     "scores": {"rouge1": 0.41, "rouge2": 0.18, "rougeL": 0.33, "rougeLsum": 0.33, "bleu": 12.7}}

`stage` is the evaluation (`zero_shot`, `test`), `id` the row's index in the split (the same example has the
same id in every run of the same data), `scores` its per-example scores (research/metrics `@per_example`).
A file of more than COMPRESS_ROWS lines, or of more than COMPRESS_BYTES, is written gzip-compressed as
predictions.jsonl.gz instead: a run holds one or the other, and `read_predictions` reads either. Torch-free:
`peftlab compare` reads it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from research.runs.record import write_atomic

FILE = "predictions.jsonl"
GZIP_FILE = f"{FILE}.gz"
COMPRESS_ROWS = 2000  # a few thousand rows of summaries is megabytes of text: compressed about 4x
COMPRESS_BYTES = 4 * 2**20


def write_predictions(run_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """All of a run's rows, replacing what its folder held (the other form of the file too)."""
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode()
    compress = len(rows) > COMPRESS_ROWS or len(data) > COMPRESS_BYTES
    path = run_dir / (GZIP_FILE if compress else FILE)
    write_atomic(path, gzip.compress(data, mtime=0) if compress else data)
    (run_dir / (FILE if compress else GZIP_FILE)).unlink(missing_ok=True)
    return path


def predictions_path(run_dir: Path) -> Path | None:
    """The run's predictions file, plain or compressed; None when it has none."""
    return next((p for p in (run_dir / FILE, run_dir / GZIP_FILE) if p.is_file()), None)


def read_predictions(run_dir: Path, stage: str | None = None) -> list[dict[str, Any]]:
    """The run's rows (of one stage, if named); [] when it has no predictions file."""
    path = predictions_path(run_dir)
    if path is None:
        return []
    text = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    rows = [json.loads(line) for line in text.decode().splitlines() if line.strip()]
    return [row for row in rows if stage is None or row["stage"] == stage]
