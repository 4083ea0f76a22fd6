"""Tiled fusion: exact where the network is per-pixel, smooth blending, the real FISCNet, the options."""
import doctest
import subprocess
import sys

import numpy as np
import pytest
import torch

from basicsr.models.ema import ModelEMA
from basicsr.models.fusion_engine import FusionEngine
from basicsr.utils import memory, tiling
from basicsr.utils.color_util import rgb_to_ycrcb, ycrcb_to_rgb
from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.img_util import read_image
from basicsr.utils.tiling import fuse_in_tiles, tile_starts
from conftest import REPO, WEIGHTS, require_shared, smooth_image, write_image_file

# Measured on TNO21 01 (360x270) with the released weights, tiles of 128 sharing 32 pixels, against
# whole-image fusion: max 52 grey levels, mean 3.33, 74 % of the pixels off by more than 1 (FISCNet's
# Fourier amplitudes, norms and pooled gates see one tile). The bounds leave a margin for other CPUs.
REAL_MAX_GREY_DIFF = 55
REAL_MEAN_GREY_DIFF = 4.0


def per_pixel(vi_tile, ir_tile):
    """A network without context: every output pixel depends on its own input pixel only."""
    return 0.7 * vi_tile[:, :1] + 0.3 * ir_tile - 0.1 * vi_tile[:, 2:3]


def test_doctests():
    failures, _ = doctest.testmod(tiling, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


@pytest.mark.parametrize('height, width, tile, overlap', [
    (200, 300, 128, 32),   # neither side a multiple of the tile: the last tiles are shifted inward
    (257, 130, 64, 0),     # no overlap: tiles abut, except the shifted last ones
    (100, 150, 128, 32),   # smaller than a tile in height: one row of tiles
    (100, 120, 128, 32),   # smaller than a tile: fused whole
    (230, 230, 128, 63),   # the largest overlap allowed; the last tile overlaps two others
    (64, 64, 64, 16),      # exactly one tile
])
def test_a_per_pixel_network_gives_the_whole_image_result(height, width, tile, overlap):
    generator = torch.Generator().manual_seed(0)
    vi_ycrcb = torch.rand(2, 3, height, width, generator=generator)
    ir = torch.rand(2, 1, height, width, generator=generator)
    sizes = []

    def run(vi_tile, ir_tile):
        sizes.append(tuple(vi_tile.shape[-2:]))
        return per_pixel(vi_tile, ir_tile)

    fused = fuse_in_tiles(run, vi_ycrcb, ir, tile, overlap)
    assert fused.shape == (2, 1, height, width)
    assert torch.allclose(fused, per_pixel(vi_ycrcb, ir), rtol=0, atol=1e-6)
    assert set(sizes) == {(min(tile, height), min(tile, width))}  # every call gets the same size
    assert len(sizes) == len(tile_starts(height, tile, overlap)) * len(tile_starts(width, tile, overlap))


def test_tiles_cover_each_side_and_share_at_least_the_overlap():
    for length in range(64, 700, 7):
        for tile, overlap in ((64, 0), (128, 32), (128, 63), (256, 64)):
            starts = tile_starts(length, tile, overlap)
            size = min(tile, length)
            assert starts[0] == 0 and starts[-1] + size == length
            assert all(0 < b - a <= tile - overlap for a, b in zip(starts, starts[1:]))


def test_the_result_keeps_the_inputs_device_and_dtype():
    vi_ycrcb, ir = torch.rand(1, 3, 150, 200, dtype=torch.float64), torch.rand(1, 1, 150, 200, dtype=torch.float64)
    fused = fuse_in_tiles(per_pixel, vi_ycrcb, ir, 64, 16)
    assert fused.dtype == torch.float64 and fused.device == vi_ycrcb.device
    assert torch.allclose(fused, per_pixel(vi_ycrcb, ir), rtol=0, atol=1e-12)


@pytest.mark.parametrize('height, width, overlap', [(300, 500, 32), (230, 333, 20), (129, 129, 8)])
def test_blending_is_a_continuous_ramp_between_tiles(height, width, overlap):
    """Each tile returns a constant, its row (or its column) in the grid of tiles: the blend stays
    within the constants, is a tile's own value where only that tile covers the pixel, and steps
    by at most 1 / (overlap + 1) between neighbouring pixels, where a seam would step by 1."""
    tile = 128
    rows, cols = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    # The visible chroma channels carry each pixel's coordinates, so a tile's first pixel tells where it is.
    y, x = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                          indexing='ij')
    vi_ycrcb = torch.stack([torch.zeros_like(y), y, x])[None]
    ir = torch.zeros(1, 1, height, width)
    for dim, starts in ((0, rows), (1, cols)):
        def run(vi_tile, ir_tile, dim=dim, starts=starts):
            return torch.full_like(ir_tile, float(starts.index(int(vi_tile[0, 1 + dim, 0, 0]))))

        fused = fuse_in_tiles(run, vi_ycrcb, ir, tile, overlap)[0, 0]
        assert fused.min() >= 0 and fused.max() <= len(starts) - 1
        assert fused.diff(dim=dim).abs().max() <= 1 / (overlap + 1) + 1e-6
        assert fused.diff(dim=1 - dim).abs().max() <= 1e-6  # the other direction is constant
        assert fused[0, 0] == 0 and fused[-1, -1] == len(starts) - 1  # corners: one tile each


