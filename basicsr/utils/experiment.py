"""Where runs write: output locations checked against the inputs, run folders locked, earlier runs archived.

Rules every tool that writes follows:

- An output location may not be, contain or lie inside one of the run's inputs (image folders
  and files, the checkpoint, the option file), nor contain the working folder or the program.
- A run folder ``<parent>/<name>`` is locked by ``<parent>/.<name>.lock`` holding the owner's pid,
  host and start time. A second run on the same folder stops with one line while the owner
  lives; a lock whose owner has died (killed, crashed) is stale and taken over.
- A new run archives an earlier run's folder as ``<name>_archived_<time>``; nothing is deleted.
- A run's process is held in :func:`run_scope`, which releases its locks and log files at the end.
"""
import json
import os
import re
import shutil
import socket
import time
from contextlib import contextmanager
from pathlib import Path

from basicsr.utils.dist_util import close_dist, init_dist_from_options, master_only
from basicsr.utils.errors import InputError, writing
from basicsr.utils.logger import close_file_handlers, get_time_str
from basicsr.utils.options import RANDOM_WEIGHTS
from basicsr.utils.process_settings import run_settings

# Names of the temporary files atomic writers leave when killed: .<name>.tmp<pid>
STALE_TEMPORARY = re.compile(r'^\..+\.tmp\d+$')
# What a folder written by test.py or train.py holds; anything else is not archived.
RUN_FOLDER_MARKS = ('visualization', 'metrics', 'models', 'training_states', 'tb_logger')
PROGRAM_ROOT = Path(__file__).resolve().parents[2]


def _resolved(path):
    return Path(os.path.abspath(os.path.expanduser(str(path)))).resolve()


def _home():
    try:
        return Path.home()
    except (RuntimeError, KeyError):  # no HOME and no passwd entry
        return None


def _is_within(path, folder):
    """``path`` is ``folder`` or lies below it (both resolved)."""
    return path == folder or folder in path.parents


def check_output_location(out, inputs, flag='output'):
    """Refuse an output folder that would overwrite, archive or mix with the inputs.

    Args:
        out (str | Path): the folder the tool writes into (it may not exist yet).
        inputs (dict[str, str | Path]): a label for the message -> an input file or folder.
        flag (str): how the message names the output (``--out``, ``path.results_root`` ...).

    Raises:
        InputError: ``out`` is, contains or lies inside an input; is or lies under an existing
            file; or contains the working folder or the program.
    """
    target = _resolved(out)
    for label, path in inputs.items():
        if path is None or str(path) == '':
            continue
        source = _resolved(path)
        if target == source:
            relation = 'is'
        elif _is_within(source, target):
            relation = 'contains'
        elif source.is_dir() and _is_within(target, source):
            relation = 'lies inside'
        else:
            continue
        raise InputError(f'{flag} {out}: {relation} the {label} {path}; outputs must go to a separate folder '
                         '(inputs are never written)')
    for label, folder in (('the working folder', Path.cwd()), ('the program', PROGRAM_ROOT),
                          ('your home folder', _home())):
        if folder is not None and _is_within(_resolved(folder), target):
            raise InputError(f'{flag} {out}: contains {label} ({folder}); choose a folder of its own, '
                             'e.g. results/<name>')
    for part in (target, *target.parents):
        if part.exists():
            if not part.is_dir():
                where = 'is' if part == target else 'lies under'
                raise InputError(f'{flag} {out}: {where} the file {part}; choose a folder path')
            break


def run_inputs(opt, option_file=None):
    """The inputs of a test or training run: every set's folders, the checkpoint and the option file."""
    inputs = {}
    for key, dataset in (opt.get('datasets') or {}).items():
        for role in ('dataroot_ir', 'dataroot_vi', 'dataroot_mask', 'dataroot_gt', 'dataroot_lq'):
            if dataset.get(role):
                inputs[f'folder datasets.{key}.{role}'] = dataset[role]
    checkpoint = (opt.get('path') or {}).get('pretrain_network_g')
    if checkpoint and checkpoint != RANDOM_WEIGHTS:
        inputs['checkpoint path.pretrain_network_g'] = checkpoint
    if option_file:
        inputs['option file'] = option_file
    return inputs


# ------------------------------------------------------------------------------------------ locks

