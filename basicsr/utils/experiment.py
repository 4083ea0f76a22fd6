"""The folders of a test or training run: created fresh, earlier runs archived, never deleted."""
import shutil
from pathlib import Path

from basicsr.utils.dist_util import master_only
from basicsr.utils.logger import get_time_str


def archive_existing(folder):
    """Rename an existing ``folder`` to ``<folder>_archived_<time>`` so its contents survive."""
    folder = Path(folder)
    if folder.exists():
        target = folder.with_name(f'{folder.name}_archived_{get_time_str()}')
        suffix = 1
        while target.exists():
            target = folder.with_name(f'{folder.name}_archived_{get_time_str()}_{suffix}')
            suffix += 1
        folder.rename(target)
        return target
    return None


@master_only
def make_run_dirs(opt, resuming=False):
    """Create the run folder and its sub-folders; a new (not resumed) run archives an old one."""
    paths = opt['path']
    root = Path(paths['experiments_root'] if opt['is_train'] else paths['results_root'])
    if not resuming:
        archive_existing(root)
    for key in ('models', 'training_states', 'visualization', 'metrics', 'tb_logger'):
        if key in paths:
            Path(paths[key]).mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)


@master_only
def copy_option_file(src, opt):
    """Keep the YAML the run was started with next to its results."""
    dst = Path(opt['path']['log']) / f'{Path(src).stem}_{get_time_str()}{Path(src).suffix}'
    shutil.copyfile(src, dst)
