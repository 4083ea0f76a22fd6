"""Structural similarity loss between the fused Y and each source (optional in the recipe)."""
import torch
import torch.nn.functional as F

from basicsr.losses.weighted import WeightedFusionLoss
from basicsr.utils.registry import LOSS_REGISTRY


def gaussian_window(size, sigma, dtype, device):
    """A normalised (1, 1, size, size) Gaussian kernel."""
    coords = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :])[None, None]


def ssim(x, y, window_size=11, sigma=1.5, c1=0.01 ** 2, c2=0.03 ** 2):
    """Mean SSIM of two (B, 1, H, W) maps in [0, 1]: Gaussian window, zero padding, mean over the map."""
    window = gaussian_window(window_size, sigma, x.dtype, x.device)
    pad = window_size // 2

    def blur(t):
        return F.conv2d(t, window, padding=pad)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov = blur(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean()


@LOSS_REGISTRY.register()
class SSIMFusionLoss(WeightedFusionLoss):
    """``loss_weight * ((1 - SSIM(F, Yv)) + (1 - SSIM(F, IR)))``, window 11, sigma 1.5.

    Not part of the released model's recipe; available for new trainings.

    Args:
        loss_weight (float): factor applied to the loss.

    Shapes:
        ``fused``, ``vis_y``, ``ir``: (B, 1, H, W) in [0, 1]; ``mask`` is not used.
    """

    def term(self, fused, vis_y, ir, mask):
        return (1 - ssim(fused, vis_y)) + (1 - ssim(fused, ir))
