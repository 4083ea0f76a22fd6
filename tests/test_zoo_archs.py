"""SeAFusion and SHIP: the released weights load strictly and reproduce the released outputs."""
import os

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from basicsr.archs import fusion_blocks
from basicsr.archs.fiscnet_arch import FISCNet
from basicsr.archs.seafusion_arch import SOBEL_X, SeAFusion
from basicsr.archs.ship_arch import SHIP, ChannelLayerNorm, circular_convolution
from basicsr.utils.checkpoint import CheckpointMismatchError, load_params, read_params
from basicsr.utils.color_util import rgb_to_ycrcb
from basicsr.utils.errors import OptionError
from basicsr.utils.img_util import read_image, stretch_to_uint8, to_uint8
from conftest import REPO, require_shared

NETWORKS = {'SeAFusion': SeAFusion, 'SHIP': SHIP}
# The three raw outputs stored per set (reference/zoo/README.md).
RAW_STEMS = [('TNO21', '01'), ('TNO21', '08'), ('TNO21', '11'), ('MSRS', '00004N'), ('MSRS', '00012N'),
             ('MSRS', '00020N')]
# Released PNGs checked through test.py: TNO21's odd-sized 11 and the square 08, and one MSRS night scene.
PNG_STEMS = {'TNO21': ('08', '11'), 'MSRS': ('00028N',)}


def image_tensor(path):
    return torch.from_numpy(read_image(path)).permute(2, 0, 1)[None]


@pytest.fixture(scope='module')
def released():
    """Each method's network with its released weights, loaded strictly."""
    nets = {}
    for name, cls in NETWORKS.items():
        path = require_shared('weights', f'{name}_official.pth')
        nets[name] = cls().eval()
        load_params(nets[name], read_params(path, 'params'), strict=True, source=str(path))
    return nets


def raw_output(net, set_name, stem):
    vis = rgb_to_ycrcb(image_tensor(require_shared('data', set_name, 'vi', f'{stem}.png')))
    ir = image_tensor(require_shared('data', set_name, 'ir', f'{stem}.png'))[:, :1]
    with torch.no_grad():
        return net(vis, ir)[0, 0].numpy()


@pytest.mark.parametrize('set_name, stem', RAW_STEMS)
def test_seafusion_reproduces_the_released_raw_output(released, set_name, stem):
    reference = np.load(require_shared('reference', 'zoo', 'SeAFusion', set_name, f'{stem}_y.npy'))
    fused_y = raw_output(released['SeAFusion'], set_name, stem)
    assert fused_y.shape == reference.shape
    assert np.abs(fused_y - reference).max() <= 1e-5


@pytest.mark.parametrize('set_name, stem', RAW_STEMS[:4])  # SHIP is 3x slower: one 640x480 MSRS pair
def test_ship_reproduces_the_released_raw_output(released, set_name, stem):
    """The network is ill-conditioned (reference/zoo/README.md): correct float32 implementations
    differ by up to ~1.5e-4 at rare pixels, so the max is bounded loosely and the mean tightly."""
    reference = np.load(require_shared('reference', 'zoo', 'SHIP', set_name, f'{stem}_y.npy'))
    diff = np.abs(raw_output(released['SHIP'], set_name, stem) - reference)
    assert diff.max() <= 2e-4 and diff.mean() <= 1e-6, (diff.max(), diff.mean())


@pytest.mark.parametrize('method', NETWORKS)
def test_method_test_yml_reproduces_the_released_images(tmp_path, method):
    """options/test/<Method>.yml as shipped (only the folders and weights path changed) writes the
    released test script's PNGs: SeAFusion's min-max stretched and truncated, SHIP's rounded."""
    from basicsr.test import test_pipeline
    weights = require_shared('weights', f'{method}_official.pth')
    overrides = [f'path.pretrain_network_g={weights}', 'num_gpu=0', 'val.metrics=~',
                 f'path.results_root={tmp_path / "results"}', 'datasets={}']
    for i, (set_name, stems) in enumerate(PNG_STEMS.items(), 1):
        for role in ('ir', 'vi'):
            (tmp_path / set_name / role).mkdir(parents=True)
            for stem in stems:
                os.symlink(require_shared('data', set_name, role, f'{stem}.png'), tmp_path / set_name / role / f'{stem}.png')
        overrides.append(f"datasets.test_{i}={{name: {set_name}, dataroot_ir: {tmp_path / set_name / 'ir'}, "
                         f"dataroot_vi: {tmp_path / set_name / 'vi'}}}")
    test_pipeline(['-opt', str(REPO / 'options' / 'test' / f'{method}.yml'), '--force_yml', *overrides])
    for set_name, stems in PNG_STEMS.items():
        for stem in stems:
            fused = cv2.imread(str(tmp_path / 'results' / 'visualization' / set_name / f'{stem}.png'))
            reference = cv2.imread(str(require_shared('reference', 'zoo', method, set_name, f'{stem}.png')))
            diff = np.abs(fused.astype(int) - reference.astype(int))
            assert (diff <= 1).mean() >= 0.999, (set_name, stem, (diff > 1).sum())
            assert diff.mean() < 0.01, (set_name, stem, diff.mean())


