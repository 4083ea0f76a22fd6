"""Datasets (registered by type) and the loaders that feed them to a model."""
import os

from torch.utils import data

from basicsr.utils.auto_import import import_modules
from basicsr.utils.options import dataset_option
from basicsr.utils.registry import DATASET_REGISTRY

import_modules(__name__, __file__, '_dataset')

DEFAULT_TYPE = {'train': 'FusionTrainDataset'}


def default_dataset_type(phase):
    """The dataset type a set without ``type:`` gets: training sets crop, test and val sets do not."""
    return DEFAULT_TYPE.get(phase, 'FusionTestDataset')


def build_dataset(dataset_opt):
    """Build the dataset named by ``dataset_opt['type']`` (default: :func:`default_dataset_type`)."""
    return DATASET_REGISTRY.get(dataset_opt.get('type', default_dataset_type(dataset_opt.get('phase'))))(dataset_opt)


MAX_AUTO_WORKERS = 4  # enough to keep one process fed with whole images or 128-pixel crops


def usable_cores():
    """The cores this process may run on (its affinity, as PyTorch's loader counts them)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loader_workers(requested='auto'):
    """Loader worker processes for one process of a run: never more than its share of the cores.

    ``auto`` takes half the share (the other half computes), at most :data:`MAX_AUTO_WORKERS`; a
    number is capped at the share, so PyTorch never warns of more workers than cores.

    Example:
        >>> loader_workers(0)
        0
    """
    share = max(1, usable_cores() // int(os.environ.get('LOCAL_WORLD_SIZE', 1)))
    if requested == 'auto':
        return min(MAX_AUTO_WORKERS, share // 2)
    return min(requested, share)


def build_test_loader(dataset, dataset_opt, device):
    """One whole image per batch, in order (sizes differ inside a set)."""
    workers = loader_workers(dataset_option(dataset_opt, 'num_worker_per_gpu'))
    return data.DataLoader(dataset, batch_size=1, shuffle=False, num_workers=workers,
                           pin_memory=device.type == 'cuda', persistent_workers=False)
