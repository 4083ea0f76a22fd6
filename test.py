"""Fuse the test sets of an option file: python test.py -opt options/test/FISCNet.yml

The run lives in basicsr/test.py.
"""
from basicsr.utils.options import build_arg_parser

if __name__ == '__main__':
    build_arg_parser(is_train=False).parse_args()  # --help and usage errors answer before torch loads
    from basicsr.test import main
    main()
