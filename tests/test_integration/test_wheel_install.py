# Copyright (c) mmsimmm contributors. All rights reserved.
"""A NON-editable install: the wheel's ``mmsimmm/.mim/tools`` train and test
a user config that inherits ``mmsimmm::`` from the wheel's configs, and
``mim train/test mmsimmm`` (when openmim is installed) do the same.

The wheel is built from a copy of this checkout with one extra base config
that exists only there, and unpacked into a folder put first on
``PYTHONPATH`` (the layout ``pip install .`` creates, without reinstalling
torch): the run can only succeed if the installed package serves both the
tools and the configs.
"""
import importlib.util
import os
import shutil
import zipfile

import pytest
from utils.upstream import REPO_ROOT, child_env

from .test_user_config import tiny_demo_options

pytestmark = pytest.mark.slow
USER_CONFIG = """\
_base_ = ['mmsimmm::demo/simminmax.py', 'mmsimmm::_base_/wheel_probe.py']
load_from = None
"""


@pytest.fixture(scope='module')
def site(tmp_path_factory, run_python) -> str:
    """The unpacked wheel of this checkout (+ ``_base_/wheel_probe.py``)."""
    root = tmp_path_factory.mktemp('wheel')
    src = root / 'src'
    src.mkdir()
    for name in ('setup.py', 'MANIFEST.in', 'README.md', 'LICENSE',
                 'model-index.yml', 'pyproject.toml'):
        shutil.copy(REPO_ROOT / name, src / name)
    ignore = shutil.ignore_patterns('__pycache__', '.mim')
    for name in ('mmsimmm', 'configs', 'tools', 'requirements'):
        shutil.copytree(REPO_ROOT / name, src / name, ignore=ignore)
    (src / 'configs' / '_base_' / 'wheel_probe.py').write_text(
        'wheel_probe = 1\n')
    run_python([
        '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q',
        '-w', root / 'dist', src
    ])
    wheel, = (root / 'dist').glob('mmsimmm-*.whl')
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(root / 'site')
    return str(root / 'site')


@pytest.fixture
def project(tmp_path):
    (tmp_path / 'my_simminmax.py').write_text(USER_CONFIG)
    return tmp_path


def wheel_env(site: str) -> dict:
    """The unpacked wheel first on ``PYTHONPATH``, not this checkout."""
    env = child_env()
    env['PYTHONPATH'] = site
    return env


def test_wheel_tools_train_and_test(site, project, run_python):
    tools = os.path.join(site, 'mmsimmm', '.mim', 'tools')
    options = ['--cfg-options', *tiny_demo_options(str(project / 'data'))]
    env = wheel_env(site)
    proc = run_python([
        os.path.join(tools, 'train.py'), 'my_simminmax.py', '--work-dir',
        project / 'work', *options
    ],
                      cwd=project,
                      env=env)
    assert 'wheel_probe = 1' in proc.output  # the config dump
    checkpoint = project / 'work' / 'iter_2.pth'
    assert checkpoint.is_file()
    proc = run_python([
        os.path.join(tools, 'test.py'), 'my_simminmax.py', checkpoint,
        '--work-dir', project / 'test', *options
    ],
                      cwd=project,
                      env=env)
    assert 'night/accuracy/top1' in proc.output, proc.output[-3000:]


@pytest.mark.skipif(
    importlib.util.find_spec('mim') is None,
    reason='openmim is optional (pip install -e ".[optional]")')
def test_mim_train_and_test(site, project, run_python):
    options = tiny_demo_options(str(project / 'data'))
    env = wheel_env(site)
    proc = run_python([
        '-m', 'mim', 'train', 'mmsimmm', 'my_simminmax.py', '--work-dir',
        project / 'work', '--cfg-options', *options
    ],
                      cwd=project,
                      env=env)
    checkpoint = project / 'work' / 'iter_2.pth'
    assert checkpoint.is_file(), proc.output[-3000:]
    proc = run_python([
        '-m', 'mim', 'test', 'mmsimmm', 'my_simminmax.py', '--checkpoint',
        checkpoint, '--work-dir', project / 'test', '--cfg-options', *options
    ],
                      cwd=project,
                      env=env)
    assert 'night/accuracy/top1' in proc.output, proc.output[-3000:]
