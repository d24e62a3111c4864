# Copyright (c) mmsimmm contributors. All rights reserved.
"""The only workarounds mmsimmm applies to third-party packages.

1. mmaction2 1.2.0 on PyPI (wheel and sdist) lacks the package
   ``mmaction/models/localizers/drn`` (upstream has no ``__init__.py`` there,
   so packaging dropped it), yet ``mmaction/models/localizers/__init__.py``
   imports ``.drn.drn.DRN``; ``import mmaction.models`` then fails. mmaction2
   1.1.0 is free of the bug but needs mmcv < 2.1.0, which does not compile
   against any torch that builds mmcv 2.1.0. :func:`patch_mmaction_drn`
   registers a placeholder module whose ``DRN`` raises on use, before
   mmaction's models are imported. Nothing else in mmaction is touched.

2. torch >= 2.6 loads checkpoints with ``weights_only=True`` by default, and
   the checkpoints MMEngine 0.10.7 writes hold ``HistoryBuffer`` and numpy
   objects, so ``--resume`` and ``tools/test.py`` fail to unpickle them.
   :func:`allow_trusted_checkpoints` restores the pre-2.6 behaviour (the
   behaviour every OpenMMLab toolkit was written for) through torch's own
   switch ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``. Only load checkpoints you
   trust: a full pickle can run code.
"""
import importlib.util
import os
import sys
import types

_DRN_MODULES = ('mmaction.models.localizers.drn',
                'mmaction.models.localizers.drn.drn')


class _MissingDRN:
    """Stand-in for mmaction2's DRN localizer (absent from the wheel)."""

    def __init__(self, *args, **kwargs) -> None:
        raise ImportError(
            'mmaction2 1.2.0 on PyPI ships without '
            'mmaction.models.localizers.drn; DRN cannot be used with this '
            'install (see mmsimmm/utils/compat.py).')


def _drn_is_missing() -> bool:
    try:
        spec = importlib.util.find_spec('mmaction')
    except (ImportError, ValueError):
        return False
    if spec is None or not spec.submodule_search_locations:
        return False
    root = list(spec.submodule_search_locations)[0]
    localizers = os.path.join(root, 'models', 'localizers')
    return (os.path.isdir(localizers)
            and not os.path.isdir(os.path.join(localizers, 'drn')))


def patch_mmaction_drn() -> bool:
    """Register a placeholder for mmaction2's missing ``drn`` module.

    Returns:
        bool: True if the placeholder was installed, False if mmaction2 is
        not installed or already has the module.
    """
    if _DRN_MODULES[0] in sys.modules or not _drn_is_missing():
        return False
    package = types.ModuleType(_DRN_MODULES[0])
    package.__path__ = []  # mark as a package
    module = types.ModuleType(_DRN_MODULES[1])
    module.DRN = _MissingDRN
    package.drn = module
    sys.modules[_DRN_MODULES[0]] = package
    sys.modules[_DRN_MODULES[1]] = module
    return True


def allow_trusted_checkpoints() -> None:
    """Let ``torch.load`` read MMEngine checkpoints (full pickles) again.

    Sets ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` unless the user has set it.
    Called by mmsimmm's ``tools/train.py`` and ``tools/test.py``.
    """
    os.environ.setdefault('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', '1')
