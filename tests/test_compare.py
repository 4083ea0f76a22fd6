"""The comparison command, the figure tool, the weights manifest, and adding a method to the zoo."""
import csv
import importlib.util
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import yaml

from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.registry import ARCH_REGISTRY
from conftest import REPO, SHARED, require_shared, smooth_image, write_image_file

sys.path.insert(0, str(REPO / 'scripts'))
sys.path.insert(0, str(REPO / 'scripts' / 'metrics'))
import calculate_fusion_metrics as metrics_cli  # noqa: E402
import compare_methods  # noqa: E402
import make_figure  # noqa: E402

METRICS = ['EN', 'SD', 'MI', 'Qabf']
CROP = 48

AVERAGE_ARCH = '''"""A trivial fusion "network": a learnt weighted mean of the visible Y and the infrared image."""
import torch
from torch import nn

from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class AverageFusion(nn.Module):
    def __init__(self, ir_weight=0.5):
        super().__init__()
        self.ir_weight = nn.Parameter(torch.tensor(float(ir_weight)))

    def forward(self, image_vis, image_ir):
        return self.ir_weight * image_ir[:, :1] + (1 - self.ir_weight) * image_vis[:, :1]
'''


@pytest.fixture
def tno_crops(tmp_path):
    """Three real TNO21 pairs cut to 48x48, so that every method fuses them in a fraction of a second."""
    src = require_shared('data', 'TNO21')
    for stem in ('01', '08', '11'):
        for role in ('ir', 'vi'):
            img = cv2.imread(str(src / role / f'{stem}.png'), cv2.IMREAD_UNCHANGED)
            write_image_file(tmp_path / 'tno' / role / f'{stem}.png', img[100:100 + CROP, 120:120 + CROP])
    return tmp_path / 'tno'


def write_yaml(path, opt):
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    return path


def method_yaml(tmp_path, method):
    """options/test/<method>.yml with the released weights from ../shared."""
    opt = yaml.safe_load((REPO / 'options' / 'test' / f'{method}.yml').read_text())
    opt['path']['pretrain_network_g'] = str(require_shared('weights', f'{method}_official.pth'))
    return write_yaml(tmp_path / f'{method}.yml', opt)


def compare_options(tmp_path, data, methods, **extra):
    opt = {'name': 'cmp', 'num_gpu': 0,
           'datasets': {'test_1': {'name': 'tno', 'dataroot_ir': str(data / 'ir'), 'dataroot_vi': str(data / 'vi')}},
           'methods': methods, 'metrics': METRICS, 'convention': 'tang', 'flops_at': ['mean', [16, 24]],
           'warmup': 0, 'figure': {'stems': ['08', '11'], 'cell_height': 32}, **extra}
    return write_yaml(tmp_path / 'compare.yml', opt)


def read_csv(path):
    with open(path, newline='') as handle:
        return list(csv.reader(line for line in handle if not line.startswith('#')))


