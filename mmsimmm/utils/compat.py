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
   the checkpoints MMEngine 0.10.7 writes are not plain tensors: the
   message hub holds ``HistoryBuffer`` objects, whose histories are numpy
   arrays and whose statistics methods are pickled as
   ``getattr(HistoryBuffer, 'min')`` etc. ``load_from``, ``--resume`` and
   ``tools/test.py`` of the toolkits' own tools then stop with ``Weights
   only load failed``. :func:`register_checkpoint_safe_globals` (run on
   ``import mmsimmm``) allow-lists exactly what those checkpoints hold
   (:func:`checkpoint_safe_globals`, read off real checkpoints with
   ``torch.serialization.get_unsafe_globals_in_checkpoint``):
   ``HistoryBuffer``, ``numpy.ndarray``, the numpy dtypes, numpy's
   array/scalar reconstructors and, in place of ``getattr``,
   :func:`history_buffer_getattr`, which resolves only those four methods.
   None of them runs code beyond building the object, so ``weights_only``
   stays on: a file with any other class, or any other ``getattr``, is
   still refused. This narrow fix is preferred over torch's process-wide
   switch ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` (which lets any pickle run
   code and which mmsimmm's tools no longer set). An mmsimmm config
   imports mmsimmm through ``custom_imports`` while it is parsed, before
   any checkpoint is read, so the upstream ``tools/train.py`` and
   ``tools/test.py`` load these checkpoints unchanged. A plain task config
   that never imports mmsimmm reads the release that
   ``tools/model_converters/publish_model.py`` writes, which holds only
   tensors and plain types. :func:`allow_trusted_checkpoints` (the full
   switch) stays for scripts that must read other full pickles they trust.

3. MMEngine 0.10.7 resolves ``_base_ = 'pkg::cfg.py'`` only for packages in
   its hard-coded ``MODULE2PACKAGE`` table (OpenMMLab's own), and looks for
   ``<dist location>/<package>/.mim``. With a PEP 660 editable install
   (``pip install -e .`` with current pip/setuptools) the dist location is
   ``site-packages`` while the code stays in the repository, so that folder
   does not exist. :func:`patch_mmengine_mim_lookup` adds ``mmsimmm`` to the
   table and, only where MMEngine's answer is a missing folder, falls back
   to the imported package's own folder. MMEngine also stamps the
   package's name as ``_scope_`` on every typed dict of a ``pkg::`` base;
   mmsimmm's configs are cross-toolkit (their own types are written
   ``mmsimmm.X``, the rest are the task toolkit's, e.g. ``PackInputs``), so
   for ``mmsimmm::`` bases the patch leaves the scope unset, and a user
   config inheriting ``mmsimmm::demo/simminmax.py`` resolves types exactly
   as the file itself does. It takes effect once mmsimmm is imported
   (``tools/train.py`` and ``tools/test.py`` import it before they parse a
   config); the toolkits' own tools parse first (see docs/dropin.md).
"""
import functools
import importlib.util
import os
import os.path as osp
import pickle
import sys
import types
from typing import Any, Callable, List

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


# HistoryBuffer.__getstate__ saves its statistics methods, which pickle's
# protocol 2 (torch.save's) writes as getattr(HistoryBuffer, name).
HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def history_buffer_getattr(obj: Any, name: str) -> Callable:
    """``getattr`` for unpickling, limited to HistoryBuffer's statistics.

    Registered under the name ``builtins.getattr``, so a ``weights_only``
    load resolves exactly ``getattr(HistoryBuffer, 'min' | 'max' |
    'current' | 'mean')`` and refuses every other ``getattr`` (torch
    refuses ``getattr`` altogether by default, and allow-listing the real
    one would hand any attribute of any loaded object to the pickle). Code
    that allow-lists the real ``getattr`` itself should not rely on either
    entry winning.

    Args:
        obj (Any): The object (must be ``HistoryBuffer``).
        name (str): The attribute.

    Returns:
        Callable: The statistics method.

    Raises:
        pickle.UnpicklingError: For anything else.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed when loading with '
        'weights_only (mmsimmm allows only the statistics methods of '
        'mmengine.logging.HistoryBuffer)')


def checkpoint_safe_globals() -> List[Any]:
    """The non-tensor globals MMEngine 0.10 checkpoints are made of.

    Read off real checkpoints (``torch.serialization.
    get_unsafe_globals_in_checkpoint``).

    Returns:
        list: ``HistoryBuffer``, its statistics methods (through
        :func:`history_buffer_getattr`, as ``builtins.getattr``),
        ``numpy.ndarray``, the numpy dtype classes and numpy's array/scalar
        reconstructors, the latter under both their numpy 1 names
        (``numpy.core``) and numpy 2 names (``numpy._core``), so that a
        checkpoint written under either numpy loads under the other.
    """
    import numpy as np
    from mmengine.logging import HistoryBuffer

    try:  # numpy >= 2
        multiarray = importlib.import_module('numpy._core.multiarray')
    except ImportError:
        multiarray = importlib.import_module('numpy.core.multiarray')
    entries: List[Any] = [
        HistoryBuffer, (history_buffer_getattr, 'builtins.getattr'),
        np.ndarray, np.dtype
    ]
    entries += [
        getattr(np.dtypes, name) for name in getattr(np.dtypes, '__all__', ())
    ]
    for func in (multiarray._reconstruct, multiarray.scalar):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            entries.append((func, f'{module}.{func.__name__}'))
    return entries


def register_checkpoint_safe_globals() -> bool:
    """Let ``torch.load(weights_only=True)`` read MMEngine checkpoints.

    Allow-lists :func:`checkpoint_safe_globals` (only those) with
    ``torch.serialization.add_safe_globals``. Run on ``import mmsimmm``.

    Returns:
        bool: True if registered, False on a torch without allow-lists
        (< 2.4, which does not default to ``weights_only`` either).
    """
    import torch.serialization as serialization
    if not hasattr(serialization, 'add_safe_globals'):
        return False
    serialization.add_safe_globals(checkpoint_safe_globals())
    return True


def allow_trusted_checkpoints() -> None:
    """Switch ``weights_only`` off for this process (full pickles).

    Sets torch's ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` unless the user has
    set it. mmsimmm's tools do not need it (MMEngine checkpoints load
    through :func:`register_checkpoint_safe_globals`); it is for scripts
    that must read other full pickles. A full pickle can run code: only
    for checkpoints you trust.
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


