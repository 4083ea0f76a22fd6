"""FusionEngine: runs a fusion network on (infrared, visible) pairs, as test.py, fuse.py, the Python
API and validation all do: device, execution mode, colour conversion, tiles, memory and 8 bits."""
import time
from dataclasses import dataclass
from typing import Iterator, List, Optional

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from basicsr.archs import build_network
from basicsr.utils.checkpoint import load_params, read_params
from basicsr.utils.color_util import rgb_to_ycrcb, ycrcb_to_rgb
from basicsr.utils.device import select_device
from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.execution import check_mode, prepare_input, prepare_network, resolve_mode
from basicsr.utils.img_util import TO_8BIT
from basicsr.utils.logger import get_root_logger
from basicsr.utils.memory import check_cpu_inference_fits, is_out_of_memory, out_of_memory_error
from basicsr.utils.options import option_value
from basicsr.utils.tiling import check_tiling, fuse_in_tiles


@dataclass
class FusedImage:
    """One fused image of a loader: its file stem, the (H, W, 3) uint8 RGB result and the
    loader's item (``ir`` (1, H, W), ``vi`` (3, H, W) in [0, 1] ...)."""
    stem: str
    fused: np.ndarray
    item: dict


def load_network(opt) -> nn.Module:
    """``network_g`` with the weights of ``path.pretrain_network_g`` when it is set.

    Raises:
        InputError: the checkpoint cannot be read or does not fit ``network_g`` (strict loading).
    """
    net = build_network(opt['network_g'])
    weights = option_value(opt, 'path.pretrain_network_g')
    if weights:
        params = read_params(weights, option_value(opt, 'path.param_key_g'))
        load_params(net, params, option_value(opt, 'path.strict_load_g'), source=str(weights))
    return net


def check_engine_settings(execution: str, tile: Optional[int], tile_overlap: int, to_8bit: str) -> None:
    """Raises OptionError for an unknown execution mode or 8-bit conversion, or tiles that do not work."""
    check_mode(execution)
    if to_8bit not in TO_8BIT:
        raise OptionError(f"to_8bit: {to_8bit!r} is not a conversion; use one of: {', '.join(TO_8BIT)}")
    if tile:
        try:
            check_tiling(tile, tile_overlap)
        except ValueError as err:
            raise OptionError(f'tile: {tile}, tile_overlap: {tile_overlap}: {err}') from None


def engine_settings(opt) -> dict:
    """The engine's keyword arguments as the options ``execution``, ``tile``, ``tile_overlap`` and
    ``to_8bit`` give them, checked (OptionError)."""
    settings = {'execution': option_value(opt, 'execution'), 'tile': opt.get('tile'),
                'tile_overlap': option_value(opt, 'tile_overlap'), 'to_8bit': option_value(opt, 'to_8bit')}
    check_engine_settings(**settings)
    return settings


