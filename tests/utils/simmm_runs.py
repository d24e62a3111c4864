# Copyright (c) mmsimmm contributors. All rights reserved.
"""Fixtures of the reliability tests: tiny PNG folders and SimMinMax configs.

Every run trains a ResNet-18 with 8 base channels on 32x32 PNGs (two class
folders of four images) read by mmpretrain's ``CustomDataset``, so the same
config file works in-process, through ``tools/train.py`` and under
``torchrun``.
"""
import importlib
import os
import os.path as osp
import subprocess
import sys
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config

from utils.processes import describe, free_port  # noqa: F401 (re-exported)

HERE = osp.dirname(osp.abspath(__file__))
REPO_ROOT = osp.dirname(osp.dirname(HERE))
CLASSES = ('day', 'night')
IMAGES_PER_CLASS = 4
# the official darkening losses (the base config is their one place)
DARKEN_LOSSES = Config.fromfile(
    osp.join(REPO_ROOT, 'configs/_base_/simminmax_default.py')
).to_dict()['simminmax_darken_losses']
# The test-only components are imported as the top-level module `rel_hooks`
# here and in subprocesses (PYTHONPATH, see tool_env), so configs can name
# it in custom_imports.
HOOKS_IMPORT = 'rel_hooks'
if HERE not in sys.path:
    sys.path.append(HERE)
importlib.import_module(HOOKS_IMPORT)


def write_images(root: str, per_class: int = IMAGES_PER_CLASS) -> str:
    """Bright and dark random 32x32 PNGs in one folder per class."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        os.makedirs(osp.join(root, name), exist_ok=True)
        low, high = (120, 255) if label == 0 else (0, 120)
        for index in range(per_class):
            image = rng.integers(low, high, (32, 32, 3), dtype=np.uint8)
            assert cv2.imwrite(osp.join(root, name, f'{index}.png'), image)
    return root


@pytest.fixture(scope='session')
def tiny_images(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The shared, read-only image folder."""
    return write_images(str(tmp_path_factory.mktemp('tiny_images')))


# Two independent random crops + flips of each image (the CODaN recipe).
TWO_VIEW_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(
        type='mmsimmm.IndependentViews',
        transforms=[
            dict(type='RandomResizedCrop', scale=32,
                 crop_ratio_range=(0.5, 1.0)),
            dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        ]),
    dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackInputs')),
]


def paired_pipeline(day_root: str, dark_root: str) -> List[dict]:
    """Day image + its copy under ``dark_root`` as the second view."""
    return [
        dict(type='LoadImageFromFile'),
        dict(type='mmsimmm.LoadPairedDarkImage', day_root=day_root,
             dark_root=dark_root),
        dict(type='mmsimmm.PackTwoViews', pack=dict(type='PackInputs')),
    ]


def byol_cfg(kind: Optional[str],
             target_update: Optional[str] = None) -> Optional[dict]:
    if kind is None:
        return None
    if kind == 'mlp':
        projector = dict(type='mmsimmm.BYOLMLP', in_channels=64,
                         hidden_channels=16, out_channels=16)
        predictor = dict(type='mmsimmm.BYOLMLP', in_channels=16,
                         hidden_channels=16, out_channels=16)
    else:  # BN-free heads (see rel_hooks.LinearHeadsNoBN)
        projector = dict(type='LinearHeadsNoBN', in_channels=64)
        predictor = dict(type='LinearHeadsNoBN', in_channels=16)
    byol = dict(type='mmsimmm.BYOLAdaptHead', features=dict(modules=['neck']),
                projector=projector, predictor=predictor, loss_weight=0.05,
                momentum=0.01)
    if target_update is not None:
        byol['target_update'] = target_update
    return byol


