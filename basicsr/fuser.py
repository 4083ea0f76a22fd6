"""The Python API: fuse infrared/visible pairs from a notebook or a pipeline, as the command line does."""
from pathlib import Path

import numpy as np
import torch

from basicsr.data.fusion_test_dataset import image_to_tensor, match_pair
from basicsr.models import RANDOM_WEIGHTS
from basicsr.models.fusion_engine import FusionEngine
from basicsr.utils.errors import InputError, OptionError, reworded
from basicsr.utils.img_util import array_to_rgb, read_image, write_image

DEFAULT_WEIGHTS = 'pretrained_models/FISCNet_official.pth'
DEFAULT_NETWORK = {'type': 'FISCNet', 'vis_channels': 1, 'inf_channels': 1, 'n_feat': 16}
DEVICE_TO_NUM_GPU = {'auto': 'auto', 'cpu': 0, 'cuda': 1}
# The model's advice names YAML options; Fuser's names for them are its arguments.
ARGUMENT_ADVICE = {
    'num_gpu: 1 asks for CUDA': "device='cuda' asks for CUDA",
    'set num_gpu: auto or 0 to run on the CPU': "use device='cpu' or 'auto'",
    'set path.param_key_g to one of those': 'give param_key as one of those',
    'check network_g against the checkpoint': 'give the network= options the checkpoint was trained with',
    ' or set path.strict_load_g: false': '',  # what fits is not enough to fuse
}


class Fuser:
    """A trained fusion network with the pipeline's reading and writing around it.

    ``fuser(ir, vi)`` returns the fused image exactly as ``test.py`` and ``scripts/fuse.py``
    write it (the same pixels, as an RGB array).

    Args:
        weights (str | Path): the checkpoint; ``'random'`` gives untrained weights (smoke tests).
        device (str): ``'auto'`` (CUDA when present), ``'cpu'`` or ``'cuda'``.
        network (dict | None): ``network_g`` options; default FISCNet as released.
        param_key (str): the checkpoint's state-dict key (``params`` is used when absent).
        execution (str): ``auto``, ``eager``, ``channels_last`` or ``compile``.
        tile (int | None), tile_overlap (int): fuse in overlapping tiles (large images).
        resize_vi_to_ir (bool): resize the visible image to the infrared size instead of failing.

    Raises:
        InputError: the checkpoint is missing, damaged or does not fit the network.
        OptionError: an unknown device, execution mode or network option.

    Example:
        >>> import numpy as np
        >>> from basicsr import Fuser
        >>> fuser = Fuser(weights='random', device='cpu')  # use your checkpoint for real results
        >>> ir = np.zeros((64, 80), np.uint8)               # gray; uint16 works too
        >>> vi = np.full((64, 80, 3), 128, np.uint8)        # RGB (or gray)
        >>> fused = fuser(ir, vi)
        >>> fused.shape, fused.dtype
        ((64, 80, 3), dtype('uint8'))
    """

    def __init__(self, weights=DEFAULT_WEIGHTS, device='auto', network=None, param_key='params_ema',
                 execution='auto', tile=None, tile_overlap=32, resize_vi_to_ir=False):
        if device not in DEVICE_TO_NUM_GPU:
            raise OptionError(f"device: {device!r} is not valid; use one of: {', '.join(DEVICE_TO_NUM_GPU)}")
        if weights != RANDOM_WEIGHTS and not Path(weights).is_file():
            raise InputError(f'{weights}: checkpoint not found; fetch the released weights with '
                             '"python scripts/download_pretrained_models.py" or give the file')
        self.resize_vi_to_ir = resize_vi_to_ir
        opt = {'num_gpu': DEVICE_TO_NUM_GPU[device], 'network_g': dict(network or DEFAULT_NETWORK),
               'execution': execution, 'tile': tile, 'tile_overlap': tile_overlap,
               'path': {'pretrain_network_g': None if weights == RANDOM_WEIGHTS else str(weights),
                        'param_key_g': param_key}}
        try:
            self.engine = FusionEngine.from_options(opt)
        except (InputError, OptionError) as err:
            raise reworded(err, ARGUMENT_ADVICE) from None

    @property
    def device(self):
        return self.engine.device

    def __call__(self, ir, vi):
        """Fuse one pair.

        Args:
            ir, vi: image files (str or Path) or arrays: (H, W) gray, (H, W, 3) RGB or
                (H, W, 4) RGBA, uint8 or uint16. A colour infrared image is read as its first
                channel, as the files are.

        Returns:
            np.ndarray: (H, W, 3) uint8 RGB, the infrared image's size.

        Raises:
            InputError: an unreadable file, an unsupported array, sizes that differ (unless
                ``resize_vi_to_ir``), an image below the network's minimum size, or a pair too
                large for the memory.
        """
        names = {'ir': self._name(ir, 'ir'), 'vi': self._name(vi, 'vi')}
        images = {'ir': self._read(ir, names['ir']), 'vi': self._read(vi, names['vi'])}
        images = match_pair(images, names, self.resize_vi_to_ir)
        ir, vi = image_to_tensor(images['ir'][:, :, :1])[None], image_to_tensor(images['vi'])[None]
        return self.engine.to_uint8(self.engine.fuse(ir, vi, f"{names['ir']} + {names['vi']}"))[0]

    def fuse_files(self, ir, vi, out):
        """Fuse the pair of files ``ir`` and ``vi`` and write the result to ``out`` (a .png path)."""
        fused = self(ir, vi)
        write_image(Path(out), fused)
        return fused

    @staticmethod
    def _name(image, role):
        return str(image) if isinstance(image, (str, Path)) else f'the {role} array'

    @staticmethod
    def _read(image, name):
        if isinstance(image, (str, Path)):
            return read_image(image)
        if isinstance(image, torch.Tensor):
            raise InputError(f'{name}: give a numpy array (H, W[, C]) of uint8 or uint16, not a tensor')
        return array_to_rgb(np.asarray(image), name)
