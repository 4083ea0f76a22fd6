import copy
import os
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from basicsr.archs.fiscnet_arch import CDC, FISCNet, checkpoint_filter_fn, frequency_integration
from basicsr.utils.checkpoint import CheckpointMismatchError, load_params, read_params
from basicsr.utils.color_util import rgb_to_ycrcb
from basicsr.utils.execution import prepare_input, prepare_network
from basicsr.utils.img_util import read_image
from conftest import SHARED, WEIGHTS, job_log, require_shared, runs_beside_the_suite, start_logged


def as_8bit(y):
    return np.round(np.clip(y, 0, 1) * 255)


def image_tensor(path):
    return torch.from_numpy(read_image(path)).permute(2, 0, 1)[None]


@pytest.fixture(scope='module')
def released_net():
    require_shared('weights', 'FISCNet_official.pth')
    net = FISCNet()
    load_params(net, read_params(WEIGHTS, 'params'), strict=True)
    return net.eval()


@pytest.mark.parametrize('set_name, stem', [('TNO21', '01'), ('TNO21', '17'), ('MSRS', '00004N')])
def test_reproduces_released_raw_output(released_net, set_name, stem):
    reference = np.load(require_shared('reference', set_name, f'{stem}_y.npy'))
    ir = image_tensor(require_shared('data', set_name, 'ir', f'{stem}.png'))
    vis = image_tensor(require_shared('data', set_name, 'vi', f'{stem}.png'))
    with torch.no_grad():
        fused_y = released_net(rgb_to_ycrcb(vis), ir[:, :1])[0, 0].numpy()
    assert fused_y.shape == reference.shape
    assert np.abs(fused_y - reference).max() <= 1e-4


def test_release_loads_into_separate_encoder_variant_strictly():
    require_shared('weights', 'FISCNet_official.pth')
    net = FISCNet(separate_stage1_encoders=True)
    load_params(net, read_params(WEIGHTS), strict=True)
    # The release's unused stage-1 encoders hold uninitialised values; they are loaded as they are.
    assert abs(net.calibration1.ir.CDC.HP_branch.item()) > 1e6
    released = torch.load(WEIGHTS, map_location='cpu', weights_only=True)['params']
    assert 'correction1.inf.CDC.HP_branch' in released  # the file keeps its names; loading maps them
    FISCNet().load_state_dict(released, strict=True)


@pytest.mark.parametrize('height, width', [(8, 8), (9, 13), (37, 20), (33, 65)])
def test_any_size_from_8_works(height, width):
    torch.manual_seed(0)
    net = FISCNet().eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, height, width), torch.rand(2, 1, height, width))
    assert out.shape == (2, 1, height, width)
    assert torch.isfinite(out).all()


def test_large_input_1280x1024_works():
    torch.manual_seed(0)
    net = FISCNet().eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 1024, 1280), torch.rand(1, 1, 1024, 1280))
    assert out.shape == (1, 1, 1024, 1280) and torch.isfinite(out).all()


@pytest.mark.parametrize('height, width', [(7, 7), (7, 64), (64, 3)])
def test_below_minimum_size_is_a_clear_error(height, width):
    with pytest.raises(ValueError, match='at least 8x8'):
        FISCNet()(torch.rand(1, 3, height, width), torch.rand(1, 1, height, width))


def test_batch_items_are_independent():
    """Instance norms and Fourier transforms are per image: batching must not mix images."""
    torch.manual_seed(0)
    net = FISCNet().eval()
    vis, ir = torch.rand(3, 3, 16, 24), torch.rand(3, 1, 16, 24)
    with torch.no_grad():
        batched = net(vis, ir)
        single = net(vis[1:2], ir[1:2])
    assert torch.allclose(batched[1:2], single, atol=1e-6)


