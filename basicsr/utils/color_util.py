"""RGB <-> YCrCb on (B, 3, H, W) tensors in [0, 1], with the released model's coefficients."""
import torch


def rgb_to_ycrcb(rgb):
    """(B, 3, H, W) RGB -> YCrCb (ITU-R 601 luma; chroma offset by 0.5)."""
    r, g, b = rgb[:, 0:1], rgb[:, 1:2], rgb[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cr = (r - y) * 0.713 + 0.5
    cb = (b - y) * 0.564 + 0.5
    return torch.cat([y, cr, cb], dim=1)


def ycrcb_to_rgb(ycrcb):
    """Inverse of :func:`rgb_to_ycrcb` (not clamped)."""
    y, cr, cb = ycrcb[:, 0:1], ycrcb[:, 1:2] - 0.5, ycrcb[:, 2:3] - 0.5
    r = y + 1.403 * cr
    g = y - 0.714 * cr - 0.344 * cb
    b = y + 1.773 * cb
    return torch.cat([r, g, b], dim=1)
