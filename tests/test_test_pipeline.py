"""test.py, scripts/fuse.py and the download scripts, run as a user runs them."""
import subprocess
import sys

import cv2
import numpy as np
import pytest
import yaml

from conftest import REPO, SHARED, require_shared, smooth_image, write_image_file

MSRS_STEMS = ('00004N', '00008N')  # two of the five MSRS pairs with released references
# One TNO21 pair per image size: 270x360, 496x632, 510x505, 480x640, 576x768, 328x595, 280x280, 247x359,
# 450x620, 475x575 (H x W).
TNO21_ONE_PER_SIZE = ('01', '02', '03', '04', '06', '07', '08', '11', '12', '19')


def run_script(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True)


def write_options(path, sets, weights):
    opt = {
        'name': 'demo', 'num_gpu': 0,
        'datasets': {f'test_{i}': {'name': name, 'dataroot_ir': str(ir), 'dataroot_vi': str(vi)}
                     for i, (name, ir, vi) in enumerate(sets, 1)},
        'network_g': {'type': 'FISCNet', 'vis_channels': 1, 'inf_channels': 1, 'n_feat': 16},
        'path': {'pretrain_network_g': str(weights), 'param_key_g': 'params_ema', 'strict_load_g': True},
    }
    path.write_text(yaml.safe_dump(opt))
    return path


def link_subset(src_set, stems, dst):
    """A folder pair holding links to some pairs of a shared set (the ones with references)."""
    for role in ('ir', 'vi'):
        (dst / role).mkdir(parents=True)
        for stem in stems:
            (dst / role / f'{stem}.png').symlink_to(src_set / role / f'{stem}.png')
    return dst / 'ir', dst / 'vi'


def fraction_within_one_level(fused_path, reference_path):
    fused, reference = cv2.imread(str(fused_path)), cv2.imread(str(reference_path))
    assert fused.shape == reference.shape, fused_path
    diff = np.abs(fused.astype(int) - reference.astype(int))
    return diff.max(), (diff <= 1).mean()


def test_test_py_reproduces_the_released_fused_images(tmp_path):
    """Acceptance: one TNO21 pair of each of its 10 image sizes and two MSRS pairs against the
    released PNGs (all 21 + 5 agree too; fusing them all would double this test's time)."""
    tno_ir, tno_vi = link_subset(require_shared('data', 'TNO21'), TNO21_ONE_PER_SIZE, tmp_path / 'tno')
    msrs_ir, msrs_vi = link_subset(require_shared('data', 'MSRS'), MSRS_STEMS, tmp_path / 'msrs')
    opt = write_options(tmp_path / 'opt.yml', [('TNO21', tno_ir, tno_vi), ('MSRS', msrs_ir, msrs_vi)],
                        require_shared('weights', 'FISCNet_official.pth'))
    result = run_script(REPO / 'test.py', '-opt', opt, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'images/s' in result.stderr
    checked = 0
    for set_name, stems in (('TNO21', TNO21_ONE_PER_SIZE), ('MSRS', MSRS_STEMS)):
        for stem in stems:
            fused = tmp_path / 'results' / 'demo' / 'visualization' / set_name / f'{stem}.png'
            max_diff, within = fraction_within_one_level(fused, SHARED / 'reference' / set_name / f'{stem}.png')
            assert max_diff <= 1 and within >= 0.999, (set_name, stem, max_diff, within)
            checked += 1
    assert checked == 12
    run_dir = tmp_path / 'results' / 'demo'
    log = next(run_dir.glob('test_demo_*.log')).read_text()
    assert 'PyTorch' in log and 'pretrain_network_g' in log
    assert len(list(run_dir.glob('opt_*.yml'))) == 1


def test_second_run_archives_the_first(tmp_path, pair_folders, random_checkpoint):
    opt = write_options(tmp_path / 'opt.yml', [('demo_set', *pair_folders)], random_checkpoint)
    for _ in range(2):
        assert run_script(REPO / 'test.py', '-opt', opt, cwd=tmp_path).returncode == 0
    archived = list((tmp_path / 'results').glob('demo_archived_*'))
    assert len(archived) == 1 and (archived[0] / 'visualization' / 'demo_set' / 'a.png').is_file()
    fused = cv2.imread(str(tmp_path / 'results' / 'demo' / 'visualization' / 'demo_set' / 'b.png'))
    assert fused.shape == (24, 32, 3)


@pytest.mark.parametrize('override, message', [
    ('datasets.test_1.dataroot_vi=nowhere', 'nowhere: folder not found; check the path'),
    ('path.pretrain_network_g=missing.pth', 'missing.pth: checkpoint not found'),
    ('network_g.n_feat=8', 'does not fit FISCNet'),
    ('datasets.test_1.datarot_ir=x', "unknown option 'datasets.test_1.datarot_ir' (did you mean 'dataroot_ir'?)"),
])
def test_bad_input_gives_one_line_error(tmp_path, pair_folders, random_checkpoint, override, message):
    opt = write_options(tmp_path / 'opt.yml', [('demo_set', *pair_folders)], random_checkpoint)
    result = run_script(REPO / 'test.py', '-opt', opt, '--force_yml', override, cwd=tmp_path)
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith('error: ')]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr
    assert 'Traceback' not in result.stderr


