"""Importing every module of a package folder so that its registry decorators run."""
import importlib
from pathlib import Path


def import_modules(package_name, package_file, suffix):
    """Import ``<package>.<name>`` for every ``<name><suffix>.py`` next to ``package_file``."""
    for path in sorted(Path(package_file).parent.glob(f'*{suffix}.py')):
        importlib.import_module(f'{package_name}.{path.stem}')