@pytest.mark.parametrize('tile, overlap, message', [
    (63, 0, 'tiles of 63 pixels are below the minimum of 64'),
    (128, 64, 'an overlap of 64 pixels must be at least 0 and below half the tile (64)'),
    (129, -1, 'an overlap of -1 pixels must be at least 0'),
])
def test_bad_tiling_is_refused_with_the_reason(tile, overlap, message):
    with pytest.raises(ValueError, match=f'^{message}'.replace('(', r'\(').replace(')', r'\)')):
        fuse_in_tiles(per_pixel, torch.rand(1, 3, 300, 300), torch.rand(1, 1, 300, 300), tile, overlap)


def test_mismatched_inputs_and_outputs_are_refused():
    vi_ycrcb = torch.rand(1, 3, 200, 300)
    with pytest.raises(ValueError, match='differ in batch, height or width'):
        fuse_in_tiles(per_pixel, vi_ycrcb, torch.rand(1, 1, 200, 299), 128)
    with pytest.raises(ValueError, match=r'^run returned \(1, 1, 64, 64\) for a tile of 128x128'):
        fuse_in_tiles(lambda vi, ir: ir[..., :64, :64], vi_ycrcb, torch.rand(1, 1, 200, 300), 128)


# ----------------------------------------------------------------------------------- FusionEngine


def random_engine(random_checkpoint, **opt):
    return FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'FISCNet'}, 'execution': 'eager',
                                      'path': {'pretrain_network_g': str(random_checkpoint), 'param_key_g': 'params'},
                                      **opt})


def test_engine_fuses_in_tiles_as_fuse_in_tiles_does(random_checkpoint, rng):
    """An odd tile size too: FISCNet takes any side of at least 8 pixels (its down-sampled branches
    are resized back to the input size), so tiles need no padding."""
    engine = random_engine(random_checkpoint, tile=67, tile_overlap=16)
    ir = torch.from_numpy(smooth_image(rng, 90, 150, dtype=np.uint8) / 255.0).float()[None, None]
    vi = torch.from_numpy(smooth_image(rng, 90, 150, 3) / 255.0).float().permute(2, 0, 1)[None]
    tiled = engine.fuse(ir, vi)
    vi_ycrcb = rgb_to_ycrcb(vi)
    expected_y = fuse_in_tiles(engine.net, vi_ycrcb, ir, 67, 16).clamp(0, 1)
    assert torch.equal(tiled, ycrcb_to_rgb(torch.cat([expected_y, vi_ycrcb[:, 1:]], dim=1)))
    # What a training run's validation builds: the EMA copy, eager, the same tile options.
    ema = ModelEMA(engine.net, 0.999)
    assert torch.equal(FusionEngine(ema.net, engine.device, tile=67, tile_overlap=16).fuse(ir, vi), tiled)
    whole = FusionEngine(engine.net, engine.device).fuse(ir, vi)
    assert not torch.equal(whole, tiled)  # whole-image fusion differs: FISCNet sees the whole image


def test_engine_refuses_a_bad_overlap_naming_the_options(random_checkpoint):
    with pytest.raises(OptionError, match=r'^tile: 128, tile_overlap: 64: an overlap of 64 pixels'):
        random_engine(random_checkpoint, tile=128, tile_overlap=64)


