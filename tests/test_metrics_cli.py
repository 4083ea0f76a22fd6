"""The fusion-metrics command line: pairing, CSVs, the comparison table and its errors."""
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from basicsr.metrics import calculate_metrics, read_gray_uint8

# Imported by name so that --workers can pickle its functions for the worker processes.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'scripts' / 'metrics'))
import calculate_fusion_metrics as cli  # noqa: E402


def _image(seed, shape=(64, 64)):
    noise = cv2.GaussianBlur(np.random.default_rng(seed).normal(size=shape), (0, 0), 2.0)
    return cv2.normalize(noise, None, 0, 255, cv2.NORM_MINMAX).round().astype(np.uint8)


@pytest.fixture
def folders(tmp_path):
    paths = {name: tmp_path / name for name in ('ir', 'vi', 'A', 'B')}
    for path in paths.values():
        path.mkdir()
    for i, stem in enumerate(['01', '02', '03']):
        ir, vi = _image(i), _image(10 + i)
        cv2.imwrite(str(paths['ir'] / f'{stem}.png'), ir)
        cv2.imwrite(str(paths['vi'] / f'{stem}.jpg'), vi, [cv2.IMWRITE_JPEG_QUALITY, 100])
        cv2.imwrite(str(paths['A'] / f'{stem}.png'), ((ir.astype(np.uint16) + vi) // 2).astype(np.uint8))
        cv2.imwrite(str(paths['B'] / f'{stem}.png'), cv2.cvtColor(ir, cv2.COLOR_GRAY2BGR))
    return paths


def _run(folders, *extra):
    return cli.main(['--ir', str(folders['ir']), '--vi', str(folders['vi']), *extra])


def test_scores_folders_and_writes_csvs(folders, tmp_path, capsys):
    out = tmp_path / 'out'
    assert _run(folders, '--fused', str(folders['A']), str(folders['B']), '--metrics', 'EN,SSIM,Qcb',
                '--csv', str(out), '--workers', '2') == 0
    lines = (out / 'A.csv').read_text().splitlines()
    assert lines[:2] == ['# convention: tang', 'image,EN,SSIM,Qcb']
    assert [line.split(',')[0] for line in lines[2:]] == ['01', '02', '03', 'mean']
    assert lines[2].endswith(',nan')  # Qcb is a VIFB metric
    table = capsys.readouterr().out.splitlines()
    assert table[-3].split() == ['method', 'EN', 'SSIM', 'Qcb']
    assert table[-2].startswith('A ') and table[-1].startswith('B ') and '±' in table[-1]
    expected = np.mean([calculate_metrics(*(read_gray_uint8(folders[role] / name) for role, name in
                                            (('ir', f'{stem}.png'), ('vi', f'{stem}.jpg'), ('B', f'{stem}.png'))),
                                          ['SSIM'])['SSIM'] for stem in ('01', '02', '03')])
    assert table[-1].split()[4] == f'{expected:.4f}'
    assert table[-1].split()[7] == 'n/a'



def test_workers_agree_and_default_metrics(folders, tmp_path):
    one, two = tmp_path / 'one', tmp_path / 'two'
    assert _run(folders, '--fused', str(folders['A']), '--convention', 'vifb', '--csv', str(one)) == 0
    assert _run(folders, '--fused', str(folders['A']), '--convention', 'vifb', '--csv', str(two),
                '--workers', '2') == 0
    text = (one / 'A.csv').read_text()
    assert text == (two / 'A.csv').read_text()
    assert text.splitlines()[1] == 'image,CE,EN,MI,PSNR,Qabf,Qcb,Qcv,RMSE,SSIM,SD,SF,AG,EI'


def _error_line(capsys):
    # stderr also carries the progress bar; the error is one line, the last.
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith('error: ')]
    assert len(errors) == 1 and err[-1] == errors[0]
    return errors[0]


def test_missing_fused_partner(folders, capsys):
    (folders['A'] / '02.png').unlink()
    assert _run(folders, '--fused', str(folders['A'])) == 2
    line = _error_line(capsys)
    assert 'no fused image for 1 stem(s)' in line and line.endswith('02; add the partners or remove those files')


def test_missing_source_partner(folders, capsys):
    (folders['vi'] / '03.jpg').unlink()
    assert _run(folders, '--fused', str(folders['A'])) == 2
    line = _error_line(capsys)
    assert str(folders['vi']) in line and 'no vi image for 1 stem(s)' in line and '03' in line


def test_empty_folder(folders, tmp_path, capsys):
    empty = tmp_path / 'empty'
    empty.mkdir()
    assert _run(folders, '--fused', str(empty)) == 2
    assert f'{empty}: no image files' in _error_line(capsys)


def test_size_mismatch_names_the_file(folders, capsys):
    cv2.imwrite(str(folders['A'] / '02.png'), _image(5, (60, 64)))
    assert _run(folders, '--fused', str(folders['A'])) == 2
    line = _error_line(capsys)
    assert str(folders['A'] / '02.png') in line and 'sizes differ' in line


def test_unreadable_image_and_bad_options(folders, capsys):
    (folders['A'] / '01.png').write_bytes(b'not an image')
    assert _run(folders, '--fused', str(folders['A'])) == 2
    assert 'not a readable image' in _error_line(capsys)
    assert _run(folders, '--fused', str(folders['B']), '--metrics', 'EN,Foo') == 2
    assert 'unknown metric(s) Foo' in _error_line(capsys)
    assert _run(folders, '--fused', str(folders['B']), '--workers', '0') == 2
    assert '--workers 0' in _error_line(capsys)
