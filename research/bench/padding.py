"""Share of padding in what the training loop processes, with and without length-grouped batches,
over one epoch of the DataModule's own `train_dataloader()` (dynamic padding to each batch's longest)."""

from __future__ import annotations

from research.data import DataModule


def padding_share(datamodule: DataModule) -> dict[str, dict[str, float]]:
    out = {}
    saved = datamodule.group_by_length
    try:
        for grouped in (False, True):
            datamodule.group_by_length = grouped
            real = processed = batches = 0
            for batch in datamodule.train_dataloader():
                mask = batch["attention_mask"]
                real, processed, batches = real + int(mask.sum()), processed + mask.numel(), batches + 1
            out["grouped" if grouped else "random"] = {
                "padded_pct": 100.0 * (processed - real) / processed,
                "tokens_processed": processed,
                "real_tokens": real,
                "batches": batches,
            }
    finally:
        datamodule.group_by_length = saved
    return out