def simmm_cfg(work_dir: str,
              data_root: str,
              stages: Sequence[int] = (2, 2),
              batch_size: int = 2,
              norm: str = 'BN',
              norm_eval: bool = False,
              byol: Optional[str] = 'mlp',
              seed: int = 0,
              deterministic: bool = False,
              checkpoint_interval: int = 1,
              custom_hooks: Sequence[dict] = (),
              extra_imports: Sequence[str] = (),
              with_test: bool = False,
              pipeline: Optional[List[dict]] = None,
              target_update: Optional[str] = None,
              **model_kwargs) -> Config:
    """A complete SimMinMax config over ``data_root`` (CustomDataset).

    ``pipeline``: the train pipeline (default: load + pack, one view);
    ``target_update``: the BYOL setting (default: SimMinMax's).
    """
    task_model = dict(
        type='ImageClassifier',
        _scope_='mmpretrain',
        data_preprocessor=dict(
            type='ClsDataPreprocessor',
            mean=[123.675, 116.28, 103.53],
            std=[58.395, 57.12, 57.375],
            to_rgb=True,
            num_classes=len(CLASSES)),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=8,
            stem_channels=8,
            out_indices=(3, ),
            norm_cfg=dict(type=norm, requires_grad=True),
            norm_eval=norm_eval),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=len(CLASSES),
            in_channels=64,
            loss=dict(type='CrossEntropyLoss'),
            topk=(1, )))
    model = dict(
        type='mmsimmm.SimMinMax',
        task_model=task_model,
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
        darken_head=dict(type='mmsimmm.DarkenHead', losses=DARKEN_LOSSES),
        adapt_head=byol_cfg(byol, target_update),
        **model_kwargs)
    test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]
    dataset = dict(type='CustomDataset', data_root=data_root,
                   pipeline=pipeline or test_pipeline)
    names = ('darken', 'adapt')
    cfg = dict(
        work_dir=work_dir,
        default_scope='mmpretrain',
        custom_imports=dict(
            imports=['mmsimmm.models', 'mmsimmm.engine', 'mmsimmm.datasets',
                     *extra_imports],
            allow_failed_imports=False),
        model=model,
        model_wrapper_cfg=dict(
            type='MMDistributedDataParallel', find_unused_parameters=True),
        train_dataloader=dict(
            batch_size=batch_size,
            num_workers=0,
            dataset=dataset,
            sampler=dict(type='DefaultSampler', shuffle=True, seed=seed)),
        optim_wrapper=dict(
            constructor='mmsimmm.SimMinMaxOptimWrapperConstructor',
            darkener=dict(
                optimizer=dict(type='Adam', lr=1e-3, weight_decay=1e-4),
                clip_grad=dict(max_norm=0.1)),
            task=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9))),
        param_scheduler=dict(
            darkener=[
                dict(type='MultiStepLR', by_epoch=False, milestones=[1])
            ],
            task=[dict(type='MultiStepLR', by_epoch=False, milestones=[1])]),
        train_cfg=dict(
            type='mmsimmm.SimMinMaxLoop',
            stages=[dict(name=name, iters=iters)
                    for name, iters in zip(names, stages) if iters]),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', by_epoch=False,
                            interval=checkpoint_interval)),
        custom_hooks=list(custom_hooks),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=seed, deterministic=deterministic),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='INFO')
    if with_test:
        cfg.update(
            test_dataloader=dict(
                batch_size=2,
                num_workers=0,
                dataset=dict(dataset, pipeline=test_pipeline),
                sampler=dict(type='DefaultSampler', shuffle=False)),
            test_evaluator=dict(type='Accuracy', topk=(1, )),
            test_cfg=dict())
    return Config(cfg)


def dump_cfg(cfg: Config, path: str) -> str:
    """Write a config file that the tools can read."""
    cfg.dump(path)
    return path


def tool_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment of a tool subprocess: one thread, rel_hooks importable.

    Full-pickle loading is NOT pre-allowed: the tools must do it.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key != 'TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD'
    }
    path = env.get('PYTHONPATH')
    env.update(
        OMP_NUM_THREADS='1',
        PYTHONPATH=HERE + (os.pathsep + path if path else ''),
        **(extra or {}))
    return env


def run_tool(args: List[str],
             program: Optional[str] = None,
             timeout: float = 240,
             extra_env: Optional[Dict[str, str]] = None
             ) -> subprocess.CompletedProcess:
    """Run ``python <args>`` (or ``<program> <args>``) from the repo root."""
    return subprocess.run([program or sys.executable, *args],
                          cwd=REPO_ROOT,
                          env=tool_env(extra_env),
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def load(path: str) -> dict:
    return torch.load(path, map_location='cpu', weights_only=False)


def max_abs_diff(a: Dict[str, torch.Tensor],
                 b: Dict[str, torch.Tensor]) -> float:
    """Largest absolute difference over the float tensors of two dicts."""
    assert set(a) == set(b), set(a) ^ set(b)
    worst = 0.
    for key, value in a.items():
        if torch.is_tensor(value) and value.is_floating_point():
            worst = max(worst,
                        (value.double() - b[key].double()).abs().max().item()
                        if value.numel() else 0.)
        else:
            assert torch.equal(torch.as_tensor(value),
                               torch.as_tensor(b[key])), key
    return worst


@pytest.fixture
def no_checkpoint_written() -> Callable[[str], None]:
    """Assert that a work dir holds no checkpoint and no trained iteration.

    ``scalars.json`` is written after the first logged iteration.
    """

    def check(work_dir: str) -> None:
        found = []
        for folder, _, files in os.walk(work_dir):
            found += [osp.join(folder, f) for f in files
                      if f.endswith('.pth') or f == 'scalars.json'
                      or f == 'last_checkpoint']
        assert not found, f'training started: {found}'

    return check

