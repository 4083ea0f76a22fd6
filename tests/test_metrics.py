"""Fusion metrics: agreement with the toolkits' own values, formulas, conventions, bad input, reports."""
import doctest
import json
import math
import warnings
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import basicsr.metrics as metrics
from basicsr.metrics import (CONVENTIONS, DEFAULT_METRICS, METRIC_NAMES, METRICS, MetricUnavailableError,
                             calculate_metrics, higher_is_better, is_available, to_gray_uint8)
from basicsr.metrics.report import format_table, summarize, write_metrics_csv
from basicsr.utils.errors import InputError, OptionError
from basicsr.utils.registry import METRIC_REGISTRY

REFERENCE = Path(__file__).resolve().parents[1].parent / 'shared' / 'metrics-reference'
# values.json names two metrics after their toolkit's function.
REFERENCE_NAMES = {'MS_SSIM_MEF': 'MS_SSIM', 'RMSE_vifb': 'RMSE'}
# 'any' values are the authors' single definition: the conventions that report it. The tang
# convention keeps its toolkit's own Nabf call, checked by the tang records.
ANY_CONVENTIONS = {'VIFF': CONVENTIONS, 'FMI_pixel': CONVENTIONS, 'FMI_dct': CONVENTIONS,
                   'Nabf': ('cddfuse', 'vifb')}
# MATLAB (Octave) values are float64; the cddfuse evaluator's are float32.
TOLERANCE = {'tang': 1e-6, 'vifb': 1e-6, 'any': 1e-6, 'cddfuse': 1e-5}


def _reference_groups():
    if not (REFERENCE / 'values.json').is_file():
        return {}
    groups = defaultdict(list)
    for record in json.loads((REFERENCE / 'values.json').read_text()):
        groups[REFERENCE_NAMES.get(record['metric'], record['metric']), record['convention']].append(record)
    return groups


REFERENCE_GROUPS = _reference_groups()
_IMAGES = {}


def _image(relative):
    if relative not in _IMAGES:
        _IMAGES[relative] = cv2.imread(str(REFERENCE / relative), cv2.IMREAD_UNCHANGED)
    return _IMAGES[relative]


@pytest.mark.parametrize('name, convention', sorted(REFERENCE_GROUPS) or [('EN', 'tang')])
def test_matches_toolkit_values(name, convention):
    if not REFERENCE_GROUPS:
        pytest.skip(f'reference values not found at {REFERENCE}')
    conventions = ANY_CONVENTIONS[name] if convention == 'any' else (convention,)
    for record in REFERENCE_GROUPS[name, convention]:
        triple = [_image(record[role]) for role in ('ir', 'vi', 'fused')]
        for conv in conventions:
            value = METRICS[name].func(*triple, conv)
            assert value == pytest.approx(record['value'], rel=TOLERANCE[convention], abs=0), \
                f"{name} ({conv}) on {record['triple']}"


def test_every_reference_record_is_checked():
    if not REFERENCE_GROUPS:
        pytest.skip(f'reference values not found at {REFERENCE}')
    assert {name for name, _ in REFERENCE_GROUPS} <= set(METRIC_NAMES)
    assert sum(len(records) for records in REFERENCE_GROUPS.values()) == 606


# --- formulas on small synthetic images (no reference data needed) ---------------------------

def _texture(seed=0, shape=(64, 64)):
    noise = np.random.default_rng(seed).normal(size=shape)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    return cv2.normalize(smooth, None, 10, 245, cv2.NORM_MINMAX).round().astype(np.uint8)