class FusionEngine:
    """Fuses batches with ``net``: the visible luma with the infrared image; the visible chroma is kept.

    Args:
        net (nn.Module): ``net(vi_ycrcb, ir) -> fused Y`` (B, 1, H, W), not clamped, in eval mode.
        device (torch.device): where ``net`` is and the batches go.
        execution (str): ``auto``, ``eager``, ``channels_last`` or ``compile``
            (``basicsr/utils/execution.py``).
        tile (int | None), tile_overlap (int): fuse in overlapping tiles of ``tile`` pixels.
        to_8bit (str): ``round`` or ``stretch_truncate`` (SeAFusion's released saving).
        non_finite (str): ``raise`` an InputError for a NaN/Inf output, or ``warn`` and go on
            (validation, where a diverging run must not stop at an image).

    Raises:
        OptionError: an unknown execution mode, 8-bit conversion or tiling.
    """

    def __init__(self, net: nn.Module, device: torch.device, execution: str = 'eager', tile: Optional[int] = None,
                 tile_overlap: int = option_value({}, 'tile_overlap'), to_8bit: str = option_value({}, 'to_8bit'),
                 non_finite: str = 'raise'):
        check_engine_settings(execution, tile, tile_overlap, to_8bit)
        self.device = device
        self.execution = resolve_mode(execution, device)
        self.net = net  # the module, e.g. for its parameters; run as ``execution`` says by self.forward
        self.forward = prepare_network(net, self.execution)
        self.tile, self.tile_overlap = tile, tile_overlap
        self.to_8bit = to_8bit
        self.non_finite = non_finite
        self.rate = None  # images per second of the last completed fuse_loader

    @classmethod
    def from_options(cls, opt, non_finite: str = 'raise') -> 'FusionEngine':
        """The engine ``opt`` describes: the network of ``network_g`` with the checkpoint of ``path``,
        on the device of ``num_gpu``, run as ``execution``, ``tile``, ``tile_overlap``, ``to_8bit`` say."""
        settings = engine_settings(opt)
        device = select_device(option_value(opt, 'num_gpu'), opt.get('dist', False))
        net = load_network(opt)
        engine = cls(net.to(device).eval(), device, non_finite=non_finite, **settings)
        get_root_logger().info(f"{type(net).__name__} on {device} ({engine.execution}), weights: "
                               f"{option_value(opt, 'path.pretrain_network_g') or 'untrained'}")
        return engine

    def fuse_y(self, ir: torch.Tensor, vi: torch.Tensor):
        """The raw fused Y (not clamped) and the visible YCrCb of ``ir`` (B, 1, H, W) and ``vi``
        (B, 3, H, W) RGB in [0, 1], whole or in tiles."""
        vi_ycrcb = rgb_to_ycrcb(vi.to(self.device, non_blocking=True))
        ir = ir.to(self.device, non_blocking=True)

        def run(vi_part, ir_part):
            return self.forward(prepare_input(vi_part, self.execution), prepare_input(ir_part, self.execution))

        if self.tile:
            return fuse_in_tiles(run, vi_ycrcb, ir, self.tile, self.tile_overlap), vi_ycrcb
        return run(vi_ycrcb, ir), vi_ycrcb

    @torch.no_grad()
    def fuse(self, ir: torch.Tensor, vi: torch.Tensor, name: str = 'the batch') -> torch.Tensor:
        """The fused batch (B, 3, H, W) RGB in [0, 1]: the clamped fused Y with the visible chroma.

        Raises:
            InputError: the batch does not fit in memory (checked before starting on the CPU,
                where the kernel would kill the process), or the output is NaN/Inf
                (``non_finite='raise'``); ``name`` is what the message calls the batch.
        """
        batch, _, height, width = vi.shape
        if self.device.type == 'cpu':
            check_cpu_inference_fits(name, batch, height, width, tile=self.tile)
        try:
            raw_y, vi_ycrcb = self.fuse_y(ir, vi)
        except RuntimeError as err:  # torch.OutOfMemoryError included
            if not is_out_of_memory(err):
                raise
            if self.device.type == 'cuda':
                torch.cuda.empty_cache()
            raise out_of_memory_error(name, batch, height, width, self.device, tile=self.tile) from None
        if not torch.isfinite(raw_y).all():  # clamping would hide Inf as white
            self._report_non_finite(name)
        return ycrcb_to_rgb(torch.cat([raw_y.clamp(0, 1), vi_ycrcb[:, 1:]], dim=1))

    def _report_non_finite(self, name):
        message = f'{name}: the network output is not finite (NaN or Inf)'
        if self.non_finite == 'warn':
            get_root_logger().warning(f'{message}; the weights may be diverging')
            return
        raise InputError(f'{message}; the weights are damaged or diverged, or the input is extreme; '
                         'nothing was written for this image')

    def to_uint8(self, fused: torch.Tensor) -> List[np.ndarray]:
        """A fused batch as (H, W, 3) uint8 RGB arrays, converted as ``to_8bit`` says."""
        convert = TO_8BIT[self.to_8bit]
        return [convert(image.permute(1, 2, 0).float().cpu().numpy()) for image in fused]

    def fuse_loader(self, loader, desc: str) -> Iterator[FusedImage]:
        """Fuse every batch of ``loader`` (items with ``ir``, ``vi`` and ``stem``), one image at a
        time, behind a progress bar labelled ``desc``; ``self.rate`` is then the images per second
        (reading and what the caller does with each image included)."""
        count, start = 0, time.perf_counter()
        for data in tqdm(loader, desc=desc, unit='img', leave=False):
            fused = self.to_uint8(self.fuse(data['ir'], data['vi'], ', '.join(data['stem'])))
            for i, image in enumerate(fused):
                yield FusedImage(data['stem'][i], image, {key: value[i] for key, value in data.items()})
                count += 1
        self.rate = count / max(time.perf_counter() - start, 1e-9)