def test_compare_writes_tables_figure_and_the_metrics_clis_numbers(tmp_path, tno_crops, capsys):
    """FISCNet, SeAFusion and SHIP from their test YAMLs, plus a folder of another method's outputs."""
    other = tmp_path / 'other' / 'tno'
    for stem in ('01', '08', '11'):
        ir = cv2.imread(str(tno_crops / 'ir' / f'{stem}.png'))
        write_image_file(other / f'{stem}.png', ir)  # "fusion" that keeps the infrared image
    methods = [{'options': str(method_yaml(tmp_path, m)), 'paper': f'paper of {m}'} for m in ('FISCNet', 'SeAFusion', 'SHIP')]
    methods.append({'name': 'KeepIR', 'fused': str(tmp_path / 'other' / '{set}')})
    out = tmp_path / 'out'
    compare_methods.main(['-opt', str(compare_options(tmp_path, tno_crops, methods)), '--out', str(out)])
    assert '## tno' in capsys.readouterr().out

    # The metrics are those of the metrics command on the same files, to the last digit.
    fused = [out / 'tno' / 'fused' / m for m in ('FISCNet', 'SeAFusion', 'SHIP')] + [other]
    assert metrics_cli.main(['--ir', str(tno_crops / 'ir'), '--vi', str(tno_crops / 'vi'), '--fused', *map(str, fused),
                             '--metrics', ','.join(METRICS), '--csv', str(tmp_path / 'cli')]) == 0
    for method, label in [('FISCNet', 'FISCNet'), ('SeAFusion', 'SeAFusion'), ('SHIP', 'SHIP'), ('KeepIR', 'tno')]:
        assert (out / 'tno' / 'metrics' / f'{method}.csv').read_text() == (tmp_path / 'cli' / f'{label}.csv').read_text()

    table = read_csv(out / 'tno' / 'comparison.csv')
    header, rows, best = table[0], {row[0]: row for row in table[1:-1]}, dict(zip(table[0], table[-1]))
    assert header[:6] == ['method', 'Paper', 'Params (M)', 'GFLOPs @ 48x48 (mean size)', 'GFLOPs @ 24x16',
                          'Latency (ms/pair)'] and header[6:] == METRICS
    assert list(rows) == ['FISCNet', 'SeAFusion', 'SHIP', 'KeepIR'] and table[-1][0] == 'best'
    assert rows['SeAFusion'][2] == '0.167' and rows['SHIP'][2] == '0.548' and rows['KeepIR'][2:6] == ['n/a'] * 4
    assert best['Params (M)'] == 'SeAFusion'
    # Every convolution is stride 1 with "same" padding: 2 H W FLOPs per weight.
    seafusion_weights = sum(p.numel() for n, p in _network('SeAFusion').named_parameters() if n.endswith('weight'))
    assert float(rows['SeAFusion'][4]) == pytest.approx(2 * 16 * 24 * seafusion_weights / 1e9, abs=0.005)
    assert all(float(rows[m][5]) > 0 for m in ('FISCNet', 'SeAFusion', 'SHIP'))
    en = {m: float(rows[m][6].split(' ± ')[0]) for m in rows}
    assert best['EN'] == max(en, key=en.get)

    markdown = (out / 'tno' / 'comparison.md').read_text()
    assert f'| **{rows["SeAFusion"][2]}** |' in markdown.splitlines()[3]  # best value in bold
    assert 'tang convention' in markdown and 'CPU (' in markdown and 'FFTs' in markdown
    figure = cv2.imread(str(out / 'tno' / 'figure.png'))
    assert figure.shape[1] == 6 * 32 + 5 * make_figure.GAP  # IR | VI | four methods, square crops
    assert figure.shape[0] > 2 * 32


def _network(name):
    from basicsr.archs import build_network
    return build_network({'type': name})


@pytest.fixture
def average_method(tmp_path):
    """A fourth method made as docs/model_zoo.md says: one arch file and its test YAML."""
    arch = tmp_path / 'average_arch.py'
    arch.write_text(AVERAGE_ARCH)
    # Imported as the package imports basicsr/archs/*_arch.py files: registering on import.
    spec = importlib.util.spec_from_file_location('average_arch', arch)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    weights = tmp_path / 'average.pth'
    torch.save({'params': ARCH_REGISTRY.get('AverageFusion')().state_dict()}, weights)
    yield write_yaml(tmp_path / 'Average.yml', {
        'name': 'Average', 'model_type': 'FusionModel', 'num_gpu': 0,
        'datasets': {'test_1': {'name': 'TNO21', 'dataroot_ir': 'datasets/TNO21/ir', 'dataroot_vi': 'datasets/TNO21/vi'}},
        'network_g': {'type': 'AverageFusion', 'ir_weight': 0.5},
        'path': {'pretrain_network_g': str(weights), 'param_key_g': 'params'},
        'val': {'metrics': METRICS}})
    ARCH_REGISTRY._obj_map.pop('AverageFusion')  # other tests see only the project's archs


