"""Datasets (registered by type) and the loaders that feed them to a model."""
from torch.utils import data

from basicsr.utils.auto_import import import_modules
from basicsr.utils.registry import DATASET_REGISTRY

import_modules(__name__, __file__, '_dataset')

DEFAULT_TYPE = {'train': 'FusionTrainDataset'}


def default_dataset_type(phase):
    """The dataset type a set without ``type:`` gets: training sets crop, test and val sets do not."""
    return DEFAULT_TYPE.get(phase, 'FusionTestDataset')


def build_dataset(dataset_opt):
    """Build the dataset named by ``dataset_opt['type']`` (default: :func:`default_dataset_type`)."""
    return DATASET_REGISTRY.get(dataset_opt.get('type', default_dataset_type(dataset_opt.get('phase'))))(dataset_opt)


def build_test_loader(dataset, dataset_opt, device):
    """One whole image per batch, in order (sizes differ inside a set)."""
    workers = dataset_opt.get('num_worker_per_gpu', 0)
    return data.DataLoader(dataset, batch_size=1, shuffle=False, num_workers=workers,
                           pin_memory=device.type == 'cuda', persistent_workers=False)
