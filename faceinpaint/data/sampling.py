"""Sharding evaluation splits across DDP ranks without the padding of ``DistributedSampler``.

``torch.utils.data.DistributedSampler`` pads every shard to the same length by repeating the
first samples, so with 7 images on 2 ranks image 0 is evaluated twice: a test metric averages
it twice and the latent search writes it twice. :class:`UnpaddedDistributedSampler` gives rank
``r`` of ``W`` the indices ``r, r + W, r + 2W, ...`` in order: every index exactly once over all
ranks, shard lengths differing by at most one. Per-sample metrics with ``cat`` states then gather
exactly the single-process set.

Uneven shards are safe for val/test/predict because nothing there runs a collective per batch
(DDP syncs buffers on the first evaluation forward only, which every non-empty shard runs); they
are not for training, where Lightning's padded ``DistributedSampler`` stays.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized

from torch.utils.data import DistributedSampler


def shard_indices(length: int, rank: int, world_size: int) -> range:
    """Rank ``rank``'s indices of ``range(length)``: ``rank, rank + world_size, ...``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank} of {world_size}")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    return range(rank, length, world_size)


class UnpaddedDistributedSampler(DistributedSampler):
    """In-order, unshuffled shard of a dataset for one rank; no index repeated or dropped overall.

    A ``DistributedSampler`` subclass so that Lightning (``use_distributed_sampler``) keeps it
    instead of injecting its own padded sampler.

    Args:
        dataset: anything with ``__len__``.
        num_replicas: world size (number of ranks).
        rank: this process's global rank.
    """

    def __init__(self, dataset: Sized, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        self.indices = shard_indices(len(dataset), rank, num_replicas)
        self.num_samples = len(self.indices)
        self.total_size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples
