# Copyright (c) mmsimmm contributors. All rights reserved.
"""The worked "any upstream config" example: SimMinMax on ConvNeXt-T.

Parses configs/classification/simminmax_convnext-tiny_32xb128_in1k.py and
trains it for 3 iterations (2 darken + 1 adapt, then validation) on the CPU
with a shrunken ConvNeXt and a tiny ImageNet-layout image folder. Only sizes,
paths and schedule lengths are overridden; the recipe (losses, features,
optimizers, EMAHook, batch augments) is the config's.
"""
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mmsimmm  # noqa: F401
from mmsimmm.utils import allow_trusted_checkpoints

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / 'configs' / 'classification' / (
    'simminmax_convnext-tiny_32xb128_in1k.py')
CLASSES = ('car', 'dog', 'cat', 'bus')


def write_imagenet_tree(root: Path) -> None:
    """train/ and val/ class folders plus meta/{train,val}.txt."""
    rng = np.random.default_rng(0)
    (root / 'meta').mkdir(parents=True)
    for split, per_class in (('train', 2), ('val', 1)):
        lines = []
        for label, name in enumerate(CLASSES):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
                cv2.imwrite(str(folder / f'{i}.png'), img)
                lines.append(f'{name}/{i}.png {label}\n')
        (root / 'meta' / f'{split}.txt').write_text(''.join(lines))


def test_config_keeps_the_upstream_recipe():
    cfg = Config.fromfile(str(CONFIG))
    model = cfg.model
    assert model.type == 'mmsimmm.SimMinMax'
    assert model.task_model.backbone.type == 'ConvNeXt'
    assert model.task_model.train_cfg.augments[0].type == 'Mixup'
    assert cfg.optim_wrapper.task.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.task.optimizer.lr == 1e-4
    assert cfg.optim_wrapper.task.paramwise_cfg.norm_decay_mult == 0.0
    assert cfg.custom_hooks[0].type == 'EMAHook'
    assert cfg.custom_hooks[0].begin_iter == cfg.train_cfg.stages[0].iters
    assert cfg.load_from.endswith('convnext-tiny_32xb128_in1k_20221207-'
                                  '998cf3e9.pth')


@pytest.mark.slow
def test_three_iteration_cpu_run(tmp_path):
    allow_trusted_checkpoints()
    data_root = tmp_path / 'imagenet'
    write_imagenet_tree(data_root)
    cfg = Config.fromfile(str(CONFIG))
    tiny_arch = dict(
        _delete_=True, depths=[1, 1, 1, 1], channels=[8, 16, 32, 64])
    cfg.merge_from_dict({
        'work_dir': str(tmp_path / 'work'),
        'load_from': None,
        'model.task_model.backbone.arch': tiny_arch,
        'model.task_model.backbone.drop_path_rate': 0.0,
        'model.task_model.head.in_channels': 64,
        'model.task_model.head.num_classes': len(CLASSES),
        'model.adapt_head.projector.in_channels': 64,
        'data_preprocessor.num_classes': len(CLASSES),
        'train_dataloader.batch_size': 4,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        'train_dataloader.dataset.data_root': str(data_root),
        'train_dataloader.dataset.pipeline.1.scale': 32,
        'val_dataloader.batch_size': 4,
        'val_dataloader.num_workers': 0,
        'val_dataloader.persistent_workers': False,
        'val_dataloader.dataset.data_root': str(data_root),
        'val_dataloader.dataset.pipeline.1.scale': 36,
        'val_dataloader.dataset.pipeline.2.crop_size': 32,
        'val_evaluator.topk': (1, ),
        'train_cfg.stages': [
            dict(name='darken', iters=2),
            dict(name='adapt', iters=1)
        ],
        'param_scheduler.task': [
            dict(type='ConstantLR', factor=1.0, by_epoch=False)
        ],
        'param_scheduler.darkener': [
            dict(type='ConstantLR', factor=1.0, by_epoch=False)
        ],
        'custom_hooks.0.begin_iter': 2,  # = darken iters, as in the config
        'log_level': 'WARNING',
        'randomness.seed': 0,
    })
    cfg.pop('test_dataloader')
    cfg.pop('test_cfg')
    cfg.pop('test_evaluator')
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    darkener_before = {
        k: v.clone()
        for k, v in runner.model.darkener.state_dict().items()
    }
    runner.train()

    assert runner.train_loop.stage_history == ['darken', 'darken', 'adapt']
    checkpoint = torch.load(tmp_path / 'work' / 'iter_3.pth',
                            map_location='cpu')
    state = checkpoint['state_dict']
    # flat task keys (load into the plain ConvNeXt), darkener keys
    assert 'backbone.stages.3.0.depthwise_conv.weight' in state
    assert 'darkener.conv0.depthwise.weight' in state
    # the EMA started with the adapt stage, so the saved (EMA-swapped)
    # darkener is the trained one, not a lagging average of the darken
    # stage (with begin_iter=0 this comparison fails)
    trained = runner.model.darkener.state_dict()
    for key, value in trained.items():
        torch.testing.assert_close(state[f'darkener.{key}'], value)
    assert any(not torch.equal(darkener_before[k], trained[k])
               for k in trained)
    assert 'val/accuracy/top1' in runner.message_hub.log_scalars
