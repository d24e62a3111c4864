# Copyright (c) mmsimmm contributors. All rights reserved.
"""setup.py: requirement ranges, the MIM extension and the built wheel."""
import importlib.metadata
import importlib.util
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest
from packaging.requirements import Requirement
from utils.processes import describe

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def setup_module():
    spec = importlib.util.spec_from_file_location(
        'mmsimmm_setup', osp.join(REPO_ROOT, 'setup.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() only runs under __main__
    return module


def test_installed_stack_satisfies_ranges(setup_module):
    """pip must find torch, mmcv, ... already satisfied (no rebuild)."""
    for line in setup_module.INSTALL_REQUIRES:
        requirement = Requirement(line)
        installed = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(
            installed, prereleases=True), f'{requirement.name}=={installed}'


def test_runtime_pins_lie_inside_ranges(setup_module):
    pins = {
        Requirement(line).name.lower(): Requirement(line)
        for line in setup_module.read_requirements('runtime')
    }
    for line in setup_module.INSTALL_REQUIRES:
        requirement = Requirement(line)
        pin = pins.get(requirement.name.lower())
        if pin is None:
            continue
        version = next(iter(pin.specifier)).version
        assert requirement.specifier.contains(version), (line, str(pin))


def test_extras_come_from_requirement_files(setup_module):
    tests = setup_module.read_requirements('tests')
    assert any(line.startswith('pytest') for line in tests)
    assert not any(line.startswith('#') for line in tests)
    assert setup_module.read_requirements('optional')


@pytest.mark.parametrize('argv, mode', [
    (['editable_wheel', '--dist-dir', 'x'], 'symlink'),
    (['develop'], 'symlink'),
    (['bdist_wheel', '--dist-dir', 'x'], 'copy'),
    (['sdist'], 'copy'),
    (['egg_info'], ''),
])
def test_mim_mode(setup_module, argv, mode):
    assert setup_module.mim_mode(argv) == mode


def _fake_repo(root):
    (root / 'mmsimmm').mkdir()
    (root / 'configs' / '_base_').mkdir(parents=True)
    (root / 'configs' / '_base_' / 'a.py').write_text('a = 1\n')
    (root / 'tools').mkdir()
    (root / 'tools' / 'train.py').write_text('# train\n')
    (root / 'model-index.yml').write_text('Import: []\n')


@pytest.mark.parametrize('mode', ['symlink', 'copy'])
def test_add_mim_extension(setup_module, tmp_path, mode):
    _fake_repo(tmp_path)
    mim = tmp_path / 'mmsimmm' / '.mim'
    for _ in range(2):  # a second run replaces the first
        setup_module.add_mim_extension(mode, str(tmp_path))
    assert (mim / 'configs' / '_base_' / 'a.py').read_text() == 'a = 1\n'
    assert (mim / 'tools' / 'train.py').is_file()
    assert (mim / 'model-index.yml').is_file()
    assert (mim / 'configs').is_symlink() == (mode == 'symlink')
    with pytest.raises(ValueError, match='unknown mim mode'):
        setup_module.add_mim_extension('hardlink', str(tmp_path))


@pytest.mark.slow
def test_wheel_ships_configs_and_tools(run_tool, tmp_path):
    """Build a wheel from a copy of the repo and use its mmsimmm:: base."""
    src = tmp_path / 'src'
    src.mkdir()
    for name in ('setup.py', 'MANIFEST.in', 'README.md', 'LICENSE',
                 'model-index.yml', 'pyproject.toml'):
        shutil.copy(osp.join(REPO_ROOT, name), src / name)
    ignore = shutil.ignore_patterns('__pycache__', '.mim')
    for name in ('mmsimmm', 'configs', 'tools', 'requirements'):
        shutil.copytree(osp.join(REPO_ROOT, name), src / name, ignore=ignore)
    (src / 'configs' / '_base_' / 'foundation_probe.py').write_text(
        "probe = dict(type='Probe', value=3)\n")

    proc = run_tool([
        '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
        '-w',
        str(tmp_path / 'dist'),
        str(src)
    ])
    assert proc.returncode == 0, describe(proc)
    wheel, = (tmp_path / 'dist').glob('mmsimmm-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / 'site')
    for name in ('mmsimmm/.mim/tools/train.py', 'mmsimmm/.mim/tools/test.py',
                 'mmsimmm/.mim/tools/dist_train.sh',
                 'mmsimmm/.mim/tools/dist_common.sh',
                 'mmsimmm/.mim/model-index.yml',
                 'mmsimmm/.mim/configs/_base_/foundation_probe.py',
                 'mmsimmm/registry.py'):
        assert name in names, name
    assert not any(name.startswith(('tests/', 'configs/', 'tools/'))
                   for name in names)

    # the unpacked wheel, not this checkout, must serve the mmsimmm:: base
    user_cfg = tmp_path / 'user_cfg.py'
    user_cfg.write_text("_base_ = 'mmsimmm::_base_/foundation_probe.py'\n")
    code = ('import mmsimmm, sys; from mmengine.config import Config; '
            f'cfg = Config.fromfile({str(user_cfg)!r}); '
            'print(mmsimmm.__file__, cfg.probe.value, '
            'cfg.probe.get("_scope_"))')
    env = dict(os.environ, PYTHONPATH=str(tmp_path / 'site'))
    proc = subprocess.run([sys.executable, '-c', code],
                          cwd=str(tmp_path),
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=120)
    assert proc.returncode == 0, describe(proc)
    location, value, scope = proc.stdout.split()[-3:]
    assert location.startswith(str(tmp_path / 'site'))
    # no _scope_='mmsimmm' stamp: unprefixed types stay the toolkit's
    assert (value, scope) == ('3', 'None')
