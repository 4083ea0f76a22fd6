"""Infrared/visible pairs (and optional masks) read whole, for testing and validation."""
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils import data

from basicsr.data.pairing import pair_by_stem
from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.img_util import read_image
from basicsr.utils.options import dataset_option
from basicsr.utils.registry import DATASET_REGISTRY

# The released project's BasicSR names: gt was the infrared image, lq the visible one.
ROOT_ALIASES = {'dataroot_ir': 'dataroot_gt', 'dataroot_vi': 'dataroot_lq'}
MIN_SIZE = 8  # FISCNet's smallest input (H and W); see basicsr/archs/fiscnet_arch.py


def resolve_root(opt, key, required=True):
    """The folder of ``key`` or of its released alias; both given is an error."""
    alias = ROOT_ALIASES.get(key)
    if opt.get(key) is not None and alias and opt.get(alias) is not None:
        raise OptionError(f"dataset '{opt.get('name')}': give {key} or its alias {alias}, not both")
    root = opt.get(key) if opt.get(key) is not None else opt.get(alias)
    if root is None and required:
        raise OptionError(f"dataset '{opt.get('name')}' needs '{key}' (the folder of its images)")
    return root


def check_distinct_folders(folders, name=None):
    """Each role needs its own folder: one folder given twice would pair every image with itself.

    Raises:
        InputError: two roles name the same folder.
    """
    seen = {}
    for role, folder in folders.items():
        resolved = Path(folder).resolve()
        if resolved in seen:
            where = f"dataset '{name}': " if name else ''
            raise InputError(f'{where}the {role} folder {folder} is also the {seen[resolved]} folder; '
                             'give each its own folder')
        seen[resolved] = role


def image_to_tensor(img):
    """(H, W, C) float32 array -> (C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def load_sample(paths, resize_vi_to_ir=False, min_size=MIN_SIZE):
    """Read one ``{'ir': path, 'vi': path[, 'mask': path]}`` sample as float32 RGB arrays.

    Raises:
        InputError: a file is unreadable, sizes differ (unless ``resize_vi_to_ir``) or the image
            is smaller than ``min_size`` pixels in height or width.
    """
    images = {role: read_image(path) for role, path in paths.items()}
    return match_pair(images, paths, resize_vi_to_ir, min_size)


def match_pair(images, names, resize_vi_to_ir=False, min_size=MIN_SIZE):
    """Check that ``images`` (role -> (H, W, 3) float32) form one pair the network can fuse.

    Args:
        names (dict): role -> the file (or label) each message names.

    Returns:
        dict: ``images``, the visible one resized to the infrared size when ``resize_vi_to_ir``.

    Raises:
        InputError: sizes differ (unless ``resize_vi_to_ir``) or the infrared image is smaller
            than ``min_size`` pixels in height or width.
    """
    ir_h, ir_w = images['ir'].shape[:2]
    if ir_h < min_size or ir_w < min_size:
        raise InputError(f"{names['ir']}: {ir_w}x{ir_h} is below the network's minimum size "
                         f'{min_size}x{min_size}; upscale or pad the image, or remove the pair')
    for role in ('vi', 'mask'):
        if role not in images or images[role].shape[:2] == (ir_h, ir_w):
            continue
        h, w = images[role].shape[:2]
        if role == 'vi' and resize_vi_to_ir:
            shrink = h * w > ir_h * ir_w
            images['vi'] = cv2.resize(images['vi'], (ir_w, ir_h),
                                      interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        else:
            hint = ' or enable resize_vi_to_ir' if role == 'vi' else ''
            raise InputError(f'{names[role]}: {w}x{h} but its infrared partner {Path(str(names["ir"])).name} is '
                             f'{ir_w}x{ir_h}; register the pair to one size{hint}')
    return images


@DATASET_REGISTRY.register()
class FusionTestDataset(data.Dataset):
    """Pairs ``dataroot_ir`` and ``dataroot_vi`` images by file stem, whole images.

    Options: ``dataroot_ir`` (alias ``dataroot_gt``), ``dataroot_vi`` (alias ``dataroot_lq``),
    optional ``dataroot_mask``, ``resize_vi_to_ir`` (default false).

    Items: ``ir`` (1, H, W) and ``vi`` (3, H, W) RGB tensors in [0, 1] (``mask`` (1, H, W) when
    masks are given), ``stem``, ``ir_path``, ``vis_path``. A 3-channel infrared file gives its
    first (red) channel, as the released pipeline does; gray files are replicated to RGB.
    """

    @classmethod
    def option_keys(cls):
        return {'dataroot_ir', 'dataroot_vi', 'dataroot_mask', 'resize_vi_to_ir', *ROOT_ALIASES.values()}

    def __init__(self, opt, samples=None):
        """``samples``: an explicit ``[(stem, {'ir': path, 'vi': path})]`` list instead of folders."""
        super().__init__()
        self.opt = opt
        if samples is not None:
            self.samples = samples
            return
        folders = {'ir': resolve_root(opt, 'dataroot_ir'), 'vi': resolve_root(opt, 'dataroot_vi')}
        if opt.get('dataroot_mask') is not None:
            folders['mask'] = opt['dataroot_mask']
        check_distinct_folders(folders, opt.get('name'))
        self.samples = pair_by_stem(folders)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, index):
        stem, paths = self.samples[index]
        images = load_sample(paths, dataset_option(self.opt, 'resize_vi_to_ir'))
        item = {'ir': image_to_tensor(images['ir'][:, :, :1]), 'vi': image_to_tensor(images['vi']),
                'stem': stem, 'ir_path': str(paths['ir']), 'vis_path': str(paths['vi'])}
        if 'mask' in images:
            item['mask'] = image_to_tensor(images['mask'][:, :, :1])
        return item
