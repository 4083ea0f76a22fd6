"""The fusion losses against their definitions in the spec's training recipe."""
import cv2
import numpy as np
import pytest
import torch

from basicsr.losses import build_loss
from basicsr.losses.gradient_loss import sobel_magnitude
from basicsr.losses.ssim_loss import ssim


@pytest.fixture
def images():
    gen = torch.Generator().manual_seed(0)
    fused, vis_y, ir = (torch.rand(2, 1, 12, 10, generator=gen) for _ in range(3))
    mask = (torch.rand(2, 1, 12, 10, generator=gen) > 0.5).float()  # a binary 0/255 PNG read to [0, 1]
    return fused, vis_y, ir, mask


def test_max_loss_is_the_weighted_mean_distance_to_the_brighter_source(images):
    fused, vis_y, ir, _ = images
    expected = 10 * (fused - torch.maximum(vis_y, ir)).abs().mean()
    torch.testing.assert_close(build_loss({'type': 'MaxFusionLoss', 'loss_weight': 10})(fused, vis_y, ir), expected)
    assert build_loss({'type': 'MaxFusionLoss'})(torch.maximum(vis_y, ir), vis_y, ir) == 0


def test_mask_loss_follows_the_visible_image_inside_the_mask_and_the_infrared_outside(images):
    fused, vis_y, ir, mask = images
    ir_mask = (mask != 1).float()
    expected = 3 * ((mask * vis_y - fused).abs().mean() + (fused - ir_mask * ir).abs().mean())
    loss = build_loss({'type': 'MaskFusionL1Loss', 'loss_weight': 3})
    torch.testing.assert_close(loss(fused, vis_y, ir, mask), expected)
    # A grey (weight) mask below 1 everywhere pulls toward both sources: M_ir is 1 there.
    half = torch.full_like(mask, 0.5)
    torch.testing.assert_close(loss(fused, vis_y, ir, half),
                               3 * ((0.5 * vis_y - fused).abs().mean() + (fused - ir).abs().mean()))
    with pytest.raises(ValueError, match='MaskFusionL1Loss needs masks: set dataroot_mask'):
        loss(fused, vis_y, ir)


def test_sobel_magnitude_is_the_zero_padded_cross_correlation():
    img = np.random.default_rng(1).random((9, 11)).astype(np.float32)
    sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)
    sobel_y = np.array([[1, 2, 1], [0, 0, 0], [-1, -2, -1]], np.float32)
    # cv2.filter2D correlates (no kernel flip), like conv2d.
    expected = (np.abs(cv2.filter2D(img, -1, sobel_x, borderType=cv2.BORDER_CONSTANT))
                + np.abs(cv2.filter2D(img, -1, sobel_y, borderType=cv2.BORDER_CONSTANT)))
    got = sobel_magnitude(torch.from_numpy(img)[None, None])[0, 0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    two = sobel_magnitude(torch.from_numpy(np.stack([img, 2 * img]))[None])  # channels kept apart
    torch.testing.assert_close(two[0, 1], 2 * two[0, 0])


def test_gradient_loss_compares_with_the_stronger_source_gradient(images):
    fused, vis_y, ir, _ = images
    target = torch.maximum(sobel_magnitude(vis_y), sobel_magnitude(ir))
    expected = 10 * (sobel_magnitude(fused) - target).abs().mean()
    torch.testing.assert_close(build_loss({'type': 'GradientFusionLoss', 'loss_weight': 10})(fused, vis_y, ir),
                               expected)
    flat = torch.zeros_like(ir)
    assert build_loss({'type': 'GradientFusionLoss'})(ir, flat, ir) == 0


def test_ssim_loss(images):
    fused, vis_y, ir, _ = images
    torch.testing.assert_close(ssim(vis_y, vis_y), torch.tensor(1.0))
    loss = build_loss({'type': 'SSIMFusionLoss', 'loss_weight': 2})
    assert loss(vis_y, vis_y, vis_y) == pytest.approx(0, abs=1e-6)
    expected = 2 * ((1 - ssim(fused, vis_y)) + (1 - ssim(fused, ir)))
    torch.testing.assert_close(loss(fused, vis_y, ir), expected)
    noisy = (vis_y + 0.3 * torch.rand_like(vis_y)).clamp(0, 1)
    assert ssim(vis_y, noisy) < ssim(vis_y, (vis_y + 0.05 * torch.rand_like(vis_y)).clamp(0, 1)) < 1


def test_losses_are_differentiable_and_registered(images):
    fused, vis_y, ir, mask = images
    fused = fused.clone().requires_grad_()
    total = sum(build_loss({'type': name})(fused, vis_y, ir, mask) for name in
                ('MaskFusionL1Loss', 'MaxFusionLoss', 'GradientFusionLoss', 'SSIMFusionLoss'))
    total.backward()
    assert torch.isfinite(fused.grad).all() and fused.grad.abs().sum() > 0