def test_seafusion_drops_exactly_its_unused_batch_norms():
    torch.manual_seed(0)
    params = SeAFusion().state_dict()
    assert not any('.bn.' in key for key in params)
    assert sum(p.numel() for p in SeAFusion().parameters()) == 166657  # the release's used parameters
    unused = {key: torch.zeros(1) for key in SeAFusion.UNUSED_KEYS}
    load_params(SeAFusion(), {**params, **unused}, strict=True)
    with pytest.raises(CheckpointMismatchError, match=r'unexpected \(decode4.bn.extra\)'):
        load_params(SeAFusion(), {**params, 'decode4.bn.extra': torch.zeros(1)}, strict=True)
    params.pop('vis_rgbd1.sobelconv.convx.weight')
    with pytest.raises(CheckpointMismatchError, match=r'1 missing \(vis_rgbd1.sobelconv.convx.weight\)'):
        load_params(SeAFusion(), params, strict=True)


def test_seafusion_gradient_kernels_start_as_sobel_and_are_learnt():
    net = SeAFusion()
    sobel = torch.tensor(SOBEL_X)
    assert torch.equal(net.inf_rgbd2.sobelconv.convx.weight[5, 0], sobel)
    assert torch.equal(net.inf_rgbd2.sobelconv.convy.weight[5, 0], sobel.T)
    assert net.inf_rgbd2.sobelconv.convx.weight.requires_grad


def test_circular_convolution_matches_its_definition():
    torch.manual_seed(0)
    a, b = torch.rand(1, 2, 5, 7), torch.rand(1, 2, 5, 7)
    expected = torch.zeros_like(a)
    for dy in range(5):
        for dx in range(7):
            expected += a[:, :, dy:dy + 1, dx:dx + 1] * torch.roll(b, shifts=(dy, dx), dims=(2, 3))
    assert torch.allclose(circular_convolution(a, b), expected, atol=1e-5)


def test_channel_layer_norm_normalises_over_channels_at_each_pixel():
    torch.manual_seed(0)
    norm = ChannelLayerNorm(4)
    x = torch.rand(2, 4, 3, 5) * 3
    mean, var = x.mean(1, keepdim=True), x.var(1, unbiased=False, keepdim=True)
    assert torch.allclose(norm(x), (x - mean) / torch.sqrt(var + 1e-5), atol=1e-5)


def test_ship_shares_fiscnet_blocks():
    ship, fiscnet = SHIP(n_feat=8), FISCNet(n_feat=8)
    assert type(ship.vis.block1) is type(fiscnet.calibration2.vi) is fusion_blocks.EdgeBlock
    assert type(ship.reconstruction) is type(fiscnet.reconstruction) is fusion_blocks.Refine
    assert type(ship.postprocess[0]) is type(fiscnet.calibration2.interaction.fused) is fusion_blocks.InvBlock
    assert type(ship.postprocess[0].F) is fusion_blocks.DenseBlock  # FISCNet's couplings are multi-scale


@pytest.mark.parametrize('method, height, width', [('SeAFusion', 1, 1), ('SeAFusion', 9, 13), ('SHIP', 1, 2),
                                                   ('SHIP', 9, 13), ('SHIP', 33, 20)])
def test_any_size_works_and_batch_items_are_independent(method, height, width):
    torch.manual_seed(0)
    net = NETWORKS[method]().eval()
    vis, ir = torch.rand(2, 3, height, width), torch.rand(2, 1, height, width)
    with torch.no_grad():
        batched, single = net(vis, ir), net(vis[1:], ir[1:])
    assert batched.shape == (2, 1, height, width) and torch.isfinite(batched).all()
    assert torch.allclose(batched[1:], single, atol=1e-5)


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match='sizes .H, W. differ'):
        SeAFusion()(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 9))
    with pytest.raises(ValueError, match='at least 2 pixels'):
        SHIP()(torch.rand(1, 3, 1, 1), torch.rand(1, 1, 1, 1))


def test_stretch_to_uint8_is_min_max_and_truncates():
    img = np.array([[[0.2, 0.2, 0.2], [0.6, 0.5, 0.4]], [[0.3, 0.35, 0.6], [0.2, 0.21, 0.2]]], np.float32)
    expected = np.floor((img - 0.2) / 0.4 * 255).astype(np.uint8)
    out = stretch_to_uint8(img)
    assert out.min() == 0 and out.max() == 255
    assert np.abs(out.astype(int) - expected).max() <= 1 and (out <= np.round((img - 0.2) / 0.4 * 255)).all()
    assert stretch_to_uint8(np.array([[1.5, -1.0, 0.5]], np.float32)).tolist() == [[255, 0, 127]]  # clipped first
    assert np.array_equal(stretch_to_uint8(np.full((2, 2), 0.5, np.float32)), to_uint8(np.full((2, 2), 0.5)))


def test_to_8bit_option_switches_between_released_and_common_saving(pair_folders):
    from basicsr.data.fusion_test_dataset import FusionTestDataset
    from basicsr.models.fusion_engine import FusionEngine
    ir, vi = pair_folders
    batch = torch.utils.data.default_collate([FusionTestDataset({'dataroot_ir': ir, 'dataroot_vi': vi})[0]])
    images = {}
    for mode in ('round', 'stretch_truncate'):
        torch.manual_seed(0)
        engine = FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'SeAFusion'}, 'to_8bit': mode})
        fused = engine.fuse(batch['ir'], batch['vi'])
        images[mode] = engine.to_uint8(fused)[0]
        fused = fused[0].permute(1, 2, 0).numpy()
        assert np.array_equal(images[mode], {'round': to_uint8, 'stretch_truncate': stretch_to_uint8}[mode](fused))
    assert images['stretch_truncate'].min() == 0 and images['stretch_truncate'].max() == 255
    assert not np.array_equal(images['round'], images['stretch_truncate'])
    with pytest.raises(OptionError, match="to_8bit: 'stretch' is not a conversion; use one of: round, stretch_truncate"):
        FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'SeAFusion'}, 'to_8bit': 'stretch'})
