"""Checkpoints that are complete or absent, and a cheap test of one before resuming from it.

Lightning writes a checkpoint straight under its final name (through a temp file in /tmp that is then
copied over): a full disk leaves a truncated last.ckpt, which every later `resume=auto` would pick and fail
on. `AtomicCheckpoint` writes `.<name>.<pid>.partial` next to it and renames it over the old one only
once it is whole, so the previous checkpoint stays usable until the new one is; callbacks that are
`CheckpointListener`s are told only then (RecordProgress writes run.json `progress` there).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from weakref import proxy

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint

from research.runs.record import RunRecord


class CheckpointListener(pl.Callback):
    """A callback told when a checkpoint is complete under its final name."""

    def on_checkpoint_written(self, trainer: pl.Trainer, path: Path) -> None:
        """Called on global rank zero, after the file is renamed into place."""


class AtomicCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose files appear whole or not at all (temp file + rename). A failed write (a full
    disk) removes its partial file and raises naming the checkpoint and what to do. The file itself is
    written by Lightning's strategy (rank 0, or every rank for sharded FSDP: a folder, not covered here)."""

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        final = Path(filepath)
        partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
        try:
            trainer.save_checkpoint(partial, self.save_weights_only)
            if trainer.is_global_zero:
                _fsync(partial)
                os.replace(partial, final)
                _fsync(final.parent)
        except OSError as err:
            raise OSError(
                err.errno,
                f"could not write checkpoint {final} ({err.strerror or err}); free space on that disk, or "
                "choose an output folder on another one, and relaunch",
            ) from err
        finally:
            partial.unlink(missing_ok=True)  # left only by a failed write
        # What ModelCheckpoint._save_checkpoint does after writing (Lightning 2.6), with the final name.
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(proxy(self))
            for callback in trainer.callbacks:
                if isinstance(callback, CheckpointListener):
                    callback.on_checkpoint_written(trainer, final)


def unreadable(path: Path) -> str | None:
    """Why `path` is not a whole torch checkpoint, or None when it looks whole. Cheap and safe: reads the
    zip directory at the end of the file (a truncated file has none) and the small pickle of the tensor
    layout with its CRC check, never unpickles anything and never reads the tensors themselves."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                return f"a zip archive without a torch data.pkl ({len(pickles)} found)"
            archive.read(pickles[0])
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        return f"not a complete torch checkpoint ({err})"
    return None


def unsafe(path: Path) -> str | None:
    """Why torch refuses to load `path` as plain tensors (a pickle payload: code to run, not data), or None.
    Loads with `weights_only=True`, torch's restricted unpickler that builds tensors and plain containers
    only and never runs what the file names, memory-mapped (a zip file) so the tensors are not read: the
    refusal comes before anything is built, not from Lightning or peft after the model loaded."""
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as err:
        found = re.search(r"WeightsUnpickler error: (.*?)\. ", str(err))
        return f"carries more than tensors ({found.group(1) if found else 'a pickled object'}): refused unloaded"
    return None


def check_weights(directory: Path) -> None:
    """Every weights file of a run's `weights/` folder readable before the base model is built: a
    safetensors file's header (cheap), a torch file as `unsafe` loads it. Names the file that is not."""
    from safetensors import SafetensorError, safe_open

    for path in sorted(directory.rglob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt"):
                pass
        except (SafetensorError, OSError) as err:
            raise ValueError(
                f"{path} is not a readable safetensors file ({err}): copy it again, or train the run again"
            ) from None
    for path in sorted(p for ext in ("bin", "pt", "pth") for p in directory.rglob(f"*.{ext}")):
        if why := unreadable(path) or unsafe(path):
            raise ValueError(f"{path}: {why}; only plain tensors are loaded")


def _fsync(path: Path) -> None:
    """Flush `path` (a file, or a folder's entries) to the disk, so a power loss cannot undo the rename."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class RecordProgress(CheckpointListener):
    """Rewrite run.json once each checkpoint is complete on disk (AtomicCheckpoint says when): a killed run
    shows `running` with its last checkpointed step, and `progress` never names a checkpoint still being
    written."""

    def __init__(self, record: RunRecord, run_dir: Path) -> None:
        self.record, self.run_dir = record, run_dir

    def on_checkpoint_written(self, trainer: pl.Trainer, path: Path) -> None:
        self.record.progress = {"checkpoint_step": trainer.global_step, "checkpoint_epoch": trainer.current_epoch}
        self.record.write(self.run_dir)
