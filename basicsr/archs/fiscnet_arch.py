"""FISCNet: infrared-visible fusion by frequency integration and spatial compensation.

The parameter shapes follow the released checkpoint; its key names (``correction1..3``, ``vis``,
``inf``) are mapped to this file's (``calibration1..3``, ``vi``, ``ir``) by
:func:`checkpoint_filter_fn` when it is loaded, so its ``params`` load strictly.
"""
import re
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from torch import nn

# CDC stays importable from here: it is part of FISCNet's public building blocks.
from basicsr.archs.fusion_blocks import (CDC, CONV_SLOPE, DenseBlock, EdgeBlock, InvBlock, Refine,  # noqa: F401
                                         conv1, conv3)
from basicsr.utils.registry import ARCH_REGISTRY

MIN_SIZE = 8  # at 1/4 scale the instance norms must still see more than one pixel
# Released key parts -> this file's names; every key of the released checkpoint matches at most these.
RELEASED_KEY_RENAMES = ((re.compile(r'^correction(\d)\.'), r'calibration\1.'),
                        (re.compile(r'(^|\.)vis\.'), r'\1vi.'), (re.compile(r'(^|\.)inf\.'), r'\1ir.'),
                        (re.compile(r'_vis\.'), '_vi.'), (re.compile(r'_inf\.'), '_ir.'))


