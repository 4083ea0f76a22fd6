"""Error types for problems a user can fix; command-line tools print them as one line."""


class InputError(ValueError):
    """Bad input data (a file, a folder, a pair): the message names it and says what to do."""


class OptionError(ValueError):
    """A bad option in a YAML file or on the command line: the message names the key."""


def report_user_errors(main):
    """Run ``main()``; an InputError or OptionError is printed as one line and exits with code 2."""
    import sys
    try:
        return main()
    except (InputError, OptionError) as err:
        print(f'error: {err}', file=sys.stderr)
        sys.exit(2)