def _without_mmsimmm_scope(get_cfg_path: Callable) -> Callable:
    """Wrap ``Config._get_cfg_path``: no ``_scope_`` for ``mmsimmm::``."""

    @functools.wraps(get_cfg_path)
    def _get_cfg_path(cfg_path: str, filename: str) -> tuple:
        path, scope = get_cfg_path(cfg_path, filename)
        return path, None if scope == 'mmsimmm' else scope

    _get_cfg_path._mmsimmm_patched = True
    return _get_cfg_path


def patch_mmengine_mim_lookup() -> bool:
    """Make ``_base_ = 'mmsimmm::...'`` resolve, editable installs included.

    Also keeps MMEngine from stamping ``_scope_='mmsimmm'`` on the dicts of
    ``mmsimmm::`` bases (see the module docstring).

    Returns:
        bool: True if the patch was applied now, False if it already was.
    """
    import mmengine.config.config as config_module
    import mmengine.config.utils as config_utils
    import mmengine.utils as utils_module
    import mmengine.utils.package_utils as package_utils

    config_utils.MODULE2PACKAGE.setdefault('mmsimmm', 'mmsimmm')
    get_cfg_path = config_module.Config._get_cfg_path
    if not getattr(get_cfg_path, '_mmsimmm_patched', False):
        config_module.Config._get_cfg_path = staticmethod(
            _without_mmsimmm_scope(get_cfg_path))
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
