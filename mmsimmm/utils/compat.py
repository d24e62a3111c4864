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

3. MMEngine 0.10.7 resolves ``_base_ = 'pkg::cfg.py'`` only for packages in
   its hard-coded ``MODULE2PACKAGE`` table (OpenMMLab's own), and looks for
   ``<dist location>/<package>/.mim``. With a PEP 660 editable install
   (``pip install -e .`` with current pip/setuptools) the dist location is
   ``site-packages`` while the code stays in the repository, so that folder
   does not exist. :func:`patch_mmengine_mim_lookup` adds ``mmsimmm`` to the
   table and, only where MMEngine's answer is a missing folder, falls back
   to the imported package's own folder. It takes effect once mmsimmm is
   imported (``tools/train.py`` and ``tools/test.py`` import it before they
   parse a config).
"""
import functools
import importlib.util
import os
import os.path as osp
import sys
import types
from typing import Callable

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


def _package_dir(package: str) -> str:
    """Return the folder of an importable regular package, or ''."""
    try:
        spec = importlib.util.find_spec(package.replace('-', '_'))
    except (ImportError, ValueError):
        return ''
    if spec is None or spec.origin is None:
        return ''
    return osp.dirname(spec.origin)


def _with_editable_fallback(lookup: Callable[[str], str]) -> Callable:
    """Wrap MMEngine's ``get_installed_path`` with the editable fallback."""

    @functools.wraps(lookup)
    def get_installed_path(package: str) -> str:
        path = lookup(package)
        if osp.isdir(path):
            return path
        return _package_dir(package) or path

    get_installed_path._mmsimmm_patched = True
    return get_installed_path


def patch_mmengine_mim_lookup() -> bool:
    """Make ``_base_ = 'mmsimmm::...'`` resolve, editable installs included.

    Returns:
        bool: True if the patch was applied now, False if it already was.
    """
    import mmengine.config.config as config_module
    import mmengine.config.utils as config_utils
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils

    config_utils.MODULE2PACKAGE.setdefault('mmsimmm', 'mmsimmm')
    original = package_utils.get_installed_path
    if getattr(original, '_mmsimmm_patched', False):
        return False
    patched = _with_editable_fallback(original)
    for module in (package_utils, utils_module, config_module):
        module.get_installed_path = patched
    hub = sys.modules.get('mmengine.hub.hub')
    if hub is not None:
        hub.get_installed_path = patched
    return True
