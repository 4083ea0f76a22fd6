"""FISCNet: infrared-visible fusion by frequency integration and spatial compensation.

The module names and parameter shapes follow the released checkpoint, so its ``params`` load
directly.
"""
import torch
import torch.nn.functional as F
from torch import nn

# CDC stays importable from here: it is part of FISCNet's public building blocks.
from basicsr.archs.fusion_blocks import (CDC, CONV_SLOPE, DenseBlock, EdgeBlock, InvBlock, Refine,  # noqa: F401
                                         conv1, conv3)
from basicsr.utils.registry import ARCH_REGISTRY

MIN_SIZE = 8  # at 1/4 scale the instance norms must still see more than one pixel


def unit_phasor(spectrum):
    """``e^{i angle(X)}`` computed as ``X / |X|``; a zero coefficient gives 1, as ``angle(0) = 0``."""
    magnitude = spectrum.abs()
    nonzero = magnitude > 0
    # The safe denominator keeps the gradient finite where the coefficient is zero.
    unit = spectrum / torch.where(nonzero, magnitude, torch.ones_like(magnitude))
    return torch.where(nonzero, unit, torch.ones_like(unit))


def frequency_integration(amplitude, phase_a, phase_b):
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


def channel_std(x):
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

    def forward(self, x):
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
        for source in ('vis', 'inf'):
            setattr(self, f'spa_att_{source}', nn.Sequential(
                conv3(c, c // 2), nn.LeakyReLU(CONV_SLOPE), conv3(c // 2, c), nn.Sigmoid()))
            setattr(self, f'cha_att_{source}', nn.Sequential(
                conv1(2 * c, c // 2), nn.LeakyReLU(CONV_SLOPE), conv1(c // 2, 2 * c), nn.Sigmoid()))
            setattr(self, f'post_{source}', conv3(2 * c, c))
        self.fused = InvBlock(2 * c, c, subnet=DenseBlockMscale)
        self.post = conv3(2 * c, c)

    def _compensate(self, fused, source, spa_att, cha_att, post):
        r = spa_att(source - fused) * fused + fused
        c = torch.cat([r, fused], dim=1)
        return post(cha_att(channel_std(c) + c.mean(dim=(2, 3), keepdim=True)) * c) + fused

    def forward(self, fused, vis, inf):
        o_vis = self._compensate(fused, vis, self.spa_att_vis, self.cha_att_vis, self.post_vis)
        o_inf = self._compensate(fused, inf, self.spa_att_inf, self.cha_att_inf, self.post_inf)
        return self.post(self.fused(torch.cat([o_vis, o_inf], dim=1)))


class CalibrationFirst(nn.Module):
    """Stage 1 (``correction1`` in the checkpoint): lifts the fused map and both sources from 1 to C
    channels, then interacts.

    The released model encodes all three inputs with the ``fused`` encoder; its ``vis`` and
    ``inf`` encoders were trained never and hold uninitialised values. With
    ``separate_encoders=False`` (the release) they are not built and their checkpoint keys are
    dropped on loading; ``True`` builds and uses them, for new trainings.
    """

    def __init__(self, cin: int, cout: int, separate_encoders: bool = False):
        super().__init__()
        self.separate_encoders = separate_encoders
        if separate_encoders:
            self.vis = EdgeBlock(cin, cout)
            self.inf = EdgeBlock(cin, cout)
        else:
            self._register_load_state_dict_pre_hook(self._drop_unused_encoders)
        self.fused = EdgeBlock(cin, cout)
        self.interaction = Interaction(cout)

    @staticmethod
    def _drop_unused_encoders(state_dict, prefix, *args, **kwargs):
        for key in [k for k in state_dict if k.startswith((prefix + 'vis.', prefix + 'inf.'))]:
            del state_dict[key]

    def forward(self, fused, vis, inf):
        encode_vis = self.vis if self.separate_encoders else self.fused
        encode_inf = self.inf if self.separate_encoders else self.fused
        f, v, i = self.fused(fused), encode_vis(vis), encode_inf(inf)
        return self.interaction(f, v, i), v, i


class Calibration(nn.Module):
    """Stages 2 and 3 (``correction2``, ``correction3`` in the checkpoint): encode, integrate in
    frequency channel by channel, then interact."""

    def __init__(self, c: int):
        super().__init__()
        self.vis = EdgeBlock(c, c)
        self.inf = EdgeBlock(c, c)
        self.fused = EdgeBlock(c, c)
        self.interaction = Interaction(c)

    def forward(self, fused, vis, inf):
        f, v, i = self.fused(fused), self.vis(vis), self.inf(inf)
        f = frequency_integration(f, v, i)
        return self.interaction(f, v, i), v, i


@ARCH_REGISTRY.register()
class FISCNet(nn.Module):
    """FISCNet fusion network.

    Args:
        vis_channels (int): channels of ``image_vis`` the network reads (1: the Y channel).
        inf_channels (int): channels of ``image_ir`` the network reads.
        n_feat (int): feature width C.
        separate_stage1_encoders (bool): give stage 1 its own visible and infrared encoders
            instead of the released model's shared one (not loadable from the release).

    Shapes:
        ``image_vis`` (B, >=vis_channels, H, W) YCrCb in [0, 1]; ``image_ir`` (B, >=inf_channels,
        H, W) in [0, 1]; output (B, 1, H, W), the fused Y, not clamped. H, W >= 8.

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
        self.correction1 = CalibrationFirst(vis_channels, n_feat, separate_stage1_encoders)
        self.correction2 = Calibration(n_feat)
        self.correction3 = Calibration(n_feat)
        self.reconstruction = Refine(n_feat, out_channels=1)

    def forward(self, image_vis, image_ir):
        height, width = image_vis.shape[-2:]
        if height < MIN_SIZE or width < MIN_SIZE:
            raise ValueError(f'FISCNet needs images of at least {MIN_SIZE}x{MIN_SIZE} pixels, got '
                             f'{width}x{height} (W x H); upscale or pad the image')
        if image_ir.shape[-2:] != image_vis.shape[-2:]:
            raise ValueError(f'infrared {tuple(image_ir.shape[-2:])} and visible {(height, width)} '
                             'sizes (H, W) differ')
        vis = image_vis[:, :self.vis_channels]
        ir = image_ir[:, :self.inf_channels]
        f0 = frequency_integration(vis, vis, ir)
        f1, v1, i1 = self.correction1(f0, vis, ir)
        f2, v2, i2 = self.correction2(f1, v1, i1)
        f3, _, _ = self.correction3(f2, v2, i2)
        return self.reconstruction(f3)
