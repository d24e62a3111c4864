# Copyright (c) mmsimmm contributors. All rights reserved.
"""Shared fixtures of the demo tests.

``tiny_run`` trains every demo config for 1-2 iterations on a tiny
generated SyntheticDayNightShapes (32x32, 2 images per class) through
tools/train.py and tests it through tools/test.py, via
``run_demo.main(['--tiny', ...])``, once per session.
"""
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from mmsimmm.utils import allow_trusted_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]
ALL_METHODS = ('day_only', 'day_only_finetune', 'gamma_aug',
               'degradation_aug', 'simminmax')


def load_tool(name: str) -> ModuleType:
    """Import ``tools/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(
        f'demo_{name}', REPO_ROOT / 'tools' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def run_demo() -> ModuleType:
    return load_tool('run_demo')


@pytest.fixture(scope='session')
def tiny_run(run_demo, tmp_path_factory) -> dict:
    """All five methods, seed 0, tiny sizes."""
    allow_trusted_checkpoints()
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp('demo')
    data_root, work_dir = root / 'data', root / 'work'
    rows = run_demo.main([
        '--tiny', '--work-dir',
        str(work_dir), '--data-root',
        str(data_root), '--methods', *ALL_METHODS
    ])
    return dict(rows=rows, data_root=data_root, work_dir=work_dir)
