"""Saliency masks: the formula on hand-computed images, the command line, and VSM.m = Python."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from basicsr.data.saliency import (_round_half_away, global_contrast_saliency, mask_table, pair_mask, read_gray_u8,
                                   saliency_levels, saliency_mask, to_saliency_gray)
from basicsr.utils.errors import InputError
from conftest import job_log, runs_beside_the_suite, start_logged

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[1].parent / 'shared'
SCRIPT = REPO / 'scripts' / 'data_preparation' / 'generate_saliency_masks.py'
IDENTITY_SETS = ('TNO21', 'MSRS', 'VIFB')


def load_script():
    """The command-line script as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location('generate_saliency_masks', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def u8(rows):
    return np.array(rows, dtype=np.uint8)


# ---------------------------------------------------------------- formula, hand-computed


def test_saliency_of_a_four_pixel_image():
    # h(0)=1, h(2)=2, h(5)=1: S(0)=2*2+5=9, S(2)=2+3=5, S(5)=5+2*3=11; (S-5)/6
    v = global_contrast_saliency(u8([[0, 2], [2, 5]]))
    np.testing.assert_array_equal(v, [[4 / 6, 0.0], [0.0, 1.0]])
    assert v.dtype == np.float64


def test_min_max_runs_over_levels_present_only():
    # S(0)=100, S(100)=3*100=300; the absent level 255 (S=3*255+155=920) must not set the maximum
    gray = u8([[0, 0], [0, 100]])
    np.testing.assert_array_equal(global_contrast_saliency(gray), [[0.0, 0.0], [0.0, 1.0]])
    assert saliency_levels(gray)[255] == (920 - 100) / 200


def test_constant_image_has_zero_saliency():
    np.testing.assert_array_equal(global_contrast_saliency(np.full((3, 4), 77, np.uint8)), np.zeros((3, 4)))


def test_saliency_matches_the_pixel_pair_definition():
    # S(I(p)) = sum over all pixels q of |I(p) - I(q)|, computed the slow way
    gray = np.random.default_rng(1).integers(0, 256, (9, 11), dtype=np.uint8)
    flat = gray.ravel().astype(np.int64)
    s = np.abs(flat[:, None] - flat[None, :]).sum(axis=1)
    expected = ((s - s.min()).astype(np.float64) / float(s.max() - s.min())).reshape(gray.shape)
    np.testing.assert_array_equal(global_contrast_saliency(gray), expected)


def test_binary_and_weight_masks_by_hand():
    vi = u8([[0, 2], [2, 5]])      # V_vi = [2/3, 0; 0, 1]
    ir = u8([[0, 0], [0, 255]])    # V_ir = [0, 0; 0, 1]
    # 2/3 > 0 -> 255; both 0 -> 0 (NaN ratio); equal and > 0 -> 255 (+Inf ratio)
    np.testing.assert_array_equal(saliency_mask(ir, vi, 'binary'), [[255, 0], [0, 255]])
    # 255 * (0.5 + 0.5 * d): 212.49999999999997 (float64 of 2/3), then three ties 127.5 -> 128
    np.testing.assert_array_equal(saliency_mask(ir, vi, 'weight'), [[212, 128], [128, 128]])
    # vi less salient than ir everywhere it differs: V_vi - V_ir = -1 -> 0
    np.testing.assert_array_equal(saliency_mask(vi, ir, 'binary'), [[0, 0], [0, 255]])
    np.testing.assert_array_equal(saliency_mask(vi, ir, 'weight'), [[43, 128], [128, 128]])


def test_binary_equals_the_clipped_ratio_of_the_original_script():
    rng = np.random.default_rng(2)
    for _ in range(5):
        # few levels (integer division) make equal saliencies, ties and zeros likely
        ir = (rng.integers(0, 256, (20, 30)) // rng.integers(1, 60)).astype(np.uint8)
        vi = (rng.integers(0, 256, (20, 30)) // rng.integers(1, 60)).astype(np.uint8)
        v_ir, v_vi = global_contrast_saliency(ir), global_contrast_saliency(vi)
        with np.errstate(divide='ignore', invalid='ignore'):
            ratio = v_vi / (v_vi - v_ir)
        expected = np.round(np.clip(np.nan_to_num(ratio, nan=0.0, posinf=1.0), 0, 1) * 255)
        np.testing.assert_array_equal(saliency_mask(ir, vi, 'binary'), expected)


def test_lookup_table_equals_per_pixel_arithmetic():
    rng = np.random.default_rng(3)
    ir = rng.integers(0, 256, (40, 50), dtype=np.uint8)
    vi = (rng.integers(0, 256, (40, 50)) // 3).astype(np.uint8)
    v_ir, v_vi = global_contrast_saliency(ir), global_contrast_saliency(vi)
    weight = 255.0 * (0.5 + 0.5 * (v_vi - v_ir))
    low = np.floor(weight)
    np.testing.assert_array_equal(saliency_mask(ir, vi, 'weight'), low + (weight - low >= 0.5))
    binary = ((v_vi > v_ir) | ((v_vi == v_ir) & (v_vi > 0))) * 255
    np.testing.assert_array_equal(saliency_mask(ir, vi, 'binary'), binary)


def test_mask_table_rejects_an_unknown_mode_and_masks_reject_shape_mismatch():
    with pytest.raises(ValueError, match='mode'):
        mask_table(np.zeros(256), np.zeros(256), 'soft')
    with pytest.raises(ValueError, match='shapes differ'):
        saliency_mask(np.zeros((2, 3), np.uint8), np.zeros((3, 2), np.uint8))
    with pytest.raises(ValueError, match='uint8'):
        saliency_mask(np.zeros((2, 3), np.int64), np.zeros((2, 3), np.int64))


def test_rounding_to_8_bits_is_half_away_from_zero_like_matlab_uint8():
    x = np.array([0.5, 1.5, 2.5, 126.5, 0.49999999999999994, 254.50000000000003])
    np.testing.assert_array_equal(_round_half_away(x), [1, 2, 3, 127, 0, 255])


def test_gray_conversion_rounds_half_away_from_zero_and_scales_16_bit():
    rgb = u8([[[1, 0, 0], [1, 1, 0], [255, 255, 254], [9, 9, 9]]])  # 1/3, 2/3, 254.67, 9
    np.testing.assert_array_equal(to_saliency_gray(rgb), [[0, 1, 255, 9]])
    deep = np.array([[128, 129, 385, 386, 65535]], dtype=np.uint16)  # v / 257: .498 .502 1.498 1.502 255
    np.testing.assert_array_equal(to_saliency_gray(deep), [[0, 1, 1, 2, 255]])
    rgba = np.dstack([rgb, np.zeros((1, 4), np.uint8)])
    np.testing.assert_array_equal(to_saliency_gray(rgba), [[0, 1, 255, 9]])
    # infrared: the red channel (OpenCV order B, G, R), as the training pipeline's infrared input
    np.testing.assert_array_equal(to_saliency_gray(u8([[[10, 20, 30], [7, 7, 7]]]), infrared=True), [[30, 7]])
    with pytest.raises(InputError, match='float32'):
        to_saliency_gray(np.zeros((2, 2), np.float32))


# ---------------------------------------------------------------- files and command line


def make_pair_folders(root: Path, sizes: dict[str, tuple[int, int]]) -> tuple[Path, Path]:
    """Random IR (gray PNG) / VI (RGB PNG) pairs under root/ir and root/vi; sizes: stem -> (h, w)."""
    rng = np.random.default_rng(4)
    for role in ('ir', 'vi'):
        (root / role).mkdir(parents=True)
    for stem, (h, w) in sizes.items():
        cv2.imwrite(str(root / 'ir' / f'{stem}.png'), rng.integers(0, 256, (h, w), dtype=np.uint8))
        cv2.imwrite(str(root / 'vi' / f'{stem}.png'), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    return root / 'ir', root / 'vi'


def test_cli_writes_one_8_bit_mask_per_pair(tmp_path, capsys):
    ir, vi = make_pair_folders(tmp_path, {'a': (20, 30), 'b': (17, 9)})
    (vi / 'Thumbs.db').write_bytes(b'\0')
    out = tmp_path / 'masks'
    assert load_script().main(['--ir', str(ir), '--vi', str(vi), '--out', str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ['a.png', 'b.png']
    mask = cv2.imread(str(out / 'a.png'), cv2.IMREAD_UNCHANGED)
    assert mask.dtype == np.uint8 and mask.shape == (20, 30)
    np.testing.assert_array_equal(mask, pair_mask(ir / 'a.png', vi / 'a.png'))
    assert set(np.unique(mask)) == {0, 255}
    assert 'wrote 2 binary mask(s)' in capsys.readouterr().out


def test_cli_workers_give_the_same_weight_masks(tmp_path):
    ir, vi = make_pair_folders(tmp_path, {f'{i:02d}': (15 + i, 21) for i in range(4)})
    script = load_script()
    assert script.main(['--ir', str(ir), '--vi', str(vi), '--out', str(tmp_path / 'one'), '--mode', 'weight']) == 0
    assert script.main(['--ir', str(ir), '--vi', str(vi), '--out', str(tmp_path / 'two'), '--mode', 'weight',
                        '--workers', '2']) == 0
    for path in sorted((tmp_path / 'one').iterdir()):
        np.testing.assert_array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED),
                                      cv2.imread(str(tmp_path / 'two' / path.name), cv2.IMREAD_UNCHANGED))
    assert len(list((tmp_path / 'two').iterdir())) == 4


@pytest.mark.parametrize('case, expected', [
    ('missing_partner', 'no vi image for 1 stem(s) found in the other folder(s): c'),
    ('size_mismatch', 'b.png: size 9x17 differs from the infrared image'),
    ('corrupt', 'a.png: not a readable image'),
    ('missing_folder', 'nowhere: folder not found'),
    ('out_is_input', 'is the --vi input folder'),
])
def test_cli_input_errors_are_one_line_and_exit_2(tmp_path, capsys, case, expected):
    ir, vi = make_pair_folders(tmp_path, {'a': (20, 30), 'b': (17, 9)})
    out = tmp_path / 'masks'
    if case == 'missing_partner':
        shutil.copy(ir / 'a.png', ir / 'c.png')
    elif case == 'size_mismatch':
        cv2.imwrite(str(ir / 'b.png'), np.zeros((9, 17), np.uint8))
    elif case == 'corrupt':
        (ir / 'a.png').write_bytes(b'not a png')
    elif case == 'missing_folder':
        ir = tmp_path / 'nowhere'
    elif case == 'out_is_input':
        out = vi
    status = load_script().main(['--ir', str(ir), '--vi', str(vi), '--out', str(out)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith('error: ') and expected in err and err.count('\n') == 1


def test_cli_exit_status_from_the_shell(tmp_path):
    ir, vi = make_pair_folders(tmp_path, {'a': (8, 8)})
    (vi / 'a.png').unlink()
    done = subprocess.run([sys.executable, str(SCRIPT), '--ir', str(ir), '--vi', str(vi), '--out', str(tmp_path / 'm')],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith('error: ') and done.stderr.count('\n') == 1


def test_read_gray_names_the_file_for_unsupported_data(tmp_path):
    path = tmp_path / 'depth.tiff'
    cv2.imwrite(str(path), np.zeros((4, 4), np.float32))
    with pytest.raises(InputError, match=r'depth\.tiff: unsupported pixel type float32'):
        read_gray_u8(path)


# ---------------------------------------------------------------- VSM.m in Octave = Python


def write_edge_cases(ir: Path, vi: Path) -> None:
    """Pairs that exercise the reading rules: 16-bit, alpha, palette, EXIF rotation, constants, 1-bit."""
    from PIL import Image  # Pillow comes with scikit-image; cv2 cannot write palettes or EXIF

    rng = np.random.default_rng(5)
    shape = (37, 53)

    def rand(*extra, high=256, dtype=np.uint8):
        return rng.integers(0, high, shape + extra).astype(dtype)

    for folder in (ir, vi):
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / 'edge_16bit.png'), rand(3, high=65536, dtype=np.uint16))
        cv2.imwrite(str(folder / 'edge_rgba.png'), rand(4))
        palette = Image.fromarray(rand(high=200), 'P')
        palette.putpalette(rng.integers(0, 256, 768).astype(np.uint8).tolist())
        palette.save(folder / 'edge_palette.png')
        for orientation in (3, 6, 7):
            exif = Image.Exif()
            exif[0x0112] = orientation
            Image.fromarray(rand(3)).save(folder / f'edge_exif{orientation}.jpg', exif=exif, quality=90)
        Image.fromarray(rand(high=2).astype(bool)).save(folder / 'edge_1bit.png')
    cv2.imwrite(str(ir / 'edge_const.png'), np.full(shape, 7, np.uint8))
    cv2.imwrite(str(vi / 'edge_const.png'), rand(3))


def link_sample(sets: tuple[str, ...], per_set: int, ir: Path, vi: Path) -> None:
    """Symlink the first pairs of each shared set into one folder pair, stems prefixed by the set."""
    for name in sets:
        for path in sorted((SHARED / 'data' / name / 'ir').iterdir())[:per_set]:
            partner = next((SHARED / 'data' / name / 'vi').glob(f'{path.stem}.*'))
            (ir / f'{name}_{path.name}').symlink_to(path)
            (vi / f'{name}_{partner.name}').symlink_to(partner)


def assert_same_masks(octave_out: Path, python_out: Path) -> None:
    names = sorted(p.name for p in python_out.iterdir())
    assert names and names == sorted(p.name for p in octave_out.iterdir())
    differing = {}
    for name in names:
        a = cv2.imread(str(octave_out / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(python_out / name), cv2.IMREAD_UNCHANGED)
        assert a.shape == b.shape and a.dtype == b.dtype == np.uint8, name
        if (a != b).any():
            differing[name] = int((a != b).sum())
    assert differing == {}, f'pixels differ between Octave and Python: {differing}'


def identity_jobs(folder: Path) -> list[tuple[Path, Path, str, str]]:
    """(ir, vi, name, mode) of the Octave-Python comparison: binary masks (the training masks) of
    every pair of the three sets; weight masks of a sample of each set plus the edge cases."""
    jobs = [(SHARED / 'data' / s / 'ir', SHARED / 'data' / s / 'vi', s, 'binary') for s in IDENTITY_SETS]
    return jobs + [(folder / 'sample' / 'ir', folder / 'sample' / 'vi', 'sample', 'weight')]


@runs_beside_the_suite('test_octave_vsm_and_python_give_identical_masks')
def start_octave_masks(folder: Path) -> subprocess.Popen | None:
    """VSM.m in one Octave process (about 85 s of one core) writing ``folder/octave/<name>``."""
    if shutil.which('octave-cli') is None or not all((SHARED / 'data' / s).is_dir() for s in IDENTITY_SETS):
        return None
    write_edge_cases(folder / 'sample' / 'ir', folder / 'sample' / 'vi')
    link_sample(IDENTITY_SETS, 3, folder / 'sample' / 'ir', folder / 'sample' / 'vi')
    calls = ' '.join(f"VSM('{ir}', '{vi}', '{folder / 'octave' / name}', '{mode}');"
                     for ir, vi, name, mode in identity_jobs(folder))
    return start_logged(['octave-cli', '--no-gui', '--norc', '--path', str(REPO), '--eval', calls], folder)


@pytest.mark.skipif(shutil.which('octave-cli') is None,
                    reason='octave-cli not found (install GNU Octave to compare VSM.m with Python)')
@pytest.mark.skipif(not all((SHARED / 'data' / s).is_dir() for s in IDENTITY_SETS),
                    reason=f'shared data not found at {SHARED / "data"} ({", ".join(IDENTITY_SETS)})')
def test_octave_vsm_and_python_give_identical_masks(background):
    process, folder = background
    assert process.returncode == 0, job_log(folder)
    script = load_script()
    for ir, vi, name, mode in identity_jobs(folder):
        script.generate(ir, vi, folder / 'python' / name, mode)
        assert_same_masks(folder / 'octave' / name, folder / 'python' / name)
    assert len(list((folder / 'python' / 'sample').iterdir())) == 9 + 8
