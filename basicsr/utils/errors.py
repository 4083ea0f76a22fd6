"""Error types for problems a user can fix; command-line tools print them as one line.

Exit statuses of every command-line tool: 0 success, 1 training stopped by a non-finite loss,
2 a problem the user can fix (one ``error: ...`` line on stderr), 130 interrupted (Ctrl-C).
"""
import argparse
import errno
import sys
from contextlib import contextmanager

USER_ERROR_STATUS = 2
INTERRUPTED_STATUS = 130  # the shell's convention for a process ended by SIGINT (128 + 2)


class InputError(ValueError):
    """Bad input data (a file, a folder, a pair): the message names it and says what to do."""


class OptionError(ValueError):
    """A bad option in a YAML file or on the command line: the message names the key."""


class WriteError(InputError):
    """An output could not be written (full disk, read-only folder, a path under a file ...)."""


def reworded(err, advice):
    """``err`` (an InputError or OptionError) with its option advice in a tool's own terms.

    Library messages name YAML options (``set path.param_key_g``); a tool with other names for
    them (flags, keyword arguments) replaces each key of ``advice`` by its value.

    Example:
        >>> str(reworded(OptionError('no key; set path.param_key_g'), {'set path.param_key_g': 'give --param_key'}))
        'no key; give --param_key'
    """
    message = str(err)
    for yaml_words, own_words in advice.items():
        message = message.replace(yaml_words, own_words)
    return type(err)(message)


class Interrupted(Exception):
    """Ctrl-C; the message says what was kept and how to continue."""


_WRITE_ADVICE = {
    errno.ENOSPC: 'the disk is full; free space or write elsewhere',
    errno.EDQUOT: 'the disk quota is exhausted; free space or write elsewhere',
    errno.EROFS: 'the file system is read-only; write elsewhere',
    errno.EACCES: 'permission denied; write to a folder you own',
    errno.EPERM: 'permission denied; write to a folder you own',
    errno.ENOTDIR: 'a part of the path is a file, not a folder; choose another path',
    errno.EEXIST: 'a file of that name is in the way; choose another path',
    errno.EISDIR: 'a folder of that name is in the way; choose another path',
    errno.ENAMETOOLONG: 'the name is too long; choose a shorter path',
}


def write_error(path, err):
    """A WriteError for the OSError ``err`` raised while writing ``path``, naming it and what to do."""
    advice = _WRITE_ADVICE.get(err.errno, 'check the folder and the free space')
    reason = err.strerror or type(err).__name__
    return WriteError(f'{path}: cannot write ({reason}); {advice}')


@contextmanager
def writing(path):
    """Turn an OSError raised inside the block into a one-line :class:`WriteError` naming ``path``."""
    try:
        yield
    except WriteError:
        raise
    except OSError as err:
        raise write_error(path, err) from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ``error: ...`` line (status 2), like every other error."""

    def error(self, message):
        print(f'error: {message} (see {self.prog} --help)', file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)


def original_message(err):
    """The message of ``err``; for an error re-raised from a DataLoader worker (whose message then
    holds the worker's traceback) the original error's own message."""
    text = str(err)
    if 'Original Traceback' not in text:
        return text
    last = [line for line in text.splitlines() if line.strip()][-1]
    return last.split(': ', 1)[1] if ': ' in last else last


def user_error_status(err):
    """Print the one ``error: ...`` line for ``err`` and return the exit status; re-raise other errors.

    InputError, OptionError and OS errors (a file that cannot be read or written) give 2, an
    exhausted memory too; Ctrl-C gives 130. Programming errors still raise with their traceback.
    """
    if isinstance(err, (InputError, OptionError)):
        line, status = f'error: {original_message(err)}', USER_ERROR_STATUS
    elif isinstance(err, Interrupted):
        line, status = f'error: {err}', INTERRUPTED_STATUS
    elif isinstance(err, KeyboardInterrupt):
        line = 'error: interrupted (Ctrl-C); outputs written so far are complete, none is half-written'
        status = INTERRUPTED_STATUS
    elif isinstance(err, MemoryError):
        line, status = 'error: out of memory; use smaller images or a machine with more memory', USER_ERROR_STATUS
    elif isinstance(err, OSError):
        where = f'{err.filename}: ' if err.filename else ''
        line = f'error: {where}{err.strerror or err}; check the path, its permissions and the free space'
        status = USER_ERROR_STATUS
    else:
        raise err
    print(' '.join(str(line).split('\n')), file=sys.stderr)
    return status


def report_user_errors(main):
    """Run ``main()``; a problem the user can fix ends the process with one line (see
    :func:`user_error_status`)."""
    try:
        return main()
    except (Exception, KeyboardInterrupt) as err:  # noqa: B902 (sorted out by user_error_status)
        sys.exit(user_error_status(err))


def error_status(func):
    """Run ``func()`` and return its result, or the exit status after the one error line (for tools
    whose ``main`` returns a status)."""
    try:
        return func()
    except (Exception, KeyboardInterrupt) as err:  # noqa: B902
        return user_error_status(err)