def test_memory_check_estimates_for_the_tile_and_suggests_one(monkeypatch):
    monkeypatch.setattr(memory, 'available_host_bytes', lambda: 2 * 2**30)
    with pytest.raises(InputError) as err:
        memory.check_cpu_inference_fits('big.png', 1, 1536, 2048)
    message = str(err.value)
    assert 'free memory, fuse it in tiles (tile: 512 in the YAML, --tile 512 on scripts/fuse.py), or downscale' \
        in message and '\n' not in message
    memory.check_cpu_inference_fits('big.png', 1, 1536, 2048, tile=512)  # fits: no error
    with pytest.raises(InputError, match=r'^big.png: fusing 2048x1536 \(batch 1\) in tiles of 1024 on the CPU '
                                         r'needs about .*, use smaller tiles \(tile: 512 in the YAML'):
        memory.check_cpu_inference_fits('big.png', 1, 1536, 2048, tile=1024)


def test_out_of_memory_error_suggests_tiles():
    cpu = torch.device('cpu')
    assert 'free memory, fuse it in tiles (tile: 512 in the YAML, --tile 512 on scripts/fuse.py), or downscale it' \
        in str(memory.out_of_memory_error('a', 1, 3000, 4000, cpu))
    assert str(memory.out_of_memory_error('a', 1, 3000, 4000, cpu, tile=512)).startswith(
        'a: fusing 4000x3000 (batch 1) in tiles of 512 ran out of memory on cpu; ')


# ------------------------------------------------------------------------- the released FISCNet


def test_released_fiscnet_in_tiles_stays_near_whole_image_fusion():
    require_shared('weights', 'FISCNet_official.pth')
    ir = torch.from_numpy(read_image(require_shared('data', 'TNO21', 'ir', '01.png'))[:, :, :1]).permute(2, 0, 1)
    vi = torch.from_numpy(read_image(require_shared('data', 'TNO21', 'vi', '01.png'))).permute(2, 0, 1)
    engine = FusionEngine.from_options({'num_gpu': 0, 'network_g': {'type': 'FISCNet'},
                                        'path': {'pretrain_network_g': str(WEIGHTS), 'param_key_g': 'params'}})

    def fuse(tile=None):
        engine.tile, engine.tile_overlap = tile, 32
        fused = engine.fuse(ir[None], vi[None])
        return fused, engine.to_uint8(fused)[0].astype(np.int16)

    whole, whole_8bit = fuse()
    diff = np.abs(fuse(128)[1] - whole_8bit)
    assert 0 < diff.max() <= REAL_MAX_GREY_DIFF and diff.mean() <= REAL_MEAN_GREY_DIFF  # 0: tiling did not run
    larger, larger_8bit = fuse(512)  # larger than the 360x270 image: fused whole
    assert torch.equal(larger, whole) and np.array_equal(larger_8bit, whole_8bit)


# ------------------------------------------------------------------------------- scripts/fuse.py


def run_fuse_py(*args, cwd):
    return subprocess.run([sys.executable, str(REPO / 'scripts' / 'fuse.py'), *map(str, args)], cwd=cwd,
                          capture_output=True, text=True)


@pytest.mark.parametrize('flags, message', [
    (['--tile', '32'], 'error: --tile 32 --tile_overlap 32: tiles of 32 pixels are below the minimum of 64'),
    (['--tile', '128', '--tile_overlap', '64'], 'error: --tile 128 --tile_overlap 64: an overlap of 64 pixels'),
])
def test_fuse_py_refuses_bad_tiles_in_one_line(tmp_path, pair_folders, flags, message):
    ir, vi = pair_folders
    result = run_fuse_py('--ir', ir, '--vi', vi, '--out', tmp_path / 'out', '--weights', 'random', *flags,
                         cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(message) and result.stderr.count('\n') == 1, result.stderr
    assert not (tmp_path / 'out').exists()


def test_fuse_py_fuses_in_tiles(tmp_path, rng, random_checkpoint):
    write_image_file(tmp_path / 'ir' / 'a.png', smooth_image(rng, 100, 150))
    write_image_file(tmp_path / 'vi' / 'a.png', smooth_image(rng, 100, 150, 3))
    result = run_fuse_py('--ir', tmp_path / 'ir', '--vis', tmp_path / 'vi', '--out', tmp_path / 'out',
                         '--weights', random_checkpoint, '--param_key', 'params', '--device', 'cpu',
                         '--tile', 64, '--tile_overlap', 16, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / 'out').iterdir()] == ['a.png']
