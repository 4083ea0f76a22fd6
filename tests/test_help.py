"""Every command-line script answers --help with its own description, without loading torch.

The scripts build their parser and parse the arguments before importing torch (and the basicsr
modules that load it), so that --help and usage errors answer at once.
"""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# train.py, test.py and every script under scripts/, found anew on each run so that a new script is covered.
SCRIPTS = [REPO / 'train.py', REPO / 'test.py', *sorted((REPO / 'scripts').rglob('*.py'))]

# Runs one script as `python SCRIPT --help` does (its folder first on sys.path), then reports the
# exit status and which heavy modules the import left loaded.
PROBE = '''\
import os, runpy, sys
script = sys.argv[1]
sys.argv = [script, '--help']
sys.path.insert(0, os.path.dirname(script))
try:
    runpy.run_path(script, run_name='__main__')
    status = None
except SystemExit as exit:
    status = exit.code
print('EXIT:', status)
print('LOADED:', sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))
'''


def summary(script):
    """The first line of the script's docstring, without a trailing ``: python ...`` usage example."""
    docstring = ast.get_docstring(ast.parse(script.read_text(encoding='utf-8')))
    assert docstring, f'{script.relative_to(REPO)} has no docstring to describe it'
    return docstring.splitlines()[0].split(': python ')[0]


def squeezed(text):
    """``text`` without whitespace: argparse rewraps descriptions (and may break lines at hyphens)."""
    return ''.join(text.split())


@pytest.mark.parametrize('script', SCRIPTS, ids=[script.relative_to(REPO).as_posix() for script in SCRIPTS])
def test_help_describes_the_script_without_loading_torch(script):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    result = subprocess.run([sys.executable, '-c', PROBE, str(script)], capture_output=True, text=True, env=env,
                            cwd=REPO)
    assert result.returncode == 0, result.stderr
    *help_lines, exit_line, loaded_line = result.stdout.splitlines()
    assert exit_line == 'EXIT: 0', result.stdout + result.stderr
    help_text = '\n'.join(help_lines)
    assert help_text.startswith(f'usage: {script.name} '), help_text
    assert squeezed(summary(script)) in squeezed(help_text), help_text
    assert loaded_line == 'LOADED: []', f'--help imported {loaded_line[len("LOADED: "):]}'
