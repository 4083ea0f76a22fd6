"""FISCNet infrared-visible image fusion: archs, data, losses, metrics and models, found through registries."""
from basicsr import archs, data, losses, metrics, models  # noqa: F401  (fill the registries)

__version__ = '0.1.0'
