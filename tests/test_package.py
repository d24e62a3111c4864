# Copyright (c) mmsimmm contributors. All rights reserved.
"""The package itself: import, version guard, registries, compat patches,
and what the library may import and say."""
import ast
import glob
import importlib
import os.path as osp
import re
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


@pytest.mark.slow
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


PACKAGE_DIR = osp.dirname(mmsimmm.__file__)
LIBRARY_FILES = sorted(
    path for path in glob.glob(
        osp.join(PACKAGE_DIR, '**', '*.py'), recursive=True)
    if not osp.relpath(path, PACKAGE_DIR).startswith('testing'))
# what a message may not name: a folder of the repository
REPO_PATH = re.compile(r'\b(tools|configs|requirements|tests)/')
# calls whose string arguments reach the user
MESSAGE_CALLS = {
    'warn', 'warning', 'error', 'info', 'print_log', 'add_argument',
    'ArgumentParser'
}


def _strings(node: ast.AST, constants: dict) -> list:
    """String literals in ``node``, with module-level str constants it names
    resolved."""
    found = []
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            found.append(child.value)
        elif isinstance(child, ast.Name) and child.id in constants:
            found.append(constants[child.id])
    return found


def _messages(tree: ast.Module) -> list:
    """``(line, text)`` of every string raised, warned, logged or shown as
    command-line help."""
    constants = {
        target.id: node.value.value
        for node in tree.body if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str) for target in node.targets
        if isinstance(target, ast.Name)
    }
    messages = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            parts = [node.exc]
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(
                func, 'id', '')
            if name not in MESSAGE_CALLS:
                continue
            parts = node.args + [keyword.value for keyword in node.keywords]
        else:
            continue
        for part in parts:
            messages += [(node.lineno, text)
                         for text in _strings(part, constants)]
    return messages


def test_library_does_not_import_mmsimmm_testing():
    offenders = []
    for path in LIBRARY_FILES:
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = node.module or ''
                # a relative import: resolve it against the file's package
                if node.level:
                    package = osp.relpath(osp.dirname(path),
                                          osp.dirname(PACKAGE_DIR))
                    parts = package.split(osp.sep)
                    parts = parts[:len(parts) - node.level + 1]
                    module = '.'.join(parts + ([module] if module else []))
                names = [module] + [
                    f'{module}.{alias.name}' for alias in node.names
                ]
            else:
                continue
            if any(name == 'mmsimmm.testing'
                   or name.startswith('mmsimmm.testing.') for name in names):
                offenders.append(f'{path}:{node.lineno}')
    assert not offenders, offenders


def test_library_messages_name_no_repository_paths():
    offenders = []
    for path in LIBRARY_FILES:
        relative = osp.relpath(path, PACKAGE_DIR).replace(osp.sep, '/')
        with open(path) as f:
            tree = ast.parse(f.read(), path)
        offenders += [
            f'{relative}:{line}: {text!r}' for line, text in _messages(tree)
            if REPO_PATH.search(text)
        ]
    assert not offenders, '\n'.join(offenders)


def test_message_scan_finds_a_path_in_a_raise_and_a_help_text():
    tree = ast.parse(
        "HINT = 'see tools/x.py'\n"
        "def f(parser):\n"
        "    parser.add_argument('--a', help='made by configs/a.py')\n"
        "    raise ValueError(f'bad {1}: ' + HINT)\n")
    texts = {text for _, text in _messages(tree) if REPO_PATH.search(text)}
    assert texts == {'made by configs/a.py', 'see tools/x.py'}
