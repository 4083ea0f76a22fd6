"""Training triples (infrared, visible, visible-saliency mask) as random aligned crops."""
import numpy as np
from torch.utils import data

from basicsr.data.fusion_test_dataset import (MIN_SIZE, ROOT_ALIASES, check_distinct_folders, image_to_tensor,
                                              load_sample, resolve_root)
from basicsr.data.pairing import pair_by_stem
from basicsr.data.transforms import paired_random_crop, paired_random_flip
from basicsr.utils.errors import OptionError
from basicsr.utils.options import dataset_option
from basicsr.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class FusionTrainDataset(data.Dataset):
    """Pairs ``dataroot_ir``, ``dataroot_vi`` and ``dataroot_mask`` images by stem; random crops.

    Options: ``dataroot_ir`` (alias ``dataroot_gt``), ``dataroot_vi`` (alias ``dataroot_lq``),
    ``dataroot_mask`` (needed by ``MaskFusionL1Loss``), ``gt_size`` (crop side, default 128),
    ``use_hflip`` (alias ``use_flip``; default true), ``use_rot`` (vertical flip and transpose;
    default true), ``resize_vi_to_ir``; the sampler reads ``dataset_enlarge_ratio`` and
    ``use_shuffle``.

    Items are indexed by ``(index, seed)`` keys from :class:`basicsr.data.sampler.EnlargedSampler`;
    ``seed`` (an int or a tuple of ints) fixes the crop and flips, so a sample is the same in
    whichever process or worker reads it. A plain ``index`` is its own seed.

    Items: ``ir`` (1, S, S), ``vi`` (3, S, S) RGB and, with masks, ``mask`` (1, S, S), all in
    [0, 1] (binary 0/255 mask files give exactly 0 and 1), and ``stem``.
    """

    @classmethod
    def option_keys(cls):
        return {'dataroot_ir', 'dataroot_vi', 'dataroot_mask', 'resize_vi_to_ir', 'gt_size', 'use_hflip',
                'use_flip', 'use_rot', 'use_shuffle', 'dataset_enlarge_ratio', *ROOT_ALIASES.values()}

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.gt_size = dataset_option(opt, 'gt_size')
        if not isinstance(self.gt_size, int) or self.gt_size < MIN_SIZE:
            raise OptionError(f"dataset '{opt.get('name')}': gt_size must be an integer >= {MIN_SIZE}, "
                              f'got {self.gt_size!r}')
        if 'use_hflip' in opt and 'use_flip' in opt:
            raise OptionError(f"dataset '{opt.get('name')}': give use_hflip or its alias use_flip, not both")
        self.hflip = opt.get('use_hflip', dataset_option(opt, 'use_flip'))
        self.rot = dataset_option(opt, 'use_rot')
        folders = {'ir': resolve_root(opt, 'dataroot_ir'), 'vi': resolve_root(opt, 'dataroot_vi')}
        if opt.get('dataroot_mask') is not None:
            folders['mask'] = opt['dataroot_mask']
        check_distinct_folders(folders, opt.get('name'))
        self.samples = pair_by_stem(folders)
        self.has_mask = 'mask' in folders

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, key)
        stem, paths = self.samples[index]
        rng = np.random.default_rng(seed)
        images = load_sample(paths, dataset_option(self.opt, 'resize_vi_to_ir'))
        images = paired_random_crop(images, self.gt_size, rng, paths['ir'])
        images = paired_random_flip(images, rng, hflip=self.hflip, vflip=self.rot, transpose=self.rot)
        item = {'ir': image_to_tensor(images['ir'][:, :, :1]), 'vi': image_to_tensor(images['vi']), 'stem': stem}
        if self.has_mask:
            item['mask'] = image_to_tensor(images['mask'][:, :, :1])
        return item