def checkpoint_filter_fn(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The released checkpoint's keys in this file's names (other keys unchanged, so applying it
    twice changes nothing).

    Example:
        >>> list(checkpoint_filter_fn({'correction2.interaction.spa_att_inf.0.weight': 0, 'reconstruction.x': 1}))
        ['calibration2.interaction.spa_att_ir.0.weight', 'reconstruction.x']
    """
    renamed = {}
    for key, value in state_dict.items():
        for pattern, replacement in RELEASED_KEY_RENAMES:
            key = pattern.sub(replacement, key)
        renamed[key] = value
    return renamed


def unit_phasor(spectrum: torch.Tensor) -> torch.Tensor:
    """``e^{i angle(X)}`` computed as ``X / |X|``; a zero coefficient gives 1, as ``angle(0) = 0``."""
    magnitude = spectrum.abs()
    nonzero = magnitude > 0
    # The safe denominator keeps the gradient finite where the coefficient is zero.
    unit = spectrum / torch.where(nonzero, magnitude, torch.ones_like(magnitude))
    return torch.where(nonzero, unit, torch.ones_like(unit))


def frequency_integration(amplitude: torch.Tensor, phase_a: torch.Tensor, phase_b: torch.Tensor) -> torch.Tensor:
    """Combine the Fourier amplitude of one map with the phases of two others.

    Returns ``|ifft2(|A| (e^{i angle P} + e^{i angle Q}))|`` per channel, a real map of the
    inputs' shape (B, C, H, W). The inputs are real, so the combined spectrum is Hermitian and
    the half spectra of ``rfft2`` carry all of it at a fraction of the cost.
    """
    # The transforms run in float32 even under autocast: half-precision FFTs lose the phase.
    with torch.autocast(amplitude.device.type, enabled=False):
        size = amplitude.shape[-2:]
        amp = torch.fft.rfft2(amplitude.float()).abs()
        combined = amp * (unit_phasor(torch.fft.rfft2(phase_a.float())) + unit_phasor(torch.fft.rfft2(phase_b.float())))
        return torch.fft.irfft2(combined, s=size).abs()


def channel_std(x: torch.Tensor) -> torch.Tensor:
    """Per-channel spatial population standard deviation, (B, C, 1, 1)."""
    return (x - x.mean(dim=(2, 3), keepdim=True)).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()


class DenseBlockMscale(nn.Module):
    """One DenseBlock applied at full, 1/2 and 1/4 scale, mixed by a pooled channel gate."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.ops = DenseBlock(cin, cout)
        self.fusepool = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv1(cout, cout), nn.LeakyReLU(CONV_SLOPE))
        self.fc1 = nn.Sequential(conv1(cout, cout), nn.LeakyReLU(CONV_SLOPE))
        self.fc2 = nn.Sequential(conv1(cout, cout), nn.LeakyReLU(CONV_SLOPE))
        self.fc3 = nn.Sequential(conv1(cout, cout), nn.LeakyReLU(CONV_SLOPE))
        self.fuse = conv1(3 * cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The scale factor (not a target size) decides the down-sampled size, as in the release.
        x2 = F.interpolate(x, scale_factor=0.5, mode='bilinear', align_corners=False)
        x3 = F.interpolate(x, scale_factor=0.25, mode='bilinear', align_corners=False)
        y1 = self.ops(x)
        y2 = F.interpolate(self.ops(x2), size=y1.shape[-2:], mode='bilinear', align_corners=False)
        y3 = F.interpolate(self.ops(x3), size=y1.shape[-2:], mode='bilinear', align_corners=False)
        w = self.fusepool(y1 + y2 + y3)
        return self.fuse(torch.cat([y1 * self.fc1(w), y2 * self.fc2(w), y3 * self.fc3(w)], dim=1))


class Interaction(nn.Module):
    """Spatial compensation: attention-weighted exchange between the fused and source features."""

    def __init__(self, c: int):
        super().__init__()
        for source in ('vi', 'ir'):
            setattr(self, f'spa_att_{source}', nn.Sequential(
                conv3(c, c // 2), nn.LeakyReLU(CONV_SLOPE), conv3(c // 2, c), nn.Sigmoid()))
            setattr(self, f'cha_att_{source}', nn.Sequential(
                conv1(2 * c, c // 2), nn.LeakyReLU(CONV_SLOPE), conv1(c // 2, 2 * c), nn.Sigmoid()))
            setattr(self, f'post_{source}', conv3(2 * c, c))
        self.fused = InvBlock(2 * c, c, subnet=DenseBlockMscale)
        self.post = conv3(2 * c, c)

    def _compensate(self, fused: torch.Tensor, source: torch.Tensor, spa_att: nn.Module, cha_att: nn.Module,
                    post: nn.Module) -> torch.Tensor:
        r = spa_att(source - fused) * fused + fused
        c = torch.cat([r, fused], dim=1)
        return post(cha_att(channel_std(c) + c.mean(dim=(2, 3), keepdim=True)) * c) + fused

    def forward(self, fused: torch.Tensor, vi: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        o_vi = self._compensate(fused, vi, self.spa_att_vi, self.cha_att_vi, self.post_vi)
        o_ir = self._compensate(fused, ir, self.spa_att_ir, self.cha_att_ir, self.post_ir)
        return self.post(self.fused(torch.cat([o_vi, o_ir], dim=1)))


Features = Tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # fused, visible, infrared (B, C, H, W)


class FirstCalibration(nn.Module):
    """Calibration 1 (``calibration1``): lifts the fused map and both sources from 1 to C channels,
    then interacts.

    The released model encodes all three inputs with the ``fused`` encoder; its ``vi`` and ``ir``
    encoders (``correction1.vis``/``inf`` in the file) were never trained and hold uninitialised
    values. With ``separate_encoders=False`` (the release) they are not built and their
    checkpoint keys are dropped on loading; ``True`` builds and uses them, for new trainings.
    """

    def __init__(self, cin: int, cout: int, separate_encoders: bool = False):
        super().__init__()
        self.separate_encoders = separate_encoders
        if separate_encoders:
            self.vi = EdgeBlock(cin, cout)
            self.ir = EdgeBlock(cin, cout)
        else:
            self._register_load_state_dict_pre_hook(self._drop_unused_encoders)
        self.fused = EdgeBlock(cin, cout)
        self.interaction = Interaction(cout)

    @staticmethod
    def _drop_unused_encoders(state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith((prefix + 'vi.', prefix + 'ir.'))]:
            del state_dict[key]

    def forward(self, fused: torch.Tensor, vi: torch.Tensor, ir: torch.Tensor) -> Features:
        encode_vi = self.vi if self.separate_encoders else self.fused
        encode_ir = self.ir if self.separate_encoders else self.fused
        f, v, i = self.fused(fused), encode_vi(vi), encode_ir(ir)
        return self.interaction(f, v, i), v, i


class Calibration(nn.Module):
    """Calibrations 2 and 3 (``calibration2``, ``calibration3``): encode, integrate in frequency
    channel by channel, then interact."""

    def __init__(self, c: int):
        super().__init__()
        self.vi = EdgeBlock(c, c)
        self.ir = EdgeBlock(c, c)
        self.fused = EdgeBlock(c, c)
        self.interaction = Interaction(c)

    def forward(self, fused: torch.Tensor, vi: torch.Tensor, ir: torch.Tensor) -> Features:
        f, v, i = self.fused(fused), self.vi(vi), self.ir(ir)
        f = frequency_integration(f, v, i)
        return self.interaction(f, v, i), v, i


@ARCH_REGISTRY.register()
class FISCNet(nn.Module):
    """FISCNet fusion network.

    Args:
        vis_channels (int): channels of ``vi_ycrcb`` the network reads (1: the Y channel).
        inf_channels (int): channels of ``ir`` the network reads (both names are the released
            options').
        n_feat (int): feature width C.
        separate_stage1_encoders (bool): give calibration 1 its own visible and infrared encoders
            instead of the released model's shared one (not loadable from the release).

    Shapes:
        ``vi_ycrcb`` (B, >=vis_channels, H, W) YCrCb in [0, 1]; ``ir`` (B, >=inf_channels, H, W)
        in [0, 1]; output (B, 1, H, W), the fused Y, not clamped. H, W >= 8.

    Example:
        >>> net = FISCNet()
        >>> net(torch.rand(1, 3, 16, 20), torch.rand(1, 1, 16, 20)).shape
        torch.Size([1, 1, 16, 20])
    """

    def __init__(self, vis_channels: int = 1, inf_channels: int = 1, n_feat: int = 16,
                 separate_stage1_encoders: bool = False):
        super().__init__()
        if vis_channels != inf_channels:
            raise ValueError(f'vis_channels ({vis_channels}) and inf_channels ({inf_channels}) must be '
                             'equal: the image-level frequency integration mixes them channel by channel')
        self.vis_channels = vis_channels
        self.inf_channels = inf_channels
        self.calibration1 = FirstCalibration(vis_channels, n_feat, separate_stage1_encoders)
        self.calibration2 = Calibration(n_feat)
        self.calibration3 = Calibration(n_feat)
        self.reconstruction = Refine(n_feat, out_channels=1)
        # Plain load_state_dict takes the released names too; load_params applies the filter itself.
        self._register_load_state_dict_pre_hook(self._rename_released_keys)

    checkpoint_filter_fn = staticmethod(checkpoint_filter_fn)

    @staticmethod
    def _rename_released_keys(state_dict, prefix, *args, **kwargs):
        mine = {k: v for k, v in state_dict.items() if k.startswith(prefix)}
        renamed = checkpoint_filter_fn({k[len(prefix):]: v for k, v in mine.items()})
        for key in mine:
            del state_dict[key]
        state_dict.update({prefix + k: v for k, v in renamed.items()})

    def forward(self, vi_ycrcb: torch.Tensor, ir: torch.Tensor) -> torch.Tensor:
        height, width = vi_ycrcb.shape[-2:]
        if height < MIN_SIZE or width < MIN_SIZE:
            raise ValueError(f'FISCNet needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got '
                             f'{width}x{height} (W x H); upscale or pad the image')
        if ir.shape[-2:] != vi_ycrcb.shape[-2:]:
            raise ValueError(f'infrared {tuple(ir.shape[-2:])} and visible {(height, width)} '
                             'sizes (H, W) differ')
        vi = vi_ycrcb[:, :self.vis_channels]
        ir = ir[:, :self.inf_channels]
        f0 = frequency_integration(vi, vi, ir)
        f1, v1, i1 = self.calibration1(f0, vi, ir)
        f2, v2, i2 = self.calibration2(f1, v1, i1)
        f3, _, _ = self.calibration3(f2, v2, i2)
        return self.reconstruction(f3)