def test_fuse_py_on_files_and_folders(tmp_path, pair_folders, random_checkpoint):
    ir, vi = pair_folders
    result = run_script(REPO / 'scripts' / 'fuse.py', '--ir', ir, '--vi', vi, '--out', tmp_path / 'out',
                        '--weights', random_checkpoint, '--device', 'cpu', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['a.png', 'b.png', 'c.png']
    result = run_script(REPO / 'scripts' / 'fuse.py', '--ir', ir / 'b.png', '--vi', vi / 'c.png',
                        '--out', tmp_path / 'one', '--weights', random_checkpoint, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [p.name for p in (tmp_path / 'one').iterdir()] == ['b.png']


def test_fuse_py_errors(tmp_path, pair_folders, random_checkpoint, rng):
    ir, vi = pair_folders
    write_image_file(tmp_path / 'big.png', smooth_image(rng, 30, 30, 3))
    cases = [
        (['--ir', ir / 'a.png', '--vi', tmp_path / 'big.png'], 'big.png: 30x30 but its infrared partner a.png is 32x24'),
        (['--ir', ir, '--vi', vi / 'a.png'], 'give two image files or two folders'),
        (['--ir', tmp_path / 'absent', '--vi', vi], 'absent: no such file or folder'),
    ]
    for args, message in cases:
        result = run_script(REPO / 'scripts' / 'fuse.py', *args, '--out', tmp_path / 'out',
                            '--weights', random_checkpoint, cwd=tmp_path)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_download_scripts_from_a_local_copy(tmp_path):
    require_shared('data', 'TNO21')
    require_shared('weights', 'FISCNet_official.pth')
    result = run_script(REPO / 'scripts' / 'download_datasets.py', '--sets', 'TNO21', '--from', SHARED, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert 'TNO21: 42 files in datasets (42 fetched, 0 already present)' in result.stdout
    assert len(list((tmp_path / 'datasets' / 'TNO21' / 'vi').glob('*.png'))) == 21
    result = run_script(REPO / 'scripts' / 'download_pretrained_models.py', '--from', SHARED, cwd=tmp_path)
    assert result.returncode == 0 and (tmp_path / 'pretrained_models' / 'FISCNet_official.pth').is_file()


def test_download_checks_sums_and_reports_a_bad_local_copy(tmp_path):
    fake = tmp_path / 'copy' / 'weights' / 'FISCNet_official.pth'
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b'tampered')
    result = run_script(REPO / 'scripts' / 'download_pretrained_models.py', '--from', tmp_path / 'copy', cwd=tmp_path)
    assert result.returncode == 2 and 'differs from the expected' in result.stderr
    assert not (tmp_path / 'pretrained_models' / 'FISCNet_official.pth').exists()
    result = run_script(REPO / 'scripts' / 'download_datasets.py', '--sets', 'TNO', cwd=tmp_path)
    assert result.returncode == 2 and 'unknown set(s) TNO; available:' in result.stderr


def test_remote_fetch_reencodes_bmp_sources_and_checks_pixels(tmp_path, monkeypatch):
    """Offline check of the download path: a BMP source is stored as the manifest's PNG."""
    sys.path.insert(0, str(REPO / 'scripts'))
    import download_datasets
    row = next(r for r in download_datasets.load_manifest() if r['pixels_sha256'])
    png = require_shared('data', row['file'])

    def fake_download(url, dst):
        assert url.endswith(row['src']) and row['commit'] in url
        dst.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dst), cv2.imread(str(png), cv2.IMREAD_UNCHANGED))  # a BMP, as the source

    monkeypatch.setattr(download_datasets, 'download', fake_download)
    dst = tmp_path / row['file']
    download_datasets.fetch_remote(row, dst)
    assert download_datasets.is_present(dst, row)


