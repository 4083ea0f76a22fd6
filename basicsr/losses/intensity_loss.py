"""Intensity losses: the fused Y against the brighter source and against the saliency-masked sources."""
import torch
import torch.nn.functional as F

from basicsr.losses.weighted import WeightedFusionLoss
from basicsr.utils.registry import LOSS_REGISTRY


@LOSS_REGISTRY.register()
class MaxFusionLoss(WeightedFusionLoss):
    """``loss_weight * mean|F - max(Yv, IR)|``: keep the brighter of the two sources at every pixel.

    Args:
        loss_weight (float): factor applied to the loss (10 in the released recipe).

    Shapes:
        ``fused``, ``vis_y``, ``ir``: (B, 1, H, W) in [0, 1]; ``mask`` is not used.
    """

    def term(self, fused, vis_y, ir, mask):
        return F.l1_loss(fused, torch.max(vis_y, ir))


@LOSS_REGISTRY.register()
class MaskFusionL1Loss(WeightedFusionLoss):
    """``loss_weight * (mean|M Yv - F| + mean|F - M_ir IR|)`` with ``M_ir = 1`` where ``M != 1``.

    ``M`` is the visible-saliency mask: where it is 1 the fused image follows the visible image,
    elsewhere it is pulled toward the infrared image (and toward ``M Yv``). With binary 0/255 mask
    files read to [0, 1], ``M`` is exactly 0 or 1.

    Args:
        loss_weight (float): factor applied to the loss (3 in the released recipe).

    Shapes:
        ``fused``, ``vis_y``, ``ir``, ``mask``: (B, 1, H, W) in [0, 1].

    Raises:
        ValueError: called without a mask (the training set needs ``dataroot_mask``).
    """

    def term(self, fused, vis_y, ir, mask):
        if mask is None:
            raise ValueError('MaskFusionL1Loss needs masks: set dataroot_mask in the training set')
        ir_mask = (mask != 1).to(ir.dtype)
        return F.l1_loss(mask * vis_y, fused) + F.l1_loss(fused, ir_mask * ir)
