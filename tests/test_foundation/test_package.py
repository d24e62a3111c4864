# Copyright (c) mmsimmm contributors. All rights reserved.
"""The package itself: import, version guard, registries, compat patches."""
import importlib
import os.path as osp
import subprocess
import sys

import mmcv
import mmengine
import pytest
import torch
from mmengine import registry as mmengine_registry
from mmengine.utils import get_installed_path

import mmsimmm
from mmsimmm import registry as mmsimmm_registry
from mmsimmm.utils import compat


def test_import_exposes_version():
    assert isinstance(mmsimmm.__version__, str)
    assert mmsimmm.version_info[:2] == tuple(
        int(part) for part in mmsimmm.__version__.split('.')[:2])


@pytest.mark.parametrize(
    'module, name, bad_version, supported',
    [(mmengine, 'mmengine', '1.2.0', '0.10.0 <= mmengine < 1.0.0'),
     (torch, 'torch', '2.14.1+cpu', '2.0.0 <= torch < 2.14.0'),
     (mmcv, 'mmcv', '2.2.0', '2.0.0 <= mmcv < 2.2.0')])
def test_version_guard_names_installed_and_supported(monkeypatch, module,
                                                     name, bad_version,
                                                     supported):
    monkeypatch.setattr(module, '__version__', bad_version)
    with pytest.raises(RuntimeError) as info:
        mmsimmm.check_versions()
    message = str(info.value)
    assert f'{name}=={bad_version.split("+")[0]}' in message
    assert supported in message


def test_version_guard_runs_at_import(repo_root):
    code = ('import mmengine; mmengine.__version__ = "0.9.1"; '
            'import mmsimmm')
    proc = subprocess.run([sys.executable, '-c', code],
                          cwd=repo_root,
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert 'mmengine==0.9.1 is installed' in proc.stderr
    assert '0.10.0 <= mmengine < 1.0.0' in proc.stderr


REGISTRY_NAMES = mmsimmm_registry.__all__


@pytest.mark.parametrize('name', REGISTRY_NAMES)
def test_registry_is_scoped_child_with_importable_locations(name):
    registry = getattr(mmsimmm_registry, name)
    root = getattr(mmengine_registry, name)
    assert registry.scope == 'mmsimmm'
    assert registry.parent is root
    assert root.children['mmsimmm'] is registry
    assert registry._locations, f'{name} has no locations'
    for location in registry._locations:
        importlib.import_module(location)


@pytest.mark.parametrize('name', REGISTRY_NAMES)
def test_scoped_name_resolves_from_mmengine_root(name):
    registry = getattr(mmsimmm_registry, name)
    root = getattr(mmengine_registry, name)
    class_name = f'FoundationProbe{name.title().replace("_", "")}'
    probe = type(class_name, (), {})
    registry.register_module(module=probe)
    try:
        assert root.get(f'mmsimmm.{class_name}') is probe
    finally:
        registry._module_dict.pop(class_name)


def test_unknown_scoped_type_names_type_and_registry():
    with pytest.raises(KeyError) as info:
        mmengine_registry.MODELS.build(dict(type='mmsimmm.DoesNotExist'))
    message = str(info.value)
    assert 'mmsimmm.DoesNotExist' in message
    assert 'model registry' in message


def test_mmaction_models_import_with_drn_placeholder():
    import mmaction.models  # noqa: F401
    from mmaction.models.localizers.drn.drn import DRN
    if DRN is compat._MissingDRN:
        with pytest.raises(ImportError, match='localizers.drn'):
            DRN()


def test_mim_folder_resolves_to_repo_configs_and_tools(repo_root):
    """``mmsimmm::`` lookups land in this checkout (editable install)."""
    mim = osp.join(get_installed_path('mmsimmm'), '.mim')
    assert osp.isdir(mim), (
        f'{mim} is missing: install the package (pip install -e .)')
    for name in ('configs', 'tools'):
        assert osp.samefile(osp.join(mim, name), osp.join(repo_root, name))
    assert osp.isfile(osp.join(mim, 'model-index.yml'))


def test_installed_path_fallback_only_replaces_missing_folders(tmp_path):
    calls = []

    def lookup(package):
        calls.append(package)
        return str(tmp_path / package)

    patched = compat._with_editable_fallback(lookup)
    # a missing folder falls back to the imported package's folder
    assert patched('mmsimmm') == osp.dirname(mmsimmm.__file__)
    # an existing folder is kept
    (tmp_path / 'mmsimmm').mkdir()
    assert patched('mmsimmm') == str(tmp_path / 'mmsimmm')
    # an unknown package keeps MMEngine's answer
    assert patched('no_such_pkg_xyz') == str(tmp_path / 'no_such_pkg_xyz')
    assert calls == ['mmsimmm', 'mmsimmm', 'no_such_pkg_xyz']
    assert compat.patch_mmengine_mim_lookup() is False  # already on
