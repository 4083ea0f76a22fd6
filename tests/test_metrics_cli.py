"""The fusion-metrics command line: pairing, labels, CSVs, the comparison table and its errors."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from basicsr.metrics import calculate_metrics, read_gray_uint8

# Imported by name so that --workers can pickle its functions for the worker processes.
SCRIPT = Path(__file__).resolve().parents[1] / 'scripts' / 'metrics' / 'calculate_fusion_metrics.py'
sys.path.insert(0, str(SCRIPT.parent))
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
    assert 'no fused image for 1 stem(s)' in line and '02; add the partners or remove those files' in line
    assert line.endswith('--common-only')


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
    line = _error_line(capsys)
    assert line.startswith('error: --metrics: ') and 'unknown metric(s) Foo' in line
    assert _run(folders, '--fused', str(folders['B']), '--workers', '0') == 2
    assert '--workers 0' in _error_line(capsys)


def _table(capsys=None, text=None):
    """The printed table's rows after its header, as label -> cells."""
    out = (capsys.readouterr().out if text is None else text).splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith('method '))
    return {line.split()[0]: line.split()[1:] for line in out[start + 1:]}


# ------------------------------------------------------------------------------ labels

def test_a_symlinked_folder_is_labelled_with_the_links_name(folders, tmp_path, capsys):
    link = tmp_path / 'linked_A'
    link.symlink_to(folders['A'], target_is_directory=True)
    out = tmp_path / 'out'
    assert _run(folders, '--fused', f'{link}/', '--metrics', 'EN', '--csv', str(out)) == 0
    assert list(_table(capsys)) == ['linked_A']
    assert sorted(p.name for p in out.iterdir()) == ['linked_A.csv']


def test_folder_label_rule(tmp_path, monkeypatch):
    (tmp_path / 'A').mkdir()
    monkeypatch.chdir(tmp_path / 'A')
    assert [cli.folder_label(Path(arg)) for arg in ('x/B', 'x/B/', 'x/B/.', '.', '../A', '../A/..')] == \
        ['B', 'B', 'B', 'A', 'A', tmp_path.name]


def test_names_label_the_rows_and_csvs(folders, tmp_path, capsys):
    plain, named = tmp_path / 'plain', tmp_path / 'named'
    assert _run(folders, '--fused', str(folders['A']), str(folders['B']), '--metrics', 'EN,SSIM',
                '--csv', str(plain)) == 0
    expected = _table(capsys)
    assert _run(folders, '--fused', str(folders['A']), str(folders['B']), '--names', 'Mean (ours)', 'KeepIR',
                '--metrics', 'EN,SSIM', '--csv', str(named)) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-2].startswith('Mean (ours)  ') and table[-1].startswith('KeepIR  ')
    assert table[-2].split('  ', 1)[1].split() == expected['A'] and table[-1].split()[1:] == expected['B']
    assert sorted(p.name for p in named.iterdir()) == ['KeepIR.csv', 'Mean (ours).csv']
    assert (named / 'Mean (ours).csv').read_text() == (plain / 'A.csv').read_text()
    assert (named / 'KeepIR.csv').read_text() == (plain / 'B.csv').read_text()


@pytest.mark.parametrize('names, message', [(['X'], '--names: 1 label(s) for 2 --fused folder(s)'),
                                            (['X', 'Y', 'Z'], '--names: 3 label(s) for 2 --fused folder(s)'),
                                            (['X', 'X'], "--names: 'X' given twice"),
                                            (['X', 'a/b'], "--names: 'a/b' cannot name a CSV file")])
def test_bad_names_are_one_error_line(folders, tmp_path, capsys, names, message):
    assert _run(folders, '--fused', str(folders['A']), str(folders['B']), '--names', *names,
                '--csv', str(tmp_path / 'out')) == 2
    assert _error_line(capsys).startswith(f'error: {message}')
    assert not (tmp_path / 'out').exists()


def test_two_folders_of_one_name_need_names(folders, tmp_path, capsys):
    other = tmp_path / 'other' / 'A'
    shutil.copytree(folders['A'], other)
    assert _run(folders, '--fused', str(folders['A']), str(other)) == 2
    line = _error_line(capsys)
    assert "2 folders are named 'A'" in line and str(other) in line and '--names' in line
    assert _run(folders, '--fused', str(folders['A']), str(other), '--names', 'A1', 'A2', '--metrics', 'EN') == 0
    table = _table(capsys)
    assert list(table) == ['A1', 'A2'] and table['A1'] == table['A2']