IR, VI = _texture(0), _texture(1)
FUSED = ((IR.astype(np.uint16) + VI) // 2).astype(np.uint8)
RAMP = np.tile(np.arange(64, dtype=np.uint8), (64, 1))


def test_entropy_of_uniform_histogram():
    assert metrics.intensity.entropy(RAMP, RAMP, RAMP) == pytest.approx(6.0, abs=1e-12)
    flat = np.full((64, 64), 9, np.uint8)
    assert metrics.intensity.entropy(flat, flat, flat) == 0.0


def test_sd_sf_ag_formulas():
    stripes = np.tile(np.array([0, 10], np.uint8), (64, 32))
    assert metrics.intensity.standard_deviation(stripes, stripes, stripes) == pytest.approx(5.0)
    # Only horizontal differences, all of magnitude 10: tang averages them, VIFB divides by M N.
    assert metrics.intensity.spatial_frequency(stripes, stripes, stripes, 'tang') == pytest.approx(10.0)
    assert metrics.intensity.spatial_frequency(stripes, stripes, stripes, 'vifb') == pytest.approx(
        10.0 * math.sqrt(63 / 64))
    tang = metrics.intensity.average_gradient(IR, VI, FUSED, 'tang')
    assert metrics.intensity.average_gradient(IR, VI, FUSED, 'cddfuse') == pytest.approx(tang * 63 * 63 / 64 ** 2)
    assert metrics.intensity.average_gradient(IR, VI, FUSED, 'vifb') == tang


def test_mutual_information_conventions():
    nats = metrics.information.mutual_information(IR, VI, FUSED, 'cddfuse')
    assert metrics.information.mutual_information(IR, VI, FUSED, 'vifb') == pytest.approx(nats, rel=1e-12)
    # No grey level 255 here, so tang is the same MI in bits.
    assert metrics.information.mutual_information(IR, VI, FUSED, 'tang') == pytest.approx(nats / math.log(2))
    # Levels 254 and 255 share tang's joint bin: F that tells them apart looks less informative.
    two = np.tile(np.array([254, 255], np.uint8), (64, 32))
    assert metrics.information.mutual_information(two, two, two, 'cddfuse') == pytest.approx(2 * math.log(2))
    assert metrics.information.mutual_information(two, two, two, 'tang') == pytest.approx(4.0)


def test_error_metrics_relations():
    tang_mse = metrics.similarity.mean_squared_error(IR, VI, FUSED, 'tang')
    cdd_mse = metrics.similarity.mean_squared_error(IR, VI, FUSED, 'cddfuse')
    assert cdd_mse == pytest.approx(tang_mse * 65025)
    expected = np.mean([(IR.astype(float) - FUSED) ** 2, (VI.astype(float) - FUSED) ** 2])
    assert cdd_mse == pytest.approx(expected, rel=1e-12)
    tang_psnr = metrics.similarity.peak_signal_to_noise_ratio(IR, VI, FUSED, 'tang')
    cdd_psnr = metrics.similarity.peak_signal_to_noise_ratio(IR, VI, FUSED, 'cddfuse')
    assert tang_psnr - cdd_psnr == pytest.approx(40 * math.log10(255) - 20 * math.log10(FUSED.max()))
    rmse = metrics.similarity.root_mean_squared_error(IR, VI, FUSED, 'vifb')
    assert rmse == pytest.approx((math.sqrt(np.sum((IR.astype(float) - FUSED) ** 2))
                                  + math.sqrt(np.sum((VI.astype(float) - FUSED) ** 2))) / (2 * 64 * 64))
    assert metrics.similarity.peak_signal_to_noise_ratio(IR, VI, FUSED, 'vifb') == pytest.approx(
        20 * math.log10(255 / math.sqrt(rmse)))


def test_correlations():
    assert metrics.similarity.correlation_coefficient(RAMP, RAMP, RAMP) == pytest.approx(1.0)
    assert metrics.similarity.correlation_coefficient(RAMP, 255 - RAMP, RAMP) == pytest.approx(0.0)
    r_ir = np.corrcoef(IR.ravel(), FUSED.ravel())[0, 1]
    r_vi = np.corrcoef(VI.ravel(), FUSED.ravel())[0, 1]
    assert metrics.similarity.correlation_coefficient(IR, VI, FUSED) == pytest.approx((r_ir + r_vi) / 2)
    a, b, f = (x.astype(float).ravel() for x in (IR, VI, FUSED))
    expected = np.corrcoef(f - b, a)[0, 1] + np.corrcoef(f - a, b)[0, 1]
    assert metrics.similarity.sum_of_correlations_of_differences(IR, VI, FUSED) == pytest.approx(expected)


@pytest.mark.parametrize('convention', CONVENTIONS)
def test_perfect_fusion_scores(convention):
    """A fused image equal to both sources scores the metrics' ideal values."""
    ideal = {'VIF': 2.0, 'SSIM': 2.0, 'MS_SSIM': 1.0, 'VIFF': 1.0, 'FMI_pixel': 1.0, 'FMI_dct': 1.0,
             'Qcb': 1.0, 'Qcv': 0.0, 'CE': 0.0, 'RMSE': 0.0, 'MSE': 0.0, 'CC': 1.0, 'Nabf': 0.0}
    scores = calculate_metrics(IR, IR, IR, list(ideal), convention)
    for name, value in ideal.items():
        if is_available(name, convention):
            assert scores[name] == pytest.approx(value, abs=1e-8), name
        else:
            assert math.isnan(scores[name]), name


def test_fusion_quality_ordering():
    """Averaging the sources beats returning a blurred copy of one of them."""
    blurred = cv2.GaussianBlur(IR, (0, 0), 3)
    for name in ('VIF', 'Qabf', 'SSIM', 'MI', 'MS_SSIM', 'VIFF'):
        assert METRICS[name].func(IR, VI, FUSED) > METRICS[name].func(IR, VI, blurred), name


def test_qabf_scale_rule_and_nabf_order():
    # Where g_A == g_F the toolkits use g_F itself, so VIFB's 255x input changes the value a little.
    assert metrics.edges.qabf(IR, VI, FUSED, 'tang') == metrics.edges.qabf(IR, VI, FUSED, 'cddfuse')
    # F equal to a faint source makes g == g_F ~ 1.4 around each dot: the rule's sigmoid of g_F is
    # then visibly below its value at 255 g_F.
    dots = np.zeros((64, 64), np.uint8)
    dots[8::16, 8::16] = 1
    assert metrics.edges.qabf(dots, VI, dots, 'vifb') > metrics.edges.qabf(dots, VI, dots, 'tang')
    kumar = metrics.edges.kumar_nabf
    assert metrics.edges.nabf(IR, VI, FUSED, 'cddfuse') == kumar(FUSED, IR, VI)
    assert metrics.edges.nabf(IR, VI, FUSED, 'tang') == kumar(IR, VI, FUSED)


# --- API: registry, conventions, directions, conversion ---------------------------------------

def test_registry_and_names():
    assert sorted(METRIC_NAMES) == sorted(METRICS)
    for name in METRIC_NAMES:
        assert METRIC_REGISTRY.get(name) is METRICS[name].func
    for convention, names in DEFAULT_METRICS.items():
        assert all(is_available(name, convention) for name in names), convention


def test_unavailable_metrics():
    assert not is_available('VIF', 'vifb') and not is_available('MS_SSIM', 'cddfuse')
    assert not is_available('Qcb', 'tang') and not is_available('MSE', 'vifb')
    with pytest.raises(MetricUnavailableError, match="'VIF' is not defined in the 'vifb' convention"):
        metrics.vif.visual_information_fidelity(IR, VI, FUSED, 'vifb')
    scores = calculate_metrics(IR, VI, FUSED, ['EN', 'VIF', 'CE'], 'tang')
    assert list(scores) == ['EN', 'VIF', 'CE']
    assert math.isnan(scores['CE']) and scores['VIF'] > 0


def test_bad_names_and_conventions():
    with pytest.raises(OptionError, match="convention 'matlab' is unknown"):
        calculate_metrics(IR, VI, FUSED, ['EN'], 'matlab')
    with pytest.raises(OptionError, match='unknown metric.*QABF'):
        calculate_metrics(IR, VI, FUSED, ['QABF'])


def test_higher_is_better():
    assert [name for name in METRIC_NAMES if not higher_is_better(name)] == ['MSE', 'Nabf', 'Qcv', 'CE', 'RMSE']
    assert higher_is_better('PSNR')


def test_to_gray_uint8():
    rgb = np.zeros((48, 48, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50
    expected = round(0.299 * 200 + 0.587 * 100 + 0.114 * 50)
    assert (to_gray_uint8(rgb) == expected).all()
    assert (to_gray_uint8(rgb.astype(np.float32)) == expected).all()
    assert (to_gray_uint8(torch.from_numpy(rgb).permute(2, 0, 1).float()) == expected).all()
    assert (to_gray_uint8(np.full((4, 4), 7.6)) == 8).all()
    with pytest.raises(InputError, match='expected'):
        to_gray_uint8(np.zeros((4, 4, 2)))


def test_colour_and_tensor_inputs_score_like_gray():
    rgb = np.stack([FUSED] * 3, axis=-1)
    tensor = torch.from_numpy(FUSED.astype(np.float32))[None, None]
    gray = calculate_metrics(IR, VI, FUSED, ['EN', 'SSIM'])
    assert calculate_metrics(IR, VI, rgb, ['EN', 'SSIM']) == gray
    assert calculate_metrics(IR, VI, tensor, ['EN', 'SSIM']) == gray


# --- bad input ---------------------------------------------------------------------------------

def test_size_mismatch_and_small_images():
    with pytest.raises(InputError, match=r'sizes differ \(ir 64x64, vi 64x64, fused 64x60'):
        calculate_metrics(IR, VI, FUSED[:, :60], ['EN'])
    small = np.zeros((32, 64), np.uint8)
    with pytest.raises(InputError, match='at least 48x48'):
        metrics.intensity.entropy(small, small, small)


CONSTANT_CASES = {
    'all black': (np.zeros((48, 48), np.uint8),) * 3,
    'all grey': (np.full((48, 48), 128, np.uint8),) * 3,
    'constant fused': (IR[:48, :48], VI[:48, :48], np.full((48, 48), 77, np.uint8)),
    'constant sources': (np.zeros((48, 48), np.uint8), np.full((48, 48), 255, np.uint8), FUSED[:48, :48]),
}


@pytest.mark.parametrize('case', sorted(CONSTANT_CASES))
def test_constant_images_give_defined_values(case):
    ir, vi, fused = CONSTANT_CASES[case]
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        for convention in CONVENTIONS:
            for name, value in calculate_metrics(ir, vi, fused, metrics.available_metrics(convention),
                                                 convention).items():
                if name == 'PSNR' and case in ('all black', 'all grey'):
                    assert value == math.inf
                else:
                    assert math.isfinite(value), f'{name} ({convention}) on {case}: {value}'


def test_documented_constant_values():
    black = np.zeros((48, 48), np.uint8)
    grey = np.full((48, 48), 128, np.uint8)
    assert metrics.vif.visual_information_fidelity(black, black, grey) == 2.0  # 0/0 per source -> 1
    assert metrics.edges.qabf(black, black, grey) == 0.0
    assert metrics.similarity.correlation_coefficient(black, grey, grey) == 0.0
    assert metrics.similarity.peak_signal_to_noise_ratio(grey, grey, black, 'cddfuse') == -math.inf


# --- reports -----------------------------------------------------------------------------------

def test_write_metrics_csv(tmp_path):
    rows = [{'EN': 6.0, 'VIF': math.nan}, {'EN': 7.0, 'VIF': math.nan}]
    path = write_metrics_csv(tmp_path / 'sub' / 'set.csv', ['01', '02'], rows, ['EN', 'VIF'], 'vifb')
    assert path.read_text().splitlines() == ['# convention: vifb', 'image,EN,VIF', '01,6.0,nan', '02,7.0,nan',
                                             'mean,6.5,nan']
    with pytest.raises(ValueError, match='2 image names for 1 rows'):
        write_metrics_csv(tmp_path / 'x.csv', ['01', '02'], rows[:1], ['EN'], 'tang')


def test_summary_and_table():
    assert summarize([{'EN': 6.0}, {'EN': 8.0}], ['EN']) == {'EN': (7.0, 1.0)}
    assert math.isnan(summarize([], ['EN'])['EN'][0])
    table = format_table({'A': [{'EN': 6.0, 'VIF': math.nan}], 'Bee': [{'EN': 8.0, 'VIF': math.nan}]},
                         ['EN', 'VIF'], digits=2)
    assert table.splitlines() == ['method  EN           VIF', 'A       6.00 ± 0.00  n/a', 'Bee     8.00 ± 0.00  n/a']
    assert format_table({'A': [{'EN': 6.0}]}, ['EN'], label='set', with_std=False).splitlines()[1] == 'A    6.0000'


def test_a_new_metric_is_one_decorated_function_listed_after_the_toolkits():
    """What a file ``basicsr/metrics/<idea>_metric.py`` does when the package imports it."""
    from basicsr.metrics.base import fusion_metric
    from basicsr.metrics.conventions import available_metrics, metric_names
    from basicsr.metrics.set_scorer import SetScorer
    from basicsr.utils.registry import METRIC_REGISTRY

    @fusion_metric('MeanGap', conventions=('tang',), higher_is_better=False)
    def mean_gap(ir, vi, fused, convention):
        return abs(float(fused.mean()) - (float(ir.mean()) + float(vi.mean())) / 2)

    try:
        assert metric_names()[-1] == 'MeanGap' and metric_names()[:-1] == METRIC_NAMES
        assert not higher_is_better('MeanGap') and available_metrics('tang')[-1] == 'MeanGap'
        black, white = np.zeros((64, 64), np.uint8), np.full((64, 64), 200, np.uint8)
        assert calculate_metrics(black, white, black, ['MeanGap', 'EN']) == {'MeanGap': 100.0, 'EN': 0.0}
        assert math.isnan(calculate_metrics(black, white, black, ['MeanGap'], 'vifb')['MeanGap'])
        scorer = SetScorer(['MeanGap'])
        scorer.add('x', torch.zeros(1, 64, 64), torch.full((3, 64, 64), 200 / 255), np.zeros((64, 64, 3), np.uint8))
        assert scorer.means() == {'MeanGap': 100.0}
    finally:
        del METRICS['MeanGap'], METRIC_REGISTRY._obj_map['MeanGap']
    assert 'MeanGap' not in metric_names()