def test_cdc_folded_kernel_equals_two_branch_definition():
    torch.manual_seed(0)
    cdc = CDC(4, 4)
    with torch.no_grad():
        cdc.HP_branch.fill_(0.3)
    x = torch.rand(2, 4, 9, 11)
    h_taps, d_taps = cdc.h_conv.conv.weight[:, :, 0], cdc.d_conv.conv.weight[:, :, 0]
    z = torch.zeros_like(h_taps[..., 0])

    def branch(taps, layout):
        kernel = torch.stack([taps[..., i] if i is not None else z for i in layout], -1).view(4, 4, 3, 3)
        center = taps.sum(-1)[..., None, None]
        return torch.nn.functional.conv2d(x, kernel, padding=1) - 0.8 * torch.nn.functional.conv2d(x, center)

    h = branch(h_taps, [None, 0, None, 1, 2, 3, None, 4, None])
    d = branch(d_taps, [0, None, 1, None, 2, None, 3, None, 4])
    gate = torch.sigmoid(torch.tensor(0.3))
    expected = gate * h + (1 - gate) * d + x
    assert torch.allclose(cdc(x), expected, atol=1e-6)


def test_frequency_integration_of_one_image_with_itself_doubles_it():
    # |ifft(A (e^{i phi} + e^{i phi}))| = 2 |x| for a real x.
    x = torch.rand(1, 2, 10, 12)
    assert torch.allclose(frequency_integration(x, x, x), 2 * x, atol=1e-5)


def test_new_network_trains_without_nan():
    torch.manual_seed(0)
    net = FISCNet()
    assert net.calibration1.fused.CDC.HP_branch.item() == 0
    out = net(torch.rand(2, 3, 16, 16), torch.rand(2, 1, 16, 16))
    out.mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_checkpoint_that_does_not_fit_lists_the_keys(tmp_path):
    torch.manual_seed(0)
    params = FISCNet(n_feat=16).state_dict()
    params.pop('reconstruction.conv_last.bias')
    params['extra.weight'] = torch.zeros(1)
    with pytest.raises(CheckpointMismatchError) as err:
        load_params(FISCNet(n_feat=8), params, strict=True, source='ckpt.pth')
    message = str(err.value)
    assert '\n' not in message
    for part in ('ckpt.pth', '1 missing (reconstruction.conv_last.bias)', 'unexpected (extra.weight)',
                 '282 with other shapes', 'file (16,) vs network (8,)'):
        assert part in message


def released_names(state_dict):
    """Our keys in the released file's names (the inverse of checkpoint_filter_fn)."""
    renamed = {}
    for key, value in state_dict.items():
        key = re.sub(r'^calibration(\d)\.', r'correction\1.', key)
        key = re.sub(r'(^|\.)vi\.', r'\1vis.', re.sub(r'(^|\.)ir\.', r'\1inf.', key))
        renamed[key.replace('_vi.', '_vis.').replace('_ir.', '_inf.')] = value
    return renamed


def test_released_key_names_load_strictly_and_the_filter_is_idempotent():
    torch.manual_seed(0)
    source = FISCNet(n_feat=8, separate_stage1_encoders=True)
    released = released_names(source.state_dict())
    assert 'correction1.inf.CDC.HP_branch' in released and 'correction2.interaction.post_vis.weight' in released
    assert checkpoint_filter_fn(released).keys() == source.state_dict().keys()
    assert checkpoint_filter_fn(source.state_dict()).keys() == source.state_dict().keys()
    for load in (lambda net: load_params(net, released, strict=True),
                 lambda net: net.load_state_dict(released, strict=True)):  # plain PyTorch, through the hook
        target = FISCNet(n_feat=8, separate_stage1_encoders=True)
        load(target)
        assert all(torch.equal(a, b) for a, b in zip(target.state_dict().values(), source.state_dict().values()))
    # Shapes are compared under the mapped names, so a wrong width is the one-line mismatch error.
    with pytest.raises(CheckpointMismatchError, match='with other shapes'):
        load_params(FISCNet(n_feat=16, separate_stage1_encoders=True), released, strict=True)


def test_module_prefix_from_ddp_is_accepted():
    torch.manual_seed(0)
    source = FISCNet(n_feat=8)
    params = {f'module.{k}': v for k, v in source.state_dict().items()}
    target = FISCNet(n_feat=8)
    load_params(target, params, strict=True)
    assert torch.equal(target.reconstruction.conv_last.weight, source.reconstruction.conv_last.weight)


def test_read_params_falls_back_to_params_and_reports_bad_files(tmp_path, random_checkpoint):
    assert 'reconstruction.conv_last.weight' in read_params(random_checkpoint, 'params_ema')
    with pytest.raises(ValueError, match="no 'net' in the checkpoint .*params"):
        read_params(random_checkpoint, 'net')
    junk = tmp_path / 'junk.pth'
    junk.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='junk.pth: not a readable PyTorch checkpoint'):
        read_params(junk)
    with pytest.raises(ValueError, match='missing.pth: checkpoint not found; fetch'):
        read_params(tmp_path / 'missing.pth')


