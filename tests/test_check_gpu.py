"""scripts/check_gpu.py on the CPU: its comparisons run with device='cpu', its orchestration and report format."""
import sys

import cv2
import numpy as np
import pytest
import torch

from conftest import REPO, WEIGHTS, require_shared
from basicsr.utils.errors import report_user_errors

sys.path.insert(0, str(REPO / 'scripts'))
import check_gpu  # noqa: E402


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA: the checks would run')
def test_without_cuda_it_exits_with_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        report_user_errors(lambda: check_gpu.main([]))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        'error: no CUDA device is available to this PyTorch (torch.cuda.is_available() is False); run '
        'scripts/check_gpu.py on a machine with an NVIDIA GPU and a CUDA build of PyTorch\n')


def test_output_and_curve_differences():
    below, above = (127.5 - 1e-4) / 255, (127.5 + 1e-4) / 255  # round to 127 and 128
    raw, grey = check_gpu.output_differences(np.array([below, 0.2, 1.3]), np.array([above, 0.2, 1.2]))
    assert raw == pytest.approx(0.1) and grey == 1  # 1.3 and 1.2 both clamp to 255
    assert check_gpu.output_differences(np.full(3, 0.5), np.full(3, 0.5)) == (0.0, 0)
    assert check_gpu.curve_difference([2.0, 4.0], [2.0, 4.1]) == pytest.approx(0.025)
    with pytest.raises(ValueError, match='loss curves of 2 and 1 steps'):
        check_gpu.curve_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match='not finite'):
        check_gpu.curve_difference([1.0], [float('nan')])
    # H200-sized memory: the square asks for 4x the GPU's 139 GiB at 2,700 bytes per pixel.
    side = check_gpu.oversized_side(139 * 2**30, 2700)
    assert side % 8 == 0 and 4 * 139 * 2**30 <= side ** 2 * 2700 < 4.01 * 139 * 2**30


def test_inference_comparison_on_the_cpu_is_exact_for_real_pairs(tmp_path):
    """The comparison run with the CPU on both sides: the same weights and pairs give no difference."""
    tno = require_shared('data', 'TNO21')
    for stem in ('01', '02'):
        for role in ('ir', 'vi'):
            img = cv2.imread(str(next((tno / role).glob(f'{stem}.*'))), cv2.IMREAD_UNCHANGED)
            (tmp_path / role).mkdir(exist_ok=True)
            cv2.imwrite(str(tmp_path / role / f'{stem}.png'), img[:96, :128])
    pairs = check_gpu.read_pairs(tmp_path)
    assert [(stem, vis.shape, ir.shape) for stem, vis, ir in pairs] == [
        ('01', (1, 3, 96, 128), (1, 1, 96, 128)), ('02', (1, 3, 96, 128), (1, 1, 96, 128))]
    found = check_gpu.compare_inference(pairs, WEIGHTS, 'cpu', tf32_modes=(False,))
    assert found == {False: [('01', 0.0, 0), ('02', 0.0, 0)]}
    outcome = check_gpu.check_inference(check_gpu.Context(torch.device('cpu'), tmp_path, WEIGHTS))
    assert outcome.passed and outcome.summary == ('TF32 off: max abs diff 0.0e+00, 0 grey level(s); '
                                                  'TF32 on: max abs diff 0.0e+00, 0 grey level(s)')


def test_training_comparison_amp_and_ddp_on_the_cpu():
    ctx = check_gpu.Context(torch.device('cpu'), steps=3, crop=16, batch=2)
    outcome = check_gpu.check_training(ctx)
    assert outcome.passed and outcome.summary == '3 steps, max relative loss difference 0.0e+00 (budget 0.01)'
    curve = check_gpu.loss_curve('cpu', 3, check_gpu.synthetic_batches(8, 2, 16))
    assert f'| 3 | {curve[2]:.6f} | {curve[2]:.6f} | 0.0e+00 |' in outcome.details
    assert curve[2] < curve[0]  # the steps train
    amp = check_gpu.check_amp(ctx)
    assert amp.passed, amp.details
    # One process with gloo instead of NCCL: DDP's averaged gradient is the plain gradient.
    assert check_gpu.ddp_step_difference('cpu', 'gloo', check_gpu.synthetic_batches(1, 2, 16)[0]) <= 1e-6


def test_run_checks_times_catches_and_keeps_to_the_budget():
    ticks = iter([0.0, 0.0, 1.0, 1.0, 3.0, 6.0, 7.0])  # start, then each check's start and end

    def failing(ctx):
        raise RuntimeError('cuFFT error: CUFFT_INTERNAL_ERROR\nmore')

    checks = {'a': ('first', lambda ctx: check_gpu.Outcome(True, 'fine', 'a table')),
              'b': ('second', failing),
              'c': ('third', lambda ctx: check_gpu.Outcome(True, 'never')),
              'd': ('fourth', lambda ctx: check_gpu.Outcome(True, 'never'))}
    results = check_gpu.run_checks(checks, None, budget_s=5, clock=lambda: next(ticks))
    assert [(title, o.passed, o.summary, o.seconds) for title, o in results.values()] == [
        ('first', True, 'fine', 1.0), ('second', False, 'RuntimeError: cuFFT error: CUFFT_INTERNAL_ERROR', 2.0),
        ('third', None, 'not run: the 5 s budget was spent', 0.0), ('fourth', None, 'not run: the 5 s budget was spent', 0.0)]
    assert 'Traceback' in results['b'][1].details and 'failing' in results['b'][1].details
    report = check_gpu.format_report(results, ['- GPU: test'], 'python scripts/check_gpu.py')
    assert report.startswith('# FISCNet GPU check\n\n- GPU: test\n- command: `python scripts/check_gpu.py`\n'
                             '- result: 1 of 2 checks failed\n\n| check | result | time (s) | summary |\n|---|---|---:|---|\n'
                             '| first | pass | 1.0 | fine |\n| second | **FAIL** | 2.0 | RuntimeError: cuFFT error: '
                             'CUFFT_INTERNAL_ERROR |\n| third | not run | 0.0 | not run: the 5 s budget was spent |\n')
    assert '\n## first\n\na table\n' in report and '\n## second\n\n```\nTraceback' in report
    assert '## third' not in report
