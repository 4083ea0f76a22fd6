"""SeAFusion: a real-time fusion network with residual gradient dense blocks (Tang et al., 2022).

Module and parameter names follow the released checkpoint (a plain state dict), so it loads
strictly; the only keys dropped are those of four batch norms the released network builds but
never applies.
"""
import torch
import torch.nn.functional as F
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY

SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))


class ConvLayer(nn.Module):
    """A 3x3 (or 1x1) convolution with bias, held as ``.conv`` as in the checkpoint."""

    def __init__(self, cin, cout, kernel_size=3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        return self.conv(x)


class DenseConvs(nn.Module):
    """Two densely connected 3x3 convolutions: returns ``cat(x, c1, c2)``, 3 * cin channels."""

    def __init__(self, cin):
        super().__init__()
        self.conv1 = ConvLayer(cin, cin)
        self.conv2 = ConvLayer(2 * cin, cin)

    def forward(self, x):
        x = torch.cat([x, F.leaky_relu(self.conv1(x), 0.2)], dim=1)
        return torch.cat([x, F.leaky_relu(self.conv2(x), 0.2)], dim=1)


class LearntSobel(nn.Module):
    """``|Kx * x| + |Ky * x|`` per channel, with depthwise kernels that start as Sobel's and are
    then learnt (the released values differ from Sobel's by up to ~0.18, so they are loaded)."""

    def __init__(self, channels):
        super().__init__()
        self.convx = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.convy = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        sobel_x = torch.tensor(SOBEL_X)
        with torch.no_grad():
            self.convx.weight.copy_(sobel_x.expand(channels, 1, 3, 3))
            self.convy.weight.copy_(sobel_x.T.expand(channels, 1, 3, 3))

    def forward(self, x):
        return self.convx(x).abs() + self.convy(x).abs()


class RGBD(nn.Module):
    """Residual gradient dense block: dense features plus a learnt-gradient skip, cin -> cout."""

    def __init__(self, cin, cout):
        super().__init__()
        self.dense = DenseConvs(cin)
        self.convdown = ConvLayer(3 * cin, cout, kernel_size=1)
        self.sobelconv = LearntSobel(cin)
        self.convup = ConvLayer(cin, cout, kernel_size=1)

    def forward(self, x):
        return F.leaky_relu(self.convdown(self.dense(x)) + self.convup(self.sobelconv(x)), 0.1)


@ARCH_REGISTRY.register()
class SeAFusion(nn.Module):
    """SeAFusion's fusion network (``FusionNet(output=1)`` of the release).

    Args:
        widths (tuple[int]): encoder widths after the first conv and each RGBD block.

    Shapes:
        ``image_vis`` (B, >=1, H, W): channel 0 is the visible Y in [0, 1] (the YCrCb image the
        framework passes works as is); ``image_ir`` (B, >=1, H, W) in [0, 1], channel 0 used;
        output (B, 1, H, W), the fused Y, always inside (0, 1). Any H, W >= 1.

    Raises:
        ValueError: the infrared and visible sizes differ.

    Example:
        >>> SeAFusion()(torch.rand(1, 3, 9, 13), torch.rand(1, 1, 9, 13)).shape
        torch.Size([1, 1, 9, 13])
    """

    UNUSED_KEYS = tuple(f'decode{i}.bn.{name}' for i in (4, 3, 2, 1)
                        for name in ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'))

    def __init__(self, widths=(16, 32, 48)):
        super().__init__()
        # Two encoders of one structure, separate weights, under the checkpoint's flat names.
        for source in ('vis', 'inf'):
            setattr(self, f'{source}_conv', ConvLayer(1, widths[0]))
            setattr(self, f'{source}_rgbd1', RGBD(widths[0], widths[1]))
            setattr(self, f'{source}_rgbd2', RGBD(widths[1], widths[2]))
        self.decode4 = ConvLayer(2 * widths[2], 64)
        self.decode3 = ConvLayer(64, 32)
        self.decode2 = ConvLayer(32, 16)
        self.decode1 = ConvLayer(16, 1)
        self._register_load_state_dict_pre_hook(self._drop_unused_batch_norms)

    @classmethod
    def _drop_unused_batch_norms(cls, state_dict, prefix, *args, **kwargs):
        for key in cls.UNUSED_KEYS:
            state_dict.pop(prefix + key, None)

    def _encode(self, source, x):
        x = F.leaky_relu(getattr(self, f'{source}_conv')(x), 0.2)
        return getattr(self, f'{source}_rgbd2')(getattr(self, f'{source}_rgbd1')(x))

    def forward(self, image_vis, image_ir):
        if image_ir.shape[-2:] != image_vis.shape[-2:]:
            raise ValueError(f'infrared {tuple(image_ir.shape[-2:])} and visible {tuple(image_vis.shape[-2:])} '
                             'sizes (H, W) differ')
        x = torch.cat([self._encode('vis', image_vis[:, :1]), self._encode('inf', image_ir[:, :1])], dim=1)
        for layer in (self.decode4, self.decode3, self.decode2):
            x = F.leaky_relu(layer(x), 0.2)
        return torch.tanh(self.decode1(x)) / 2 + 0.5
