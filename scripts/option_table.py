"""Print the Markdown table of every option the YAML files take, from the one schema that checks them.

    python scripts/option_table.py [--sections name datasets val ...]

The README's key table is this output; a test checks that it is current.
"""
from basicsr.utils.errors import ArgumentParser, report_user_errors
from basicsr.utils.options import OPTIONS, options_table


def main(argv=None):
    sections = sorted({option.key.split('.')[0] for option in OPTIONS})
    parser = ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--sections', nargs='+', choices=sections, metavar='NAME',
                        help=f"only these top-level keys (default: all): {', '.join(sections)}")
    print(options_table(parser.parse_args(argv).sections))


if __name__ == '__main__':
    report_user_errors(main)