def test_a_fourth_method_runs_through_test_py_and_the_comparison(tmp_path, tno_crops, average_method):
    from basicsr.test import test_pipeline
    test_pipeline(['-opt', str(average_method), '--force_yml', f'datasets.test_1.dataroot_ir={tno_crops / "ir"}',
                   f'datasets.test_1.dataroot_vi={tno_crops / "vi"}', f'path.results_root={tmp_path / "res"}'])
    fused = cv2.imread(str(tmp_path / 'res' / 'visualization' / 'TNO21' / '08.png'), cv2.IMREAD_GRAYSCALE)
    ir = cv2.imread(str(tno_crops / 'ir' / '08.png'), cv2.IMREAD_GRAYSCALE).astype(float)
    vi = cv2.imread(str(tno_crops / 'vi' / '08.png'), cv2.IMREAD_GRAYSCALE).astype(float)
    assert np.abs(fused - (ir + vi) / 2).max() <= 1
    assert (tmp_path / 'res' / 'metrics' / 'TNO21.csv').is_file()

    out = tmp_path / 'out'
    compare_methods.main(['-opt', str(compare_options(tmp_path, tno_crops, [str(average_method)])), '--out', str(out)])
    rows = read_csv(out / 'tno' / 'comparison.csv')
    assert rows[1][:2] == ['AverageFusion', '0.000']  # named after its network type; one parameter
    assert np.array_equal(cv2.imread(str(out / 'tno' / 'fused' / 'AverageFusion' / '08.png')),
                          cv2.imread(str(tmp_path / 'res' / 'visualization' / 'TNO21' / '08.png')))


def test_compare_option_errors_name_the_key(tmp_path, tno_crops):
    seafusion = str(method_yaml(tmp_path, 'SeAFusion'))
    cases = [
        ({'warmpu': 1}, "unknown option 'warmpu' (did you mean 'warmup'?)"),
        ({'methods': [{'options': seafusion, 'fused': 'x'}]}, "methods[0]: give a test YAML path, or a mapping"),
        ({'methods': [seafusion, seafusion]}, 'the name(s) SeAFusion are used twice'),
        ({'methods': [{'fused': 'x/{set}'}]}, "a folder of fused images needs a 'name'"),
        ({'flops_at': [[4, 4]]}, 'flops_at: [4, 4]'),
        ({'metrics': ['ENN']}, 'ENN'),
        ({'methods': [{'name': '../up', 'fused': 'x'}]}, "'../up' cannot name a folder"),
        ({'figure': {'cell_height': 4}}, 'figure.cell_height: 4 is not valid; expected an integer >= 8'),
        ({'figure': {'stems': 5}}, 'figure.stems: 5 is not valid'),
        ({'metrics': 5}, 'metrics: 5 is not valid'),
        ({'flops_at': 5}, 'flops_at: 5 is not valid'),
        ({'flops_at': 'mean'}, "flops_at: 'mean' is not valid"),
        ({'warmup': True}, 'warmup: True is not valid'),
        ({'datasets': {'test_1': {'name': '../x', 'dataroot_ir': 'i', 'dataroot_vi': 'v'}}}, "datasets.test_1.name: '../x'"),
        ({'datasets': {'test_1': {'name': 's', 'dataroot_ir': 'i', 'dataroot_vi': 'v'},
                       'test_2': {'name': 's', 'dataroot_ir': 'i', 'dataroot_vi': 'v'}}}, "datasets.test_2.name: 's' is also"),
    ]
    for extra, message in cases:
        opt = yaml.safe_load(compare_options(tmp_path, tno_crops, [seafusion]).read_text())
        opt.update(extra)
        with pytest.raises(OptionError) as err:
            compare_methods.main(['-opt', str(write_yaml(tmp_path / 'bad.yml', opt)), '--out', str(tmp_path / 'o')])
        assert message in str(err.value), (extra, str(err.value))
    broken = yaml.safe_load((tmp_path / 'SeAFusion.yml').read_text())
    broken['network_g']['widht'] = 3
    opt = yaml.safe_load(compare_options(tmp_path, tno_crops, [str(write_yaml(tmp_path / 'broken.yml', broken))]).read_text())
    with pytest.raises(OptionError, match=r'broken.yml: .*network_g.widht'):
        compare_methods.main(['-opt', str(write_yaml(tmp_path / 'bad.yml', opt)), '--out', str(tmp_path / 'o')])