# ------------------------------------------------------------------------------ --common-only

def test_common_only_scores_the_stems_every_method_has(folders, tmp_path, capsys):
    (folders['B'] / '02.png').unlink()
    assert _run(folders, '--fused', str(folders['A']), str(folders['B'])) == 2
    line = _error_line(capsys)
    assert str(folders['B']) in line and 'no fused image for 1 stem(s)' in line and '--common-only' in line

    out = tmp_path / 'out'
    assert _run(folders, '--fused', str(folders['A']), str(folders['B']), '--common-only', '--metrics', 'EN,SSIM,MI',
                '--csv', str(out)) == 0
    table = _table(capsys)
    assert [line.split(',')[0] for line in (out / 'A.csv').read_text().splitlines()[2:]] == ['01', '03', 'mean']

    # The same numbers as scoring folders that hold only those images.
    subset = tmp_path / 'subset'
    for role in ('ir', 'vi', 'A', 'B'):
        (subset / role).mkdir(parents=True)
        for path in folders[role].iterdir():
            if path.stem != '02':
                shutil.copy(path, subset / role / path.name)
    assert _run({role: subset / role for role in ('ir', 'vi')}, '--fused', str(subset / 'A'), str(subset / 'B'),
                '--metrics', 'EN,SSIM,MI',
                '--csv', str(tmp_path / 'subset_out')) == 0
    assert _table(capsys) == table
    for label in ('A', 'B'):
        assert (out / f'{label}.csv').read_text() == (tmp_path / 'subset_out' / f'{label}.csv').read_text()


def test_common_only_warns_once_naming_what_each_folder_lacks(folders, tmp_path, capsys):
    (folders['B'] / '02.png').unlink()
    (folders['vi'] / '03.jpg').unlink()
    for stem in ('10', '11', '12', '13', '14', '15', '16'):
        shutil.copy(folders['A'] / '01.png', folders['A'] / f'{stem}.png')
    assert _run(folders, '--fused', str(folders['A']), str(folders['B']), '--names', 'X', 'Y', '--common-only',
                '--metrics', 'EN') == 0
    captured = capsys.readouterr()
    assert list(_table(text=captured.out)) == ['X', 'Y']
    warnings = [line for line in captured.err.splitlines() if 'warning' in line]
    assert len(warnings) == 1 and warnings[0].startswith('warning: --common-only: scoring the 1 stem(s)')
    assert 'leaving out 9 (02, 03, 10, 11, 12 and 4 more)' in warnings[0]
    assert 'X lacks 1 (02)' not in warnings[0] and 'Y lacks 8 (02, 10, 11, 12, 13 and 3 more)' in warnings[0]
    assert '--vi folder lacks 8 (03, 10, 11, 12, 13 and 3 more)' in warnings[0]


def test_common_only_with_no_common_stem(folders, capsys):
    for stem in ('01', '02'):
        (folders['B'] / f'{stem}.png').unlink()
    (folders['A'] / '03.png').unlink()
    assert _run(folders, '--fused', str(folders['A']), str(folders['B']), '--common-only') == 2
    line = _error_line(capsys)
    assert line.startswith('error: --common-only: no stem is in every folder')


# ------------------------------------------------------------------------------ --help

def test_help_describes_the_script_without_loading_torch():
    probe = ('import runpy, sys\n'
             f'sys.argv = [{str(SCRIPT)!r}, "--help"]\n'
             'try:\n'
             f'    runpy.run_path({str(SCRIPT)!r}, run_name="__main__")\n'
             'except SystemExit as exit:\n'
             '    assert exit.code in (0, None)\n'
             'print("LOADED:", sorted(m for m in ("torch", "cv2", "tqdm") if m in sys.modules))\n')
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run([sys.executable, '-c', probe], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert 'Score fused images of one or more methods' in result.stdout
    assert '--names' in result.stdout and '--common-only' in result.stdout
    assert result.stdout.splitlines()[-1] == 'LOADED: []'
    plain = subprocess.run([sys.executable, str(SCRIPT), '--help'], capture_output=True, text=True, env=env)
    assert plain.returncode == 0 and '--common-only' in plain.stdout and plain.stderr == ''
