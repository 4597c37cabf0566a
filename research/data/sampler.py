"""Training order that depends only on (seed, epoch), optionally grouped by length; evaluation order by length.

Why not `shuffle=True`: a DataLoader's shuffle draws each epoch's order from one generator that advances
across epochs, so a run resumed at epoch 3 from a checkpoint would see another order than the run that
was never stopped. Here epoch e's order is a pure function of `seed + e` (Lightning calls `set_epoch`),
so resuming is exact.

Length grouping (`group_by_length`): examples are shuffled, cut into mega-batches of
`batch_size * mega_batches` examples, each sorted by length, cut into batches, and the batches are
shuffled again (a short last batch stays last): batches hold examples of similar length (little padding) in random order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    def __init__(
        self, lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool = False, mega_batches: int = 50
    ) -> None:
        self.lengths, self.batch_size, self.seed = list(lengths), batch_size, seed
        self.group_by_length, self.mega_batches = group_by_length, mega_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        if not self.group_by_length:
            return iter(order)
        size = self.batch_size * self.mega_batches
        batches = []
        for start in range(0, len(order), size):
            mega = sorted(order[start : start + size], key=lambda i: -self.lengths[i])
            batches += [mega[i : i + self.batch_size] for i in range(0, len(mega), self.batch_size)]
        # Only the very last batch can be short; it stays last so the DataLoader's batches match these.
        full, short = (batches[:-1], batches[-1:]) if len(batches[-1]) < self.batch_size else (batches, [])
        shuffled = [full[b] for b in torch.randperm(len(full), generator=generator).tolist()] + short
        return iter(i for batch in shuffled for i in batch)


class LengthOrder(Sampler[int]):
    """Evaluation order: longest first, so that each batch holds examples of similar length. A batch is
    padded to its longest row and generation runs until its slowest row stops, so similar lengths cut the
    padding the model computes over. Longest first: a batch that does not fit in memory fails at once,
    and the time left shown is an upper bound. The loop restores the split's order from each row's `index`."""

    def __init__(self, lengths: Sequence[int]) -> None:
        self.order = sorted(range(len(lengths)), key=lambda i: -lengths[i])  # stable: ties keep split order

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[int]:
        return iter(self.order)
