"""SHIP: synergistic high-order interaction of infrared and visible features (Zheng et al., 2024).

Module and parameter names follow the released checkpoint, so its ``params`` load strictly. The
edge-aware encoders, the invertible coupling blocks and the reconstruction head are FISCNet's
(:mod:`basicsr.archs.fusion_blocks`).
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.archs.fusion_blocks import DenseBlock, EdgeBlock, InvBlock, Refine, conv1, conv3
from basicsr.utils.registry import ARCH_REGISTRY


def conv_relu_conv(c):
    """``Seq(conv3, ReLU, conv3)``, c -> c: its convs are the checkpoint's ``.0`` and ``.2``."""
    return nn.Sequential(conv3(c, c), nn.ReLU(inplace=True), conv3(c, c))


def channel_bottleneck(c):
    """``Seq(conv1 2c -> c, ReLU, conv1 c -> 2c)``, the attention of 2c joint channels."""
    return nn.Sequential(conv1(2 * c, c), nn.ReLU(inplace=True), conv1(c, 2 * c))


def circular_convolution(a, b):
    """Per-channel 2-D circular convolution of two real (B, C, H, W) maps, through real FFTs.

    Returns a real (B, C, H, W) map; computed in float32 even under autocast.
    """
    with torch.autocast(a.device.type, enabled=False):
        size = a.shape[-2:]
        return torch.fft.irfft2(torch.fft.rfft2(a.float()) * torch.fft.rfft2(b.float()), s=size)


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channels at every pixel of a (B, C, H, W) map (eps 1e-5, affine)."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.LayerNorm(channels)

    def forward(self, x):
        return self.body(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class FeatureExtract(nn.Module):
    """1x1 lift to C channels, then two edge blocks (cross-difference convolutions)."""

    def __init__(self, cin, c):
        super().__init__()
        self.conv = conv1(cin, c)
        self.block1 = EdgeBlock(c, c)
        self.block2 = EdgeBlock(c, c)

    def forward(self, x):
        return self.block2(self.block1(self.conv(x)))


class SpatialInteraction(nn.Module):
    """Spatial interaction of order 1 to 4: the circular convolution of both sources, refreshed
    three times by element-wise products with ever deeper infrared features."""

    def __init__(self, c, order=3):
        super().__init__()
        self.order = order
        for k in range(1, order + 1):
            setattr(self, f'reflashFused{k}', conv_relu_conv(c))
            setattr(self, f'reflashInfrared{k}', conv_relu_conv(c))
        for k in range(1, order + 2):
            setattr(self, f'norm{k}', ChannelLayerNorm(c))

    def forward(self, vis, ir):
        fused = self.norm1(circular_convolution(vis, ir)) * ir
        infrared = ir
        for k in range(1, self.order + 1):
            fused = getattr(self, f'norm{k + 1}')(getattr(self, f'reflashFused{k}')(fused))
            infrared = getattr(self, f'reflashInfrared{k}')(infrared)
            fused = fused * infrared
        return fused + vis, infrared


class ChannelInteraction(nn.Module):
    """Channel interaction of order 1 to 4: a softmax channel attention on both sources' pooled
    features, itself refreshed three times, re-weights ever deeper joint features."""

    def __init__(self, c, order=3):
        super().__init__()
        self.order = order
        self.chaAtten = channel_bottleneck(c)
        for k in range(1, order + 1):
            setattr(self, f'reflashFused{k}', conv_relu_conv(2 * c))
            setattr(self, f'reflashChaAtten{k}', channel_bottleneck(c))
        self.postprocess = nn.Sequential(InvBlock(2 * c, c, subnet=DenseBlock), conv1(2 * c, c))

    def forward(self, vis, ir):
        x = torch.cat([vis, ir], dim=1)
        attention = torch.softmax(self.chaAtten(x.mean(dim=(2, 3), keepdim=True)), dim=1)
        fused = x * attention
        for k in range(1, self.order + 1):
            attention = torch.softmax(getattr(self, f'reflashChaAtten{k}')(attention), dim=1)
            fused = getattr(self, f'reflashFused{k}')(fused) * attention
        return self.postprocess(fused) + vis, ir


class HighOrderInteraction(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.spatial = SpatialInteraction(c)
        self.channel = ChannelInteraction(c)

    def forward(self, vis, ir):
        return self.channel(*self.spatial(vis, ir))


@ARCH_REGISTRY.register()
class SHIP(nn.Module):
    """SHIP fusion network (``highOrderInteractionFusion`` of the release).

    Args:
        vis_channels (int): channels of ``image_vis`` the network reads (1: the Y channel).
        inf_channels (int): channels of ``image_ir`` the network reads.
        n_feat (int): feature width C.

    Shapes:
        ``image_vis`` (B, >=vis_channels, H, W) YCrCb in [0, 1]; ``image_ir`` (B, >=inf_channels,
        H, W) in [0, 1]; output (B, 1, H, W), the fused Y, not clamped. H * W >= 2 (the
        instance and layer norms need more than one pixel).

    Raises:
        ValueError: the sizes differ or the image has a single pixel.

    Example:
        >>> SHIP()(torch.rand(1, 3, 9, 13), torch.rand(1, 1, 9, 13)).shape
        torch.Size([1, 1, 9, 13])
    """

    def __init__(self, vis_channels=1, inf_channels=1, n_feat=16):
        super().__init__()
        self.vis_channels = vis_channels
        self.inf_channels = inf_channels
        self.vis = FeatureExtract(vis_channels, n_feat)
        self.inf = FeatureExtract(inf_channels, n_feat)
        self.interaction1 = HighOrderInteraction(n_feat)
        self.interaction2 = HighOrderInteraction(n_feat)
        self.interaction3 = HighOrderInteraction(n_feat)
        self.postprocess = nn.Sequential(InvBlock(3 * n_feat, 3 * n_feat // 2, subnet=DenseBlock),
                                         conv1(3 * n_feat, n_feat))
        self.reconstruction = Refine(n_feat, out_channels=1)

    def forward(self, image_vis, image_ir):
        height, width = image_vis.shape[-2:]
        if image_ir.shape[-2:] != image_vis.shape[-2:]:
            raise ValueError(f'infrared {tuple(image_ir.shape[-2:])} and visible {(height, width)} '
                             'sizes (H, W) differ')
        if height * width < 2:
            raise ValueError('SHIP needs images of at least 2 pixels: its instance norms divide by the '
                             'spatial variance')
        v = self.vis(image_vis[:, :self.vis_channels])
        r = self.inf(image_ir[:, :self.inf_channels])
        v1, r1 = self.interaction1(v, r)
        v2, r2 = self.interaction2(v1, r1)
        v3, _ = self.interaction3(v2, r2)
        return self.reconstruction(self.postprocess(torch.cat([v1, v2, v3], dim=1)))
