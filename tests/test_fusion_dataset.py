import cv2
import numpy as np
import pytest

from basicsr.data import build_dataset
from basicsr.data.pairing import pair_by_stem
from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.img_util import read_image
from conftest import smooth_image, write_image_file


def dataset(ir, vi, **extra):
    return build_dataset({'name': 'demo', 'phase': 'test', 'dataroot_ir': str(ir), 'dataroot_vi': str(vi), **extra})


def test_pairs_by_stem_across_extensions_and_ignores_other_files(tmp_path, rng):
    write_image_file(tmp_path / 'ir' / '01.png', smooth_image(rng, 16, 20))
    write_image_file(tmp_path / 'vi' / '01.jpg', smooth_image(rng, 16, 20, 3))
    (tmp_path / 'ir' / 'Thumbs.db').write_bytes(b'\x00' * 10)
    (tmp_path / 'vi' / 'notes.txt').write_text('x')
    ds = dataset(tmp_path / 'ir', tmp_path / 'vi')
    item = ds[0]
    assert len(ds) == 1 and item['stem'] == '01'
    assert item['ir'].shape == (1, 16, 20) and item['vi'].shape == (3, 16, 20)


def test_gray_visible_and_gray_as_rgb_infrared(tmp_path, rng):
    gray = smooth_image(rng, 12, 10)
    write_image_file(tmp_path / 'ir' / 'a.png', np.dstack([gray] * 3))
    write_image_file(tmp_path / 'vi' / 'a.png', gray)
    item = dataset(tmp_path / 'ir', tmp_path / 'vi')[0]
    expected = gray.astype(np.float32) / 255
    np.testing.assert_allclose(item['ir'][0].numpy(), expected)
    for channel in range(3):
        np.testing.assert_allclose(item['vi'][channel].numpy(), expected)


def test_16_bit_is_scaled_by_its_depth_and_alpha_is_dropped(tmp_path, rng):
    ir16 = smooth_image(rng, 10, 12, dtype=np.uint16)
    bgra = np.dstack([smooth_image(rng, 10, 12, 3), np.full((10, 12), 7, np.uint8)])
    write_image_file(tmp_path / 'ir' / 'a.png', ir16)
    write_image_file(tmp_path / 'vi' / 'a.png', bgra)
    item = dataset(tmp_path / 'ir', tmp_path / 'vi')[0]
    np.testing.assert_allclose(item['ir'][0].numpy(), ir16 / 65535.0, atol=1e-7)
    np.testing.assert_allclose(item['vi'].numpy(), bgra[:, :, 2::-1].transpose(2, 0, 1) / 255.0, atol=1e-7)


def test_released_key_aliases(tmp_path, pair_folders):
    ir, vi = pair_folders
    ds = build_dataset({'name': 'd', 'phase': 'test', 'dataroot_gt': str(ir), 'dataroot_lq': str(vi)})
    assert [s for s, _ in ds.samples] == ['a', 'b', 'c']
    with pytest.raises(OptionError, match='give dataroot_ir or its alias dataroot_gt, not both'):
        build_dataset({'name': 'd', 'dataroot_ir': str(ir), 'dataroot_gt': str(ir), 'dataroot_vi': str(vi)})


def test_optional_masks(tmp_path, pair_folders, rng):
    for stem in 'abc':
        write_image_file(tmp_path / 'mask' / f'{stem}.png', smooth_image(rng, 24, 32))
    item = dataset(*pair_folders, dataroot_mask=str(tmp_path / 'mask'))[2]
    assert item['mask'].shape == (1, 24, 32)


def test_size_mismatch_is_an_error_unless_resize_is_asked(tmp_path, rng):
    write_image_file(tmp_path / 'ir' / 'a.png', smooth_image(rng, 20, 30))
    write_image_file(tmp_path / 'vi' / 'a.png', smooth_image(rng, 40, 60, 3))
    with pytest.raises(InputError) as err:
        dataset(tmp_path / 'ir', tmp_path / 'vi')[0]
    assert 'vi/a.png: 60x40 but its infrared partner a.png is 30x20' in str(err.value).replace('\\', '/')
    assert 'resize_vi_to_ir' in str(err.value)
    assert dataset(tmp_path / 'ir', tmp_path / 'vi', resize_vi_to_ir=True)[0]['vi'].shape == (3, 20, 30)


def test_stems_without_partner_are_listed(tmp_path, pair_folders):
    (pair_folders[1] / 'b.png').unlink()
    with pytest.raises(InputError, match=r'vi: no vi image for 1 stem\(s\) found in the other folder\(s\): b'):
        dataset(*pair_folders)


def test_empty_and_missing_folders(tmp_path, pair_folders):
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'Thumbs.db').write_bytes(b'')
    with pytest.raises(InputError, match='empty: no image files'):
        dataset(pair_folders[0], tmp_path / 'empty')
    with pytest.raises(InputError, match='nowhere: folder not found'):
        dataset(pair_folders[0], tmp_path / 'nowhere')


def test_corrupt_and_non_image_files(tmp_path, pair_folders):
    (pair_folders[1] / 'a.png').write_bytes(b'\x89PNG broken')
    (pair_folders[1] / 'b.png').write_bytes(b'')
    ds = dataset(*pair_folders)
    for index, stem in ((0, 'a'), (1, 'b')):
        with pytest.raises(InputError, match=f'{stem}.png: not a readable image'):
            ds[index]


def test_two_files_with_one_stem_are_an_error(tmp_path, pair_folders, rng):
    write_image_file(pair_folders[0] / 'a.bmp', smooth_image(rng, 24, 32))
    with pytest.raises(InputError, match=r'two images share the stem "a" \(a.bmp, a.png\)'):
        pair_by_stem({'ir': pair_folders[0], 'vi': pair_folders[1]})


def test_image_below_minimum_size_names_the_file(tmp_path, rng):
    write_image_file(tmp_path / 'ir' / 'tiny.png', smooth_image(rng, 7, 7))
    write_image_file(tmp_path / 'vi' / 'tiny.png', smooth_image(rng, 7, 7, 3))
    with pytest.raises(InputError, match="tiny.png: 7x7 is below the network's minimum size 8x8"):
        dataset(tmp_path / 'ir', tmp_path / 'vi')[0]


def test_read_image_rejects_unreadable_paths(tmp_path):
    with pytest.raises(InputError, match='cannot read the file'):
        read_image(tmp_path / 'absent.png')


@pytest.mark.parametrize('vi_size, interpolation', [((40, 60), cv2.INTER_AREA), ((10, 15), cv2.INTER_LINEAR)])
def test_resize_vi_to_ir_shrinks_by_area_and_enlarges_bilinearly(tmp_path, rng, vi_size, interpolation):
    vi = smooth_image(rng, *vi_size, 3)
    write_image_file(tmp_path / 'ir' / 'a.png', smooth_image(rng, 20, 30))
    write_image_file(tmp_path / 'vi' / 'a.png', vi)
    got = dataset(tmp_path / 'ir', tmp_path / 'vi', resize_vi_to_ir=True)[0]['vi'].numpy().transpose(1, 2, 0)
    rgb = cv2.cvtColor(vi, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    assert np.array_equal(got, cv2.resize(rgb, (30, 20), interpolation=interpolation))
