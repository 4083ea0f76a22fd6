"""Blocks shared by the networks of the FISCNet family (FISCNet, SHIP).

Module and parameter names follow the released checkpoints, so their ``params`` load directly
into any network built from these blocks.
"""
from typing import Callable, List, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# The constants of the released blocks.
CDC_THETA = 0.8        # weight of the central difference subtracted in each CDC branch
COUPLING_CLAMP = 0.8   # bound of the affine coupling's log-scale
CONV_SLOPE = 0.1       # LeakyReLU slope of the conv blocks, gates and attention branches
DENSE_SLOPE = 0.2      # LeakyReLU slope of the dense block
INIT_SCALE = 0.1       # the dense blocks' Xavier-normal weights are scaled by this for new trainings


def conv3(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, padding=1, bias=bias)


def conv1(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1)


class DerivedWeightCache:
    """Keeps a weight derived from parameters (a folded kernel, an LU product) between calls that
    need no gradient, rebuilding it when a parameter changes (an optimizer step, a loaded state
    dict, a move to another device) and on every call that trains.

    The cached tensor is what a fresh build computes, so outputs are bit-identical either way.
    Changes are seen through the parameters' version counters, which every in-place operation
    bumps except writes through ``.data``.
    """

    def __init__(self) -> None:
        self.key, self.value = None, None

    def get(self, build: Callable[[], torch.Tensor], params: Sequence[torch.Tensor]) -> torch.Tensor:
        if (torch.is_grad_enabled() and any(p.requires_grad for p in params)) or torch.compiler.is_compiling():
            return build()
        key = tuple((p.data_ptr(), p._version, p.dtype) for p in params)
        if key != self.key:
            self.key, self.value = key, build()
        return self.value


