"""Training data that needs no download, and a batch order that can be resumed mid-epoch.

`synthetic`: a classification set generated from the config's seed with its own torch.Generator
(the global RNG is untouched): each class has a fixed random template image, each sample is its
class's template plus noise, so a model can learn it and the loss falls. The same seed gives the
same tensors on every machine.

The order: epoch e visits the samples in `randperm(n)` of a generator seeded with (seed, e), in
batches; `EpochBatchSampler` yields them from a saved position, so a resumed run sees exactly the
batches that an uninterrupted one would have seen."""

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

# Keeps the per-epoch seeds of nearby run seeds apart.
EPOCH_STRIDE = 1_000_003
# Noise around each class template: learnable, not trivial.
NOISE = 1.0


class TensorPairs(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Inputs and labels held in memory; `__getitems__` hands the loader a whole batch at once."""

    def __init__(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        self.inputs = inputs
        self.labels = labels

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inputs[index], self.labels[index]

    def __getitems__(self, indexes: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        at = torch.as_tensor(indexes)
        return self.inputs[at], self.labels[at]


def synthetic(samples: int, classes: int, channels: int, size: int, seed: int, split: int = 0) -> TensorPairs:
    """Split 0 is the training set, split 1 the held-out set: the same class templates, other noise."""
    templates = torch.randn(classes, channels, size, size, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed * EPOCH_STRIDE + 7919 * (split + 1))
    labels = torch.randint(0, classes, (samples,), generator=g)
    inputs = templates[labels] + NOISE * torch.randn(samples, channels, size, size, generator=g)
    return TensorPairs(inputs, labels)


class EpochBatchSampler(Sampler[list[int]]):
    """Batches of sample indexes for one epoch at a time, from `position` (batches already done)."""

    def __init__(self, samples: int, batch_size: int, seed: int) -> None:
        self.samples = samples
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.position = 0

    def __len__(self) -> int:
        return -(-self.samples // self.batch_size) - self.position

    def set_epoch(self, epoch: int, position: int = 0) -> None:
        self.epoch, self.position = epoch, position

    def order(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * EPOCH_STRIDE + epoch)
        return torch.randperm(self.samples, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        order = self.order(self.epoch).tolist()
        for start in range(self.position * self.batch_size, self.samples, self.batch_size):
            yield order[start : start + self.batch_size]

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch, "position": self.position}


def _batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset already returns a stacked batch through `__getitems__` (torch >= 2.0); torch 1.13 (the
    runner image's Debian build) fetches sample by sample, so the samples are stacked here, into the same
    tensors. Module-level: workers pickle it."""
    if isinstance(batch, list):
        return torch.stack([x for x, _ in batch]), torch.stack([y for _, y in batch])
    return batch


def loader(dataset: TensorPairs, sampler: EpochBatchSampler) -> DataLoader[Any]:
    """In-process loading (the data is in memory). The loader's own generator is fixed: otherwise
    each new epoch's iterator would draw its base seed from the global RNG, which a resumed run
    restores mid-epoch, and the two runs' RNG streams would part."""
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=_batch, generator=torch.Generator().manual_seed(0))