def released_fused_y(mode, set_name, stem, net=None):
    """The raw fused Y of a shared pair by the released weights run in execution ``mode``."""
    if net is None:
        net = FISCNet()
        load_params(net, read_params(WEIGHTS, 'params'), strict=True)
    net = prepare_network(copy.deepcopy(net).eval(), mode)
    vi = prepare_input(rgb_to_ycrcb(image_tensor(SHARED / 'data' / set_name / 'vi' / f'{stem}.png')), mode)
    ir = prepare_input(image_tensor(SHARED / 'data' / set_name / 'ir' / f'{stem}.png')[:, :1], mode)
    with torch.inference_mode():
        return net(vi, ir)[0, 0].numpy()


def assert_within_the_accuracy_budget(fused_y, set_name, stem):
    """Raw Y within 1e-4 of the released output, and so within 1 grey level once 8-bit."""
    reference = np.load(require_shared('reference', set_name, f'{stem}_y.npy'))
    assert np.abs(fused_y - reference).max() <= 1e-4
    assert np.abs(as_8bit(fused_y) - as_8bit(reference)).max() <= 1


@pytest.mark.parametrize('set_name, stem', [('TNO21', '01'), ('TNO21', '17'), ('MSRS', '00004N')])
def test_channels_last_stays_within_the_accuracy_budget(released_net, set_name, stem):
    require_shared('data', set_name)
    assert_within_the_accuracy_budget(released_fused_y('channels_last', set_name, stem, released_net), set_name, stem)


COMPILED_PAIR = ('TNO21', '01')


@runs_beside_the_suite('test_compile_stays_within_the_accuracy_budget')
def start_compiled_fusion(folder):
    """Compiling FISCNet takes about 5 minutes of one core (cold Inductor cache): one pair, fused in
    a process of one compute thread (the compiling is single-threaded)."""
    set_name, stem = COMPILED_PAIR
    inputs = [WEIGHTS, SHARED / 'reference' / set_name / f'{stem}_y.npy', SHARED / 'data' / set_name]
    if not all(path.exists() for path in inputs):
        return None
    code = ('import sys, numpy; from test_fiscnet_arch import released_fused_y; '
            f'numpy.save(sys.argv[1], released_fused_y("compile", *{COMPILED_PAIR!r}))')
    return start_logged([sys.executable, '-c', code, str(folder / 'fused_y.npy')], folder,
                        cwd=Path(__file__).parent, env={**os.environ, 'OMP_NUM_THREADS': '1'})


def test_compile_stays_within_the_accuracy_budget(background):
    require_shared('weights', 'FISCNet_official.pth')
    require_shared('reference', COMPILED_PAIR[0], f'{COMPILED_PAIR[1]}_y.npy')
    process, folder = background
    assert process.returncode == 0, job_log(folder)
    assert_within_the_accuracy_budget(np.load(folder / 'fused_y.npy'), *COMPILED_PAIR)


def test_auto_execution_is_channels_last_on_the_cpu_and_eager_for_training():
    from basicsr.models.fusion_engine import FusionEngine
    from basicsr.models.fusion_model import FusionModel
    from basicsr.utils.errors import OptionError
    assert FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'FISCNet'}}).execution == 'channels_last'
    training = {'num_gpu': 0, 'is_train': True, 'network_g': {'type': 'FISCNet'},
                'train': {'max_loss': {'type': 'MaxFusionLoss'}}}
    model = FusionModel(training)
    assert model.net_g.calibration1.fused.process.weight.is_contiguous()  # not converted to NHWC
    with pytest.raises(OptionError, match='execution: compile is for testing; training runs eager'):
        FusionModel({**training, 'execution': 'compile'})


def test_unknown_execution_mode_is_an_option_error():
    from basicsr.models.fusion_engine import FusionEngine
    from basicsr.utils.errors import OptionError
    with pytest.raises(OptionError, match="execution: 'fast' is not a mode; use one of: auto, eager, "
                                          "channels_last, compile"):
        FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'FISCNet'}, 'execution': 'fast'})