class TapConv(nn.Module):
    """Holds five learnt taps per (out, in) channel pair, shape (cout, cin, 1, 5)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, (1, 5), bias=False)


class CDC(nn.Module):
    """Cross-difference convolution: a "+" and a "x" central-difference branch mixed by a gate.

    Both branches, the gate and the identity skip are linear in the input, so they fold into one
    3x3 kernel: rebuilt from the taps at every training call (it stays differentiable), built once
    for inference and kept until the taps change.

    Raises:
        ValueError: ``cin != cout`` (the identity skip needs equal widths).
    """

    def __init__(self, cin: int, cout: int, theta: float = CDC_THETA):
        super().__init__()
        self.theta = theta
        self.HP_branch = nn.Parameter(torch.zeros(1))
        self.h_conv = TapConv(cin, cout)
        self.d_conv = TapConv(cin, cout)
        self._kernel = DerivedWeightCache()
        if cin != cout:
            raise ValueError(f'CDC has an identity skip, so cin ({cin}) must equal cout ({cout})')

    def _difference_kernel(self, taps: torch.Tensor, positions: List[int]) -> torch.Tensor:
        w = taps[:, :, 0, :]  # (cout, cin, 5)
        kernel = w.new_zeros(w.shape[0], w.shape[1], 9)
        kernel[:, :, positions] = w
        kernel[:, :, 4] = kernel[:, :, 4] - self.theta * w.sum(dim=-1)
        return kernel

    def kernel(self) -> torch.Tensor:
        gate = torch.sigmoid(self.HP_branch)
        plus = self._difference_kernel(self.h_conv.conv.weight, [1, 3, 4, 5, 7])
        cross = self._difference_kernel(self.d_conv.conv.weight, [0, 2, 4, 6, 8])
        kernel = gate * plus + (1 - gate) * cross
        identity = torch.eye(kernel.shape[0], dtype=kernel.dtype, device=kernel.device)
        kernel[:, :, 4] = kernel[:, :, 4] + identity
        return kernel.view(*kernel.shape[:2], 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self._kernel.get(self.kernel, (self.HP_branch, self.h_conv.conv.weight, self.d_conv.conv.weight))
        return F.conv2d(x, kernel.to(x.dtype), padding=1)


class EdgeBlock(nn.Module):
    """Edge-aware encoder: a 3x3 conv, then a residual conv pair plus a cross-difference conv."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.process = conv3(cin, cout)
        self.Res = nn.Sequential(conv3(cout, cout), nn.ReLU(inplace=True), conv3(cout, cout))
        self.CDC = CDC(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.process(x)
        return self.Res(x) + self.CDC(x)


class UNetConvBlock(nn.Module):
    """Conv block whose first half of channels is instance-normalised (half instance norm)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.identity = conv1(cin, cout)
        self.conv_1 = conv3(cin, cout)
        self.conv_2 = conv3(cout, cout)
        self.norm = nn.InstanceNorm2d(cout // 2, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_1(x)
        half = out.shape[1] // 2
        out = torch.cat([self.norm(out[:, :half]), out[:, half:]], dim=1)
        out = F.leaky_relu(out, CONV_SLOPE)
        out = F.leaky_relu(self.conv_2(out), CONV_SLOPE)
        return out + self.identity(x)


class DenseBlock(nn.Module):
    """Two half-instance-norm conv blocks of ``gc`` channels, densely connected, then a 3x3 conv."""

    def __init__(self, cin: int, cout: int, gc: int = 16):
        super().__init__()
        self.conv1 = UNetConvBlock(cin, gc)
        self.conv2 = UNetConvBlock(gc, gc)
        self.conv3 = conv3(cin + 2 * gc, cout)
        for conv in [*self.conv1.modules(), *self.conv2.modules(), self.conv3]:
            if isinstance(conv, nn.Conv2d):
                nn.init.xavier_normal_(conv.weight)
                conv.weight.data.mul_(INIT_SCALE)
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = F.leaky_relu(self.conv1(x), DENSE_SLOPE)
        x2 = F.leaky_relu(self.conv2(x1), DENSE_SLOPE)
        return F.leaky_relu(self.conv3(torch.cat([x, x1, x2], dim=1)), DENSE_SLOPE)


class InvertibleConv1x1(nn.Module):
    """Invertible 1x1 convolution, LU-parametrised (Glow)."""

    def __init__(self, channels: int):
        super().__init__()
        weight = torch.linalg.qr(torch.randn(channels, channels))[0]
        p, lower, upper = torch.linalg.lu(weight)
        diag = torch.diagonal(upper)
        self.register_buffer('p', p)
        self.register_buffer('sign_s', torch.sign(diag))
        self.lower = nn.Parameter(lower)
        self.log_s = nn.Parameter(torch.log(diag.abs()))
        self.upper = nn.Parameter(torch.triu(upper, 1))
        self.register_buffer('lower_mask', torch.tril(torch.ones(channels, channels), -1), persistent=False)
        self._weight = DerivedWeightCache()

    def weight(self) -> torch.Tensor:
        eye = torch.eye(self.p.shape[0], dtype=self.p.dtype, device=self.p.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return self.p @ lower @ upper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self._weight.get(self.weight, (self.p, self.sign_s, self.lower, self.log_s, self.upper)).to(x.dtype)
        return F.conv2d(x, w[:, :, None, None])


class InvBlock(nn.Module):
    """Affine coupling block: an invertible 1x1 conv, then additive and scaled couplings.

    Args:
        channels (int): input and output channels N.
        split (int): channels of the first part (N - split in the second).
        subnet (type): the coupling sub-network class, built as ``subnet(cin, cout)``
            (FISCNet: the multi-scale dense block; SHIP: :class:`DenseBlock`).
        clamp (float): bound of the log-scale of the scaled coupling.
    """

    def __init__(self, channels: int, split: int, subnet: type = DenseBlock, clamp: float = COUPLING_CLAMP):
        super().__init__()
        self.split = split
        self.clamp = clamp
        self.invconv = InvertibleConv1x1(channels)
        self.F = subnet(channels - split, split)
        self.G = subnet(split, channels - split)
        self.H = subnet(split, channels - split)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.invconv(x)
        x1, x2 = x[:, :self.split], x[:, self.split:]
        y1 = x1 + self.F(x2)
        s = self.clamp * (torch.sigmoid(self.H(y1)) * 2 - 1)
        y2 = x2 * torch.exp(s) + self.G(y1)
        return torch.cat([y1, y2], dim=1)


class CALayer(nn.Module):
    """Adds a per-channel constant, computed from the pooled features, to its input."""

    def __init__(self, c: int, reduction: int = 4):
        super().__init__()
        self.process = nn.Sequential(conv3(c, c), nn.ReLU(inplace=True), conv3(c, c))
        self.conv_du = nn.Sequential(conv1(c, c // reduction), nn.ReLU(inplace=True),
                                     conv1(c // reduction, c), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.process(x).mean(dim=(2, 3), keepdim=True)
        return self.conv_du(y) * y + x


class Refine(nn.Module):
    """Reconstruction head: conv, two channel-attention layers, conv to ``out_channels``."""

    def __init__(self, c: int, out_channels: int = 1):
        super().__init__()
        self.conv_in = conv3(c, c)
        self.process = nn.Sequential(CALayer(c), CALayer(c))
        self.conv_last = conv3(c, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_last(self.process(self.conv_in(x)))