def _process_start(pid):
    """The kernel's start time of ``pid`` (clock ticks since boot), or None where /proc is absent."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return int(f.read().rsplit(')', 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid, start):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's live process
    except (OSError, OverflowError):
        return False
    now_start = _process_start(pid)
    return start is None or now_start is None or now_start == start  # a reused pid is another process


class RunLock:
    """``<parent>/.<name>.lock`` for the run folder ``<parent>/<name>``: who writes into it.

    ``acquire`` raises InputError while another live process holds it; a lock left by a process
    that no longer runs is taken over. ``release`` removes it (only if still ours).
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder.parent / f'.{self.folder.name}.lock'
        self.owned = False

    def _record(self):
        return {'pid': os.getpid(), 'host': socket.gethostname(), 'start': _process_start(os.getpid()),
                'since': time.strftime('%Y-%m-%d %H:%M:%S')}

    def _read(self):
        try:
            return json.loads(self.path.read_text(encoding='utf-8'))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}

    def _is_stale(self, owner):
        if not owner:  # empty or garbled: a writer killed between creating and filling it, if old enough
            try:
                return time.time() - self.path.stat().st_mtime > 5
            except OSError:
                return True
        if owner.get('host') != socket.gethostname():
            return False  # cannot look at another machine's processes
        pid = owner.get('pid')
        if not isinstance(pid, int) or pid == os.getpid():
            return True  # our own pid: left by an earlier run in this process that did not finish
        return not _alive(pid, owner.get('start'))

    def acquire(self):
        with writing(self.path):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(50):
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    owner = self._read()
                    if owner is None:
                        continue
                    if not self._is_stale(owner):
                        if owner:
                            raise InputError(
                                f"{self.folder}: in use by another run (pid {owner.get('pid')} on {owner.get('host')}, "
                                f"since {owner.get('since')}); wait for it to finish or choose another name "
                                f'(if no run uses it, delete {self.path})')
                        time.sleep(0.1)
                        continue
                    self._remove_stale()
                    continue
                with os.fdopen(fd, 'w', encoding='utf-8') as f:
                    json.dump(self._record(), f)
                self.owned = True
                return self
        raise InputError(f'{self.folder}: could not lock it ({self.path} keeps changing); try again')

    def _remove_stale(self):
        # Renaming first means two processes taking over one stale lock cannot remove each other's new one.
        aside = self.path.with_name(f'{self.path.name}.stale{os.getpid()}')
        try:
            os.replace(self.path, aside)
            aside.unlink()
        except FileNotFoundError:
            pass

    def release(self):
        if self.owned:
            owner = self._read()
            if owner and owner.get('pid') == os.getpid():
                self.path.unlink(missing_ok=True)
            self.owned = False


# ------------------------------------------------------------------------------------------ run folders

def looks_like_run_folder(folder):
    """Empty, or holding what test.py/train.py write (a log or their sub-folders)."""
    entries = list(Path(folder).iterdir())
    return not entries or any(e.name in RUN_FOLDER_MARKS or e.suffix in ('.log', '.yml', '.yaml') for e in entries)


def archive_existing(folder):
    """Rename an existing ``folder`` to ``<folder>_archived_<time>`` so its contents survive."""
    folder = Path(folder)
    if not folder.exists():
        return None
    target = folder.with_name(f'{folder.name}_archived_{get_time_str()}')
    suffix = 1
    while target.exists():
        target = folder.with_name(f'{folder.name}_archived_{get_time_str()}_{suffix}')
        suffix += 1
    with writing(folder):
        folder.rename(target)
    return target


def remove_stale_temporaries(root):
    """Delete ``.<name>.tmp<pid>`` files a killed run left under ``root`` (the caller holds its lock)."""
    removed = []
    for path in Path(root).rglob('.*.tmp*'):
        if STALE_TEMPORARY.match(path.name) and path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@master_only
def make_run_dirs(opt, resuming=False, option_file=None):
    """Lock the run folder, check it against the inputs, archive an earlier run, create the sub-folders.

    Returns:
        RunLock: to ``release()`` when the run ends (None on ranks other than 0).

    Raises:
        InputError: the folder is an input's place or in use by a live run, or cannot be written.
    """
    paths = opt['path']
    key = 'experiments_root' if opt['is_train'] else 'results_root'
    root = Path(paths[key])
    check_output_location(root, run_inputs(opt, option_file), f'path.{key}')
    lock = RunLock(root).acquire()
    try:
        if root.exists() and not root.is_dir():
            raise InputError(f'path.{key} {root}: is a file; choose a folder path')
        if resuming:
            remove_stale_temporaries(root)
        elif root.exists():
            if not looks_like_run_folder(root):
                raise InputError(f'path.{key} {root}: exists and is not a run folder (no log, no results); '
                                 'choose a new folder, it would be renamed away')
            archive_existing(root)
        for sub in ('models', 'training_states', 'visualization', 'metrics', 'tb_logger'):
            if sub in paths:
                with writing(paths[sub]):
                    Path(paths[sub]).mkdir(parents=True, exist_ok=True)
        with writing(root):
            root.mkdir(parents=True, exist_ok=True)
    except BaseException:
        lock.release()
        raise
    _HELD_LOCKS.append(lock)
    return lock


_HELD_LOCKS = []


def release_run_locks():
    """Release the run-folder locks this process took with :func:`make_run_dirs` (a run's last step)."""
    while _HELD_LOCKS:
        _HELD_LOCKS.pop().release()


@master_only
def copy_option_file(src, opt, text=None):
    """Keep the YAML the run was started with next to its results (``text``: its content as read)."""
    dst = Path(opt['path']['log']) / f'{Path(src).stem}_{get_time_str()}{Path(src).suffix or ".yml"}'
    with writing(dst):
        if text is None:
            shutil.copyfile(src, dst)
        else:
            dst.write_text(text, encoding='utf-8')


@contextmanager
def run_scope(opt, launcher, training=False):
    """A test or training run's process: the process group of ``launcher`` and the process-wide
    settings (:func:`basicsr.utils.process_settings.run_settings`) inside; the log files, run locks
    and process group closed on the way out, also after an error."""
    init_dist_from_options(opt, launcher)
    try:
        with run_settings(opt, training=training):
            yield
    finally:
        close_file_handlers()
        release_run_locks()
        close_dist()