def test_metrics_csv_and_table(tmp_path, rng, random_checkpoint):
    from basicsr.metrics import DEFAULT_METRICS, calculate_metrics, read_gray_uint8
    for stem in ('x', 'y'):
        write_image_file(tmp_path / 'ir' / f'{stem}.png', smooth_image(rng, 48, 56))
        write_image_file(tmp_path / 'vi' / f'{stem}.png', smooth_image(rng, 48, 56, 3))
    opt = write_options(tmp_path / 'opt.yml', [('synthetic', tmp_path / 'ir', tmp_path / 'vi')], random_checkpoint)
    result = run_script(REPO / 'test.py', '-opt', opt, '--force_yml', 'val.metrics=default', 'val.convention=cddfuse',
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    names = DEFAULT_METRICS['cddfuse']
    lines = (tmp_path / 'results' / 'demo' / 'metrics' / 'synthetic.csv').read_text().splitlines()
    assert lines[0] == '# convention: cddfuse'
    assert lines[1] == ','.join(['image', *names])
    assert [line.split(',')[0] for line in lines[2:]] == ['x', 'y', 'mean']
    fused = read_gray_uint8(tmp_path / 'results' / 'demo' / 'visualization' / 'synthetic' / 'y.png')
    expected = calculate_metrics(read_gray_uint8(tmp_path / 'ir' / 'y.png'), read_gray_uint8(tmp_path / 'vi' / 'y.png'),
                                 fused, names, 'cddfuse')
    assert [float(v) for v in lines[3].split(',')[1:]] == pytest.approx(list(expected.values()), rel=1e-9)
    assert 'mean metrics (cddfuse convention)' in result.stderr and 'Qabf' in result.stderr


def test_unknown_metric_is_an_option_error(tmp_path, pair_folders, random_checkpoint):
    opt = write_options(tmp_path / 'opt.yml', [('demo_set', *pair_folders)], random_checkpoint)
    result = run_script(REPO / 'test.py', '-opt', opt, '--force_yml', 'val.metrics=[EN, Qab]', cwd=tmp_path)
    assert result.returncode == 2 and 'unknown metric(s) Qab' in result.stderr


def test_two_processes_share_the_work(tmp_path, rng, random_checkpoint):
    stems = ['p', 'q', 'r']
    for stem in stems:
        write_image_file(tmp_path / 'ir' / f'{stem}.png', smooth_image(rng, 48, 50))
        write_image_file(tmp_path / 'vi' / f'{stem}.png', smooth_image(rng, 48, 50, 3))
    opt = write_options(tmp_path / 'opt.yml', [('synthetic', tmp_path / 'ir', tmp_path / 'vi')], random_checkpoint)
    result = run_script('-m', 'torch.distributed.run', '--nproc_per_node', '2', REPO / 'test.py', '-opt', opt,
                        '--launcher', 'pytorch', '--force_yml', 'val.metrics=[EN]', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / 'results' / 'demo'
    assert sorted(p.stem for p in (run_dir / 'visualization' / 'synthetic').iterdir()) == stems
    rows = (run_dir / 'metrics' / 'synthetic.csv').read_text().splitlines()
    assert [row.split(',')[0] for row in rows[2:]] == [*stems, 'mean']
    assert len(list(tmp_path.joinpath('results').iterdir())) == 1


def test_val_suffix_names_the_written_images(tmp_path, pair_folders, random_checkpoint):
    ir, vi = pair_folders
    opt = write_options(tmp_path / 'o.yml', [('set', ir, vi)], random_checkpoint)
    result = run_script(REPO / 'test.py', '-opt', opt, '--force_yml', 'val.suffix=fused', 'path.param_key_g=params',
                        cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / 'results' / 'demo' / 'visualization' / 'set').iterdir())
    assert written == ['a_fused.png', 'b_fused.png', 'c_fused.png']