def test_compare_never_writes_into_or_archives_its_inputs(tmp_path, tno_crops):
    options = compare_options(tmp_path, tno_crops, [{'name': 'ours', 'fused': str(tno_crops / 'vi')}])
    before = {p: p.read_bytes() for p in tno_crops.rglob('*') if p.is_file()}
    cases = [(tno_crops, 'contains the tno dataroot_ir'), (tno_crops / 'ir', 'is the tno dataroot_ir'),
             (tno_crops / 'ir' / 'sub', 'lies inside the tno dataroot_ir'), (tno_crops / 'ir' / '01.png', 'lies inside the tno dataroot_ir')]
    for out, message in cases:
        with pytest.raises(InputError, match=f'--out {out}: {message}'):
            compare_methods.main(['-opt', str(options), '--out', str(out)])
    other = tmp_path / 'notes'
    other.mkdir()
    (other / 'keep.txt').write_text('mine')
    with pytest.raises(InputError, match='holds no earlier comparison'):
        compare_methods.main(['-opt', str(options), '--out', str(other)])
    assert (other / 'keep.txt').read_text() == 'mine'
    assert {p: p.read_bytes() for p in tno_crops.rglob('*') if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir() if 'archived' in p.name) == []


def test_compare_command_reports_a_bad_file_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / 'scripts' / 'compare_methods.py'), '-opt', str(tmp_path / 'none.yml')],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f'error: {tmp_path / "none.yml"}: option file not found'


def test_make_figure_lays_out_labelled_rows(tmp_path, rng, capsys):
    for stem, size in (('a', (20, 30)), ('b', (30, 20))):
        write_image_file(tmp_path / 'ir' / f'{stem}.png', smooth_image(rng, *size))
        write_image_file(tmp_path / 'vi' / f'{stem}.jpg', smooth_image(rng, *size, 3))
        write_image_file(tmp_path / 'm' / f'{stem}.png', np.zeros((*size, 3), np.uint8))
    make_figure.main(['--ir', str(tmp_path / 'ir'), '--vi', str(tmp_path / 'vi'), '--fused', f'Zero={tmp_path / "m"}',
                      '--out', str(tmp_path / 'fig.png'), '--cell-height', '40'])
    figure = cv2.imread(str(tmp_path / 'fig.png'))
    # Row b (portrait) is 3 x 27 + gaps wide; row a (landscape) sets the width: 3 x 60 + 2 gaps.
    assert figure.shape[1] == 3 * 60 + 2 * make_figure.GAP
    header = figure[:make_figure.HEADER_HEIGHT]
    assert (header < 128).any() and (header == 255).mean() > 0.8  # dark label text on white
    top = make_figure.HEADER_HEIGHT + make_figure.GAP + (make_figure.HEADER_HEIGHT - 8) + make_figure.GAP
    zero_cell = figure[top:top + 40, 2 * (60 + make_figure.GAP):]
    assert (zero_cell == 0).all()  # the method's black images sit in the third column
    with pytest.raises(InputError, match='stem.s. c not found in every folder; available: a, b'):
        make_figure.main(['--ir', str(tmp_path / 'ir'), '--vi', str(tmp_path / 'vi'), '--fused', f'Z={tmp_path / "m"}',
                          '--out', str(tmp_path / 'f.png'), '--stems', 'c'])
    with pytest.raises(OptionError, match="expected NAME=DIR"):
        make_figure.main(['--ir', 'a', '--vi', 'b', '--fused', 'nodir', '--out', str(tmp_path / 'f.png')])
    before = (tmp_path / 'ir' / 'a.png').read_bytes()
    with pytest.raises(InputError, match='lies inside the --ir folder'):
        make_figure.main(['--ir', str(tmp_path / 'ir'), '--vi', str(tmp_path / 'vi'), '--fused', f'Z={tmp_path / "m"}',
                          '--out', str(tmp_path / 'ir' / 'a.png')])
    assert (tmp_path / 'ir' / 'a.png').read_bytes() == before


def test_download_manifest_fetches_each_method_from_a_local_copy(tmp_path):
    import download_pretrained_models as download
    require_shared('weights', 'SHIP_official.pth')
    download.main(['--models', 'SeAFusion,SHIP', '--from', str(SHARED), '--out', str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ['SHIP_official.pth', 'SeAFusion_official.pth']
    for method in ('SeAFusion', 'SHIP'):
        url, sha256 = download.MANIFEST[method]
        assert url.startswith('https://github.com/') and len(sha256) == 64
    with pytest.raises(OptionError, match="unknown method.s. CDDFuse; available: FISCNet, SeAFusion, SHIP"):
        download.main(['--models', 'CDDFuse', '--out', str(tmp_path)])
