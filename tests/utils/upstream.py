# Copyright (c) mmsimmm contributors. All rights reserved.
"""Fixtures of the drop-in tests: a real SimMinMax training checkpoint, the
upstream toolkits' own tools (from their wheels' ``.mim/tools``) and a
runner for tools in a fresh process."""
import contextlib
import importlib.util
import os
import os.path as osp
import subprocess
import sys
from pathlib import Path
from typing import Callable, List, Optional

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

from mmsimmm.testing import tiny_classifier_cfg, toy_runner_cfg
from utils.processes import describe  # noqa: F401 (re-exported)

# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        osp.join(osp.abspath(__file__).rsplit('/tests/', 1)[0],
                 'configs/_base_/simminmax_default.py')
    ).to_dict()['simminmax_darken_losses'])

REPO_ROOT = Path(__file__).resolve().parents[2]
# the message of torch's refusal; any other output of a run may vary
WEIGHTS_ONLY_FAILED = 'Weights only load failed'


def simminmax_classifier_cfg() -> dict:
    """A tiny SimMinMax over the tiny mmpretrain classifier."""
    return dict(
        type='mmsimmm.SimMinMax',
        darken_head=DARKEN_HEAD,
        task_model=tiny_classifier_cfg(),
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
        adapt_head=dict(
            type='mmsimmm.BYOLAdaptHead',
            features=dict(modules=['neck']),
            projector=dict(
                type='mmsimmm.BYOLMLP',
                in_channels=64,
                hidden_channels=16,
                out_channels=16),
            predictor=dict(
                type='mmsimmm.BYOLMLP',
                in_channels=16,
                hidden_channels=16,
                out_channels=16)))


@pytest.fixture(scope='session')
def simmm_checkpoint(tmp_path_factory) -> Path:
    """``iter_2.pth`` of a 1 darken + 1 adapt iteration SimMinMax run."""
    work_dir = tmp_path_factory.mktemp('dropin_run')
    init_default_scope('mmpretrain')
    stages = [dict(name='darken', iters=1), dict(name='adapt', iters=1)]
    Runner(**toy_runner_cfg(
        str(work_dir), simminmax_classifier_cfg(), 'mmpretrain',
        stages=stages)).train()
    return work_dir / 'iter_2.pth'


@contextlib.contextmanager
def only_torch_allow_list():
    """``weights_only`` loads with torch's own allow-list (no mmsimmm)."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        yield
    finally:
        torch.serialization.add_safe_globals(saved)


@pytest.fixture
def weights_only_on(monkeypatch):
    """No process-wide switch: ``torch.load`` really checks."""
    monkeypatch.delenv('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', raising=False)


def upstream_tool(package: str, name: str) -> str:
    """``<package>/.mim/tools/<name>`` of an installed toolkit wheel."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin, f'{package} is not installed'
    path = osp.join(osp.dirname(spec.origin), '.mim', 'tools', name)
    assert osp.isfile(path), f'{path} is missing from the {package} wheel'
    return path


def child_env(**extra: str) -> dict:
    """A tool's environment: weights_only left on, this checkout first.

    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` is removed, so every checkpoint
    must load through mmsimmm's allow-list (or be plain), and
    ``PYTHONPATH`` starts with this checkout, so that ``custom_imports``
    import this mmsimmm.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
    }
    path = env.get('PYTHONPATH')
    env.update(
        OMP_NUM_THREADS='1',
        PYTHONPATH=str(REPO_ROOT) + (os.pathsep + path if path else ''),
        **extra)
    return env


@pytest.fixture(scope='session')
def run_python() -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python ARGS`` in a fresh process (see :func:`child_env`);
    asserts success unless ``check=False``."""

    def run(args: List[str],
            cwd: Optional[str] = None,
            timeout: float = 300,
            check: bool = True,
            env: Optional[dict] = None) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, *map(str, args)],
                              cwd=str(cwd or REPO_ROOT),
                              env=env or child_env(),
                              capture_output=True,
                              text=True,
                              timeout=timeout)
        proc.output = proc.stdout + proc.stderr
        if check:
            assert proc.returncode == 0, describe(proc)
        return proc

    return run
