# Copyright (c) mmsimmm contributors. All rights reserved.
"""mmsimmm: Similarity Min-Max zero-shot day-night domain adaptation."""
import mmengine
import torch
from mmengine.utils import digit_version

from .utils.compat import (
    patch_mmaction_drn,
    patch_mmengine_mim_lookup,
    register_checkpoint_safe_globals,
)
from .version import __version__, version_info

MMENGINE_MIN, MMENGINE_MAX = '0.10.0', '1.0.0'
MMCV_MIN, MMCV_MAX = '2.0.0', '2.2.0'
TORCH_MIN, TORCH_MAX = '2.0.0', '2.14.0'


def _check(name: str, installed: str, low: str, high: str) -> None:
    version = digit_version(installed)
    if not digit_version(low) <= version < digit_version(high):
        raise RuntimeError(
            f'{name}=={installed} is installed, but mmsimmm {__version__} '
            f'supports {low} <= {name} < {high}; install a {name} in that '
            'range (the installation guide lists the tested set).')


def check_versions() -> None:
    """Raise if mmengine, mmcv or torch is outside the supported range."""
    _check('mmengine', mmengine.__version__, MMENGINE_MIN, MMENGINE_MAX)
    _check('torch', torch.__version__.split('+')[0], TORCH_MIN, TORCH_MAX)
    try:
        import mmcv
    except ImportError:  # mmpretrain-only use works without mmcv
        return
    _check('mmcv', mmcv.__version__, MMCV_MIN, MMCV_MAX)


check_versions()
patch_mmaction_drn()
patch_mmengine_mim_lookup()
register_checkpoint_safe_globals()

__all__ = ['__version__', 'version_info', 'check_versions']
