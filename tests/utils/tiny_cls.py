# Copyright (c) mmsimmm contributors. All rights reserved.
"""Fixtures for the foundation tests: an mmpretrain config for the tiny
image folders (``tiny_cls_images``, tests/conftest.py) and a helper that
runs a tool in a fresh Python process."""
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, List, Optional

import pytest

TINY_CLS_CONFIG = """\
_base_ = [
    'mmpretrain::_base_/models/resnet18.py',
    'mmpretrain::_base_/default_runtime.py',
]
model = dict(
    backbone=dict(norm_cfg=dict(type={norm!r}, requires_grad=True)),
    head=dict(num_classes=2, topk=(1, )))
data_preprocessor = dict(
    num_classes=2, mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True)
pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
dataset = dict(
    type='CustomDataset', data_root={data_root!r}, pipeline=pipeline)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=True,  # the mmpretrain trap the tools must fix
    dataset=dataset,
    sampler=dict(type='DefaultSampler', shuffle=True))
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    dataset=dataset,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_evaluator = dict(type='Accuracy', topk=(1, ))
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))
log_processor = dict(by_epoch=False)
train_cfg = dict(by_epoch=False, max_iters={iters})
test_cfg = dict()
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=1),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={iters}))
randomness = dict(seed=0)
"""


@pytest.fixture(scope='session')
def write_tiny_cls_config(tiny_cls_images: str) -> Callable[..., str]:
    """A factory writing a ResNet-18 classifier config for the tiny data.

    The factory takes ``(folder, iters=2, norm='BN')`` and returns the path.
    """

    def write(folder: str, iters: int = 2, norm: str = 'BN') -> str:
        path = osp.join(str(folder), f'tiny_cls_{norm.lower()}.py')
        with open(path, 'w') as f:
            f.write(
                TINY_CLS_CONFIG.format(
                    data_root=tiny_cls_images, iters=iters, norm=norm))
        return path

    return write


@pytest.fixture(scope='session')
def run_tool(repo_root: str) -> Callable[..., subprocess.CompletedProcess]:
    """Run ``python <args>`` (or ``bash <script>``) from the repo root.

    The child gets a clean environment for checkpoint loading (no
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), so the tools must set it up
    themselves, and one thread per process.
    """

    def run(args: List[str],
            timeout: float = 240,
            program: Optional[str] = None,
            extra_env: Optional[dict] = None) -> subprocess.CompletedProcess:
        env = {
            key: value
            for key, value in os.environ.items()
            if key != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
        }
        env.update(OMP_NUM_THREADS='1', **(extra_env or {}))
        command = [program or sys.executable, *args]
        return subprocess.run(
            command,
            cwd=repo_root,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout)

    return run
