"""The training sampler: an enlarged, shuffled epoch shared out among processes, resumable mid-epoch."""
import math

import numpy as np
from torch.utils.data import Sampler


class EnlargedSampler(Sampler):
    """Yield ``(index, crop_seed)`` keys for one process of ``num_replicas``.

    An epoch is the file list repeated ``ratio`` times and shuffled with ``(seed, epoch)``, padded
    to a multiple of ``num_replicas``. Process ``rank`` takes the positions ``rank, rank + n, ...``,
    so that step ``k`` of all processes together covers positions ``[k B, (k + 1) B)`` for the
    global batch ``B``: 1 process x 4 and 2 processes x 2 see the same samples. The crop seed is
    ``(seed, epoch, position)``, so crops do not depend on the process, the worker or the run
    being resumed.

    Args:
        dataset_size (int): number of pairs.
        num_replicas (int): number of processes.
        rank (int): this process.
        ratio (int): ``dataset_enlarge_ratio``, repetitions of the file list per epoch.
        seed (int): the run's seed.
        shuffle (bool): shuffle each epoch (otherwise the repeated file list in order).
    """

    def __init__(self, dataset_size, num_replicas=1, rank=0, ratio=1, seed=0, shuffle=True):
        self.dataset_size = dataset_size
        self.num_replicas = num_replicas
        self.rank = rank
        self.seed = seed
        self.shuffle = shuffle
        self.total_size = math.ceil(dataset_size * ratio / num_replicas) * num_replicas
        self.epoch = 0
        self.start = 0

    def set_epoch(self, epoch, start=0):
        """Iterate over ``epoch`` from global ``start`` position (positions already trained are skipped)."""
        self.epoch = epoch
        self.start = start

    def epoch_order(self):
        """The dataset index at each global position of the current epoch."""
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.total_size)
        else:
            order = np.arange(self.total_size)
        # The padding to a multiple of the processes repeats a few pairs, as any index is taken mod N.
        return order % self.dataset_size

    def positions(self):
        """This process's global positions from ``start`` on."""
        first = self.start + (self.rank - self.start) % self.num_replicas
        return range(first, self.total_size, self.num_replicas)

    def __iter__(self):
        order = self.epoch_order()
        for position in self.positions():
            yield int(order[position]), (self.seed, self.epoch, position)

    def __len__(self):
        return len(self.positions())
