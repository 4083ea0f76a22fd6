import pytest
import yaml

from conftest import REPO
from basicsr.utils.device import select_device
from basicsr.utils.errors import OptionError
from basicsr.utils.options import apply_overrides, parse_options
from basicsr.utils.registry import Registry

BASE = {
    'name': 'demo',
    'datasets': {'test_1': {'name': 'set', 'dataroot_ir': 'ir', 'dataroot_vi': 'vi'}},
    'network_g': {'type': 'FISCNet', 'n_feat': 16},
    'path': {'pretrain_network_g': None},
}


def parse(tmp_path, opt, *extra, is_train=False):
    path = tmp_path / 'opt.yml'
    path.write_text(yaml.safe_dump(opt))
    return parse_options(is_train, ['-opt', str(path), *extra])[0]


def test_force_yml_sets_at_any_depth_creates_keys_and_parses_yaml():
    opt = {'a': {'b': 1}}
    apply_overrides(opt, ['a.b=2', 'a.c.d.e=[1, 2]', 'x=1e-4', 'flag=true', 's=hello'])
    assert opt == {'a': {'b': 2, 'c': {'d': {'e': [1, 2]}}}, 'x': 1e-4, 'flag': True, 's': 'hello'}


def test_force_yml_without_equals_is_an_error():
    with pytest.raises(OptionError, match="--force_yml 'a.b': expected KEY.PATH=VALUE"):
        apply_overrides({}, ['a.b'])


def test_parse_fills_phase_paths_and_defaults(tmp_path):
    opt = parse(tmp_path, BASE, '--force_yml', 'name=other')
    assert opt['name'] == 'other'
    assert opt['datasets']['test_1']['phase'] == 'test'
    assert opt['path']['visualization'].replace('\\', '/') == 'results/other/visualization'
    assert opt['num_gpu'] == 'auto' and isinstance(opt['manual_seed'], int)


def test_debug_prefixes_the_name(tmp_path):
    assert parse(tmp_path, BASE, '--debug', is_train=True)['name'] == 'debug_demo'


@pytest.mark.parametrize('flag', ['--debug', '--auto_resume'])
def test_test_py_takes_no_training_flags(tmp_path, capsys, flag):
    with pytest.raises(SystemExit) as done:
        parse(tmp_path, BASE, flag)
    assert done.value.code == 2 and f'unrecognized arguments: {flag}' in capsys.readouterr().err


@pytest.mark.parametrize('override, message', [
    ('path.pretrain_netwrk_g=x', "unknown option 'path.pretrain_netwrk_g' (did you mean 'pretrain_network_g'?)"),
    ('datasets.test_1.dataroot_vis=x', "unknown option 'datasets.test_1.dataroot_vis' (did you mean 'dataroot_vi'?)"),
    ('network_g.n_feats=8', "unknown option 'network_g.n_feats' (did you mean 'n_feat'?)"),
    ('nmae=x', "unknown option 'nmae' (did you mean 'name'?)"),
    ('val.save_imgs=true', "unknown option 'val.save_imgs' (did you mean 'save_img'?)"),
])
def test_typos_name_the_key_and_the_closest_valid_one(tmp_path, override, message):
    with pytest.raises(OptionError) as err:
        parse(tmp_path, BASE, '--force_yml', override)
    assert message in str(err.value)


def test_unknown_type_lists_the_registry(tmp_path):
    with pytest.raises(OptionError, match="network_g.type: no arch named 'FISCNett'; the arch registry holds: FISCNet, SHIP, SeAFusion$"):
        parse(tmp_path, BASE, '--force_yml', 'network_g.type=FISCNett')


def test_released_basicsr_dataset_keys_are_accepted(tmp_path):
    opt = dict(BASE, datasets={'test_1': {'name': 's', 'type': 'FusionTestDataset', 'dataroot_gt': 'ir',
                                          'dataroot_lq': 'vi', 'io_backend': {'type': 'disk'}}})
    assert parse(tmp_path, opt)['datasets']['test_1']['dataroot_gt'] == 'ir'


def test_missing_and_broken_option_files(tmp_path):
    with pytest.raises(OptionError, match='nope.yml: option file not found'):
        parse_options(False, ['-opt', str(tmp_path / 'nope.yml')])
    bad = tmp_path / 'bad.yml'
    bad.write_text('name: [unclosed')
    with pytest.raises(OptionError, match='bad.yml: not valid YAML'):
        parse_options(False, ['-opt', str(bad)])


def test_num_gpu_choices():
    assert select_device('auto').type in ('cpu', 'cuda')
    assert select_device(0).type == 'cpu'
    with pytest.raises(OptionError, match="num_gpu: 'two' is not valid"):
        select_device('two')


def test_registry_error_lists_entries():
    reg = Registry('thing')
    reg.register(dict, name='A')
    with pytest.raises(KeyError, match="no thing named 'B'; the thing registry holds: A"):
        reg.get('B')
    with pytest.raises(KeyError, match='already registered'):
        reg.register(list, name='A')


def test_a_train_set_without_type_is_checked_as_a_training_set(tmp_path):
    opt = dict(BASE, datasets={'train': {'name': 't', 'dataroot_ir': 'ir', 'dataroot_vi': 'vi', 'gt_size': 64}})
    assert parse(tmp_path, opt, is_train=True)['datasets']['train']['gt_size'] == 64
    opt['datasets']['train']['gt_sise'] = 64
    with pytest.raises(OptionError, match="did you mean 'gt_size'"):
        parse(tmp_path, opt, is_train=True)


def test_the_schema_names_every_8_bit_conversion():
    from basicsr.utils.img_util import TO_8BIT
    from basicsr.utils.options import TO_8BIT_NAMES
    assert TO_8BIT_NAMES == tuple(TO_8BIT)


def test_any_registered_loss_under_any_loss_key(tmp_path):
    opt = parse(tmp_path, dict(BASE, train={'gradient2_loss': {'type': 'GradientFusionLoss', 'loss_weight': 2}}),
                is_train=True)
    assert opt['train']['gradient2_loss']['type'] == 'GradientFusionLoss'
    with pytest.raises(OptionError, match="train.gradient2_loss.type: no loss named 'GradientLoss'"):
        parse(tmp_path, dict(BASE, train={'gradient2_loss': {'type': 'GradientLoss'}}), is_train=True)


def test_the_readme_key_table_is_the_schema():
    from basicsr.utils.options import options_table
    readme = (REPO / 'README.md').read_text(encoding='utf-8')
    start = readme.index('<!-- options table:')
    block = readme[readme.index('\n', start) + 1:readme.index('<!-- end of options table -->')].strip()
    assert block == options_table(), 'README.md: paste the output of python scripts/option_table.py'
