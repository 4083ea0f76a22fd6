"""FISCNet infrared-visible image fusion: archs, data, losses, metrics and models, found through registries.

Importing the package loads nothing heavy; each sub-package fills its registry when imported,
and ``from basicsr import Fuser`` gives the Python API.
"""
__version__ = '0.1.0'


def __getattr__(name):
    if name == 'Fuser':
        from basicsr.fuser import Fuser
        return Fuser
    raise AttributeError(f"module 'basicsr' has no attribute '{name}'")
