"""The shape every fusion loss shares: a weighted term of the fused Y and its sources."""
from torch import nn


class WeightedFusionLoss(nn.Module):
    """``loss_weight * term(fused, vis_y, ir, mask)``; subclasses define :meth:`term`.

    Args:
        loss_weight (float): factor applied to the term.
    """

    def __init__(self, loss_weight=1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def term(self, fused, vis_y, ir, mask):
        raise NotImplementedError

    def forward(self, fused, vis_y, ir, mask=None):
        return self.loss_weight * self.term(fused, vis_y, ir, mask)
