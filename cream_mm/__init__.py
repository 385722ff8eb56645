"""cream_mm: Cream of the Crop (NeurIPS 2020) on OpenMMLab 2.x.

Importing the package registers every component into the mmpretrain and
mmdet registries, so configs only need ``custom_imports=dict(imports=['cream_mm'])``.
"""
from . import arch, datasets, engine, models, optim, search  # noqa: F401
from .arch import Arch, ArchError, format_arch, parse_arch  # noqa: F401

__version__ = '0.1.0'
