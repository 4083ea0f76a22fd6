"""FusionEngine: what test.py, fuse.py, the Python API and validation fuse with."""
import logging

import numpy as np
import pytest
import torch

from basicsr.data import build_test_loader
from basicsr.data.fusion_test_dataset import FusionTestDataset
from basicsr.models.fusion_engine import FusionEngine
from basicsr.utils.color_util import rgb_to_ycrcb, ycrcb_to_rgb
from basicsr.utils.errors import InputError
from basicsr.utils.img_util import to_uint8


class Constant(torch.nn.Module):
    """A network whose fused Y is ``value`` everywhere."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, vi_ycrcb, ir):
        return torch.full_like(ir[:, :1], self.value)


@pytest.fixture
def engine(random_checkpoint):
    return FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'FISCNet'}, 'execution': 'eager',
                                      'path': {'pretrain_network_g': str(random_checkpoint), 'param_key_g': 'params'}})


def test_fuse_keeps_the_visible_chroma_around_the_clamped_fused_y(engine):
    generator = torch.Generator().manual_seed(0)
    ir, vi = torch.rand(2, 1, 24, 32, generator=generator), torch.rand(2, 3, 24, 32, generator=generator)
    vi_ycrcb = rgb_to_ycrcb(vi)
    with torch.no_grad():
        fused_y = engine.net(vi_ycrcb, ir)
    expected = ycrcb_to_rgb(torch.cat([fused_y.clamp(0, 1), vi_ycrcb[:, 1:]], dim=1))
    fused = engine.fuse(ir, vi)
    assert torch.equal(fused, expected)
    assert [image.tolist() for image in engine.to_uint8(fused)] == \
        [to_uint8(image.permute(1, 2, 0).numpy()).tolist() for image in expected]


def test_fuse_loader_yields_every_image_with_its_sources(engine, pair_folders):
    ir, vi = pair_folders
    dataset = FusionTestDataset({'dataroot_ir': str(ir), 'dataroot_vi': str(vi)})
    results = list(engine.fuse_loader(build_test_loader(dataset, {}, engine.device), 'pairs'))
    assert [result.stem for result in results] == ['a', 'b', 'c'] and engine.rate > 0
    for result, index in zip(results, range(3)):
        assert result.fused.shape == (24, 32, 3) and result.fused.dtype == np.uint8
        assert torch.equal(result.item['vi'], dataset[index]['vi'])
        assert np.array_equal(result.fused, engine.to_uint8(engine.fuse(result.item['ir'][None],
                                                                         result.item['vi'][None]))[0])


def test_non_finite_output_is_an_error_for_a_test_and_a_warning_for_a_validation(caplog):
    ir, vi = torch.rand(1, 1, 16, 16), torch.rand(1, 3, 16, 16)
    with pytest.raises(InputError, match=r'^pair 7: the network output is not finite \(NaN or Inf\); the weights '
                                         'are damaged or diverged, or the input is extreme; nothing was written'):
        FusionEngine(Constant(float('inf')), torch.device('cpu')).fuse(ir, vi, 'pair 7')
    with caplog.at_level(logging.WARNING):
        fused = FusionEngine(Constant(float('inf')), torch.device('cpu'), non_finite='warn').fuse(ir, vi, 'pair 7')
    assert 'pair 7: the network output is not finite (NaN or Inf); the weights may be diverging' in caplog.text
    assert torch.isfinite(fused).all()  # clamped: validation still writes and scores the image
