"""Every docstring example of the package, and the README's Python example, run as written."""
import doctest
import importlib
import pkgutil

import pytest

import basicsr
from conftest import REPO, require_shared

MODULES = sorted(info.name for info in pkgutil.walk_packages(basicsr.__path__, 'basicsr.'))
FLAGS = doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS


@pytest.mark.parametrize('name', MODULES)
def test_docstring_examples(name):
    failures, _ = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert failures == 0, name


def test_readme_python_example(tmp_path, monkeypatch):
    """The README's example, in a folder laid out as the Quick start leaves a clone."""
    weights, tno21 = require_shared('weights', 'FISCNet_official.pth'), require_shared('data', 'TNO21')
    (tmp_path / 'pretrained_models').mkdir()
    (tmp_path / 'pretrained_models' / 'FISCNet_official.pth').symlink_to(weights)
    (tmp_path / 'datasets').mkdir()
    (tmp_path / 'datasets' / 'TNO21').symlink_to(tno21)
    monkeypatch.chdir(tmp_path)
    failures, tried = doctest.testfile(str(REPO / 'README.md'), module_relative=False, optionflags=FLAGS)
    assert tried >= 5 and failures == 0
    assert (tmp_path / 'fused' / '01.png').is_file()
