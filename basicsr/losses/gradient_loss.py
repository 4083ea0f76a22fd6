"""Gradient loss: the fused Y's Sobel gradient against the stronger of the sources' gradients."""
import torch
import torch.nn.functional as F

from basicsr.losses.weighted import WeightedFusionLoss
from basicsr.utils.registry import LOSS_REGISTRY

SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))


def sobel_magnitude(x):
    """``|Sobel_x * x| + |Sobel_y * x|`` per channel, zero padding (cross-correlation, as conv2d).

    Args:
        x (Tensor): (B, C, H, W).

    Returns:
        Tensor: (B, C, H, W).
    """
    kernels = torch.tensor([SOBEL_X, SOBEL_Y], dtype=x.dtype, device=x.device)
    channels = x.shape[1]
    weight = kernels[:, None].repeat(channels, 1, 1, 1)  # (2C, 1, 3, 3): x and y for each channel
    grad = F.conv2d(x, weight, padding=1, groups=channels).abs()
    return grad[:, 0::2] + grad[:, 1::2]


@LOSS_REGISTRY.register()
class GradientFusionLoss(WeightedFusionLoss):
    """``loss_weight * mean|grad F - max(grad Yv, grad IR)|``: keep the sharper source's edges.

    Args:
        loss_weight (float): factor applied to the loss (10 in the released recipe).

    Shapes:
        ``fused``, ``vis_y``, ``ir``: (B, 1, H, W); ``mask`` is not used.
    """

    def term(self, fused, vis_y, ir, mask):
        target = torch.max(sobel_magnitude(vis_y), sobel_magnitude(ir))
        return F.l1_loss(sobel_magnitude(fused), target)
