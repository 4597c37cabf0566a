"""Run records (run.json) and experiment loggers."""

from research.runs.record import RunRecord, read_record, write_json_atomic

__all__ = ["RunRecord", "read_record", "write_json_atomic"]
