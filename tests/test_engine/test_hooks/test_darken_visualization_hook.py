# Copyright (c) mmsimmm contributors. All rights reserved.
"""DarkenVisualizationHook and its entry in SimMinMax configs."""
import json
import os.path as osp
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock

import cv2
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner import Runner

import mmsimmm  # noqa: F401
import mmsimmm.engine.hooks.darken_visualization_hook as vis_module
from mmsimmm.engine.hooks.darken_visualization_hook import (
    DarkenVisualizationHook,
)
from mmsimmm.registry import MODELS
from mmsimmm.testing import (
    ToyTaskDataset,
    tiny_classifier_cfg,
    tiny_recognizer_cfg,
    tiny_segmentor_cfg,
    toy_runner_cfg,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
# the official darkening losses (the base config is their one place)
DARKEN_HEAD = dict(
    type='mmsimmm.DarkenHead',
    losses=Config.fromfile(
        str(REPO_ROOT / 'configs/_base_/simminmax_default.py')).to_dict()
    ['simminmax_darken_losses'])
HOOK = dict(type='mmsimmm.DarkenVisualizationHook', interval=1,
            max_samples=2)


def simminmax(task_cfg: dict, scope: str, stage: str) -> torch.nn.Module:
    init_default_scope(scope)
    torch.manual_seed(0)
    model = MODELS.build(
        dict(type='mmsimmm.SimMinMax', darken_head=DARKEN_HEAD,
             task_model=task_cfg, adapt_head=None))
    model.set_stage(stage)
    return model


def fake_runner(model, iteration: int = 9) -> SimpleNamespace:
    return SimpleNamespace(model=model, iter=iteration,
                           visualizer=MagicMock())


def batch(toolkit: str, num: int = 3, **kwargs) -> dict:
    dataset = ToyTaskDataset(toolkit, length=num, **kwargs)
    return pseudo_collate([dataset[i] for i in range(num)])


def test_three_iteration_run_writes_grids_to_local_backend(tmp_path):
    model = dict(type='mmsimmm.SimMinMax', darken_head=DARKEN_HEAD,
                 task_model=tiny_classifier_cfg(),
                 adapt_head=None)
    cfg = toy_runner_cfg(
        str(tmp_path), model, 'mmpretrain',
        stages=[dict(name='darken', iters=2), dict(name='adapt', iters=1)],
        size=(24, 32))
    cfg['visualizer'] = dict(
        type='Visualizer', vis_backends=[dict(type='LocalVisBackend')])
    cfg['custom_hooks'] = [HOOK]
    # a fresh visualizer: a runner of the same second (the default
    # experiment name) would share its instance and save_dir
    cfg['experiment_name'] = f'vis_{tmp_path.name}'
    runner = Runner(**cfg)
    runner.train()

    vis_dirs = list(tmp_path.glob('*/vis_data'))
    assert len(vis_dirs) == 1
    images = sorted(p.name for p in (vis_dirs[0] / 'vis_image').iterdir())
    assert images == [f'simminmax_darkening_{i}.png' for i in (1, 2, 3)]
    grid = cv2.imread(str(vis_dirs[0] / 'vis_image' /
                          'simminmax_darkening_3.png'))
    assert grid.shape[0] > 300 and grid.shape[1] > 600  # 2 rows x 4 cols
    lines = (vis_dirs[0] / 'simminmax_exposure.json').read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r['step'] for r in records] == [1, 2, 3]
    # darken stage draws from (0, 0.5), adapt from (0, 0.2)
    assert [r['simminmax/exposure_high'] for r in records] == [0.5, 0.5, 0.2]
    for record in records:
        assert (record['simminmax/exposure_low']
                <= record['simminmax/exposure_drawn']
                <= record['simminmax/exposure_high'])
    # the separate file holds only the exposure scalars
    assert all(set(r) == {
        'simminmax/exposure_low', 'simminmax/exposure_high',
        'simminmax/exposure_drawn', 'step'
    } for r in records)


@pytest.mark.parametrize('stage', ['darken', 'adapt'])
def test_visualize_restores_darkener_mode(stage):
    model = simminmax(tiny_classifier_cfg(), 'mmpretrain', stage)
    model.darkener.train()
    modes = []
    original = model.darkener.forward

    def spy(*args, **kwargs):
        modes.append(model.darkener.training)
        return original(*args, **kwargs)

    model.darkener.forward = spy
    runner = fake_runner(model)
    hook = DarkenVisualizationHook(max_samples=2)
    grid = hook.visualize(runner, batch('mmpretrain'))
    assert modes == [False]  # drawn in eval mode
    assert model.darkener.training  # ... and restored
    assert grid.dtype.name == 'uint8' and grid.ndim == 3
    scalars = runner.visualizer.add_scalars.call_args
    assert scalars.kwargs['step'] == 10
    expected = dict(darken=0.5, adapt=0.2)[stage]
    assert scalars.args[0]['simminmax/exposure_high'] == expected


def test_day_images_are_rgb_in_unit_range():
    model = simminmax(tiny_classifier_cfg(), 'mmpretrain', 'adapt')
    data = batch('mmpretrain', num=3)
    day = DarkenVisualizationHook(max_samples=2).day_images(model, data)
    assert day.shape == (2, 3, 32, 32)
    # images are loaded as BGR; the preprocessor converts them to RGB
    bgr = data['inputs'][1].float() / 255
    torch.testing.assert_close(day[1], bgr.flip(0), atol=1e-4, rtol=0)


def test_visualize_takes_the_middle_frame_of_clips():
    model = simminmax(tiny_recognizer_cfg(), 'mmaction', 'adapt')
    hook = DarkenVisualizationHook(max_samples=2)
    data = batch('mmaction', num=3, clip_len=5, size=(16, 16))
    day = hook.day_images(model, data)
    assert day.shape == (2, 3, 16, 16)
    clip = data['inputs'][0][0].float() / 255  # (C, T, H, W), RGB
    torch.testing.assert_close(day[0], clip[:, 2], atol=1e-4, rtol=0)
    assert hook.visualize(fake_runner(model), data) is not None


def test_images_of_different_sizes_are_padded_for_seg_preprocessor(
        monkeypatch):
    # mmseg's SegDataPreProcessor pads only when training=True; with
    # training=False it asserts that all images have the same size
    messages = []
    monkeypatch.setattr(vis_module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    model = simminmax(tiny_segmentor_cfg(), 'mmseg', 'adapt')
    data = pseudo_collate([
        ToyTaskDataset('mmseg', size=(24, 32))[0],
        ToyTaskDataset('mmseg', size=(32, 16))[1]
    ])
    inputs = data['inputs']
    hook = DarkenVisualizationHook(interval=1, max_samples=2)
    day = hook.day_images(model, data)
    assert messages == [], messages  # no "preprocessor failed" warning
    assert day.shape == (2, 3, 32, 32)
    # the images sit top-left (BGR -> RGB), zeros at the bottom/right
    torch.testing.assert_close(
        day[0, :, :24], inputs[0].float().flip(0) / 255, atol=1e-4, rtol=0)
    torch.testing.assert_close(
        day[1, :, :, :16], inputs[1].float().flip(0) / 255, atol=1e-4,
        rtol=0)
    assert day[0, :, 24:].abs().max() < 1e-4
    assert day[1, :, :, 16:].abs().max() < 1e-4
    runner = fake_runner(model)
    hook.after_train_iter(runner, 0, data_batch=data)
    assert messages == [] and hook.skip_reason is None
    runner.visualizer.add_image.assert_called_once()
    assert runner.visualizer.add_image.call_args.args[1].ndim == 3
    # the training batch itself is not padded
    assert data['inputs'] is inputs and len(inputs) == 2
    assert [tuple(x.shape) for x in inputs] == [(3, 24, 32), (3, 32, 16)]


def test_pad_to_common_size_pads_clips_and_leaves_even_batches():
    clips = [torch.ones(1, 3, 4, 8, 6), torch.ones(1, 3, 4, 5, 10)]
    data = dict(inputs=clips, data_samples=['a', 'b'])
    padded = vis_module._pad_to_common_size(data)
    assert [tuple(x.shape) for x in padded['inputs']
            ] == [(1, 3, 4, 8, 10)] * 2
    assert padded['inputs'][1][..., 5:, :].sum() == 0
    assert padded['data_samples'] is data['data_samples']
    assert data['inputs'] is clips and clips[0].shape[-1] == 6
    even = dict(inputs=[torch.ones(3, 8, 8)] * 2)
    stacked = dict(inputs=torch.ones(2, 3, 8, 8))
    for batch_ in (even, stacked, [torch.ones(3, 8, 8)]):
        assert vis_module._pad_to_common_size(batch_) is batch_


class TuplePreprocessor(torch.nn.Module):
    """Like a retrieval preprocessor: inputs stay a list of tuples."""

    def forward(self, data: dict, training: bool = False) -> dict:
        if not data['inputs']:
            raise KeyError('empty batch')
        return dict(inputs=[tuple(pair) for pair in data['inputs']])


@pytest.mark.parametrize('inputs,reason',
                         [([(torch.zeros(3, 8, 8), ) * 2], 'a list'),
                          ([], 'preprocessor failed')])
def test_unsupported_batches_are_skipped_with_one_warning(
        monkeypatch, inputs, reason):
    messages = []
    monkeypatch.setattr(vis_module, 'print_log',
                        lambda msg, **kwargs: messages.append(msg))
    model = simminmax(tiny_classifier_cfg(), 'mmpretrain', 'adapt')
    model.data_preprocessor = TuplePreprocessor()
    hook = DarkenVisualizationHook(interval=1)
    runner = fake_runner(model)
    for _ in range(3):
        hook.after_train_iter(runner, 0, data_batch=dict(inputs=inputs))
    assert len(messages) == 1 and reason in messages[0]
    assert hook.skip_reason is not None
    runner.visualizer.add_image.assert_not_called()


def test_hook_needs_a_simminmax_model():
    init_default_scope('mmpretrain')
    plain = MODELS.build(tiny_classifier_cfg())
    with pytest.raises(TypeError, match='needs a SimMinMax model'):
        DarkenVisualizationHook().before_run(fake_runner(plain))
    with pytest.raises(ValueError, match='interval'):
        DarkenVisualizationHook(interval=0)


def test_simmm_configs_list_the_hook():
    """SimMinMax configs get the hook from `simminmax_hooks`, as an ordinary
    `custom_hooks` entry (nothing registers it behind the config)."""
    base = Config.fromfile(
        str(REPO_ROOT / 'configs/_base_/simminmax_default.py'))
    assert dict(type='mmsimmm.DarkenVisualizationHook',
                interval=500) in base.simminmax_hooks
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/demo/simminmax.py'))
    assert cfg.custom_hooks == base.simminmax_hooks
    assert 'simmm_visualization' not in cfg


# ----------------------------------------------------------------------
# config design: a named list (`simminmax_hooks`) that each leaf config puts
# into its `custom_hooks`, after the task config's own
UPSTREAM_CONFIGS = [
    'mmpretrain::resnet/resnet18_8xb32_in1k.py',
    'mmpretrain::convnext/convnext-tiny_32xb128_in1k.py',
    'mmseg::pspnet/pspnet_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'mmseg::deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py',
    'mmaction::recognition/i3d/'
    'i3d_imagenet-pretrained-r50_8xb8-32x2x1-100e_kinetics400-rgb.py',
]
LOCAL_CONFIGS = [
    'configs/classification/resnet18_1xb32_codan.py',
    'configs/segmentation/refinenet_r101_2xb2-100e_cityscapes-384x768.py',
    'configs/action_recognition/i3d_k400-pretrained-r50_3xb16-16x2x1-10e_'
    'normallight-arid.py',
    'configs/place_recognition/gem_resnet101_1xb5-5e_sfm120k-362px.py',
]
# upstream configs that define `custom_hooks` themselves
WITH_CUSTOM_HOOKS = ('convnext', 'gem_resnet101', 'normallight-arid')


def _write_base(tmp_path: Path, text: str) -> str:
    """A second base holding only ``text`` (the key under test)."""
    path = tmp_path / 'simmm_base.py'
    path.write_text(text + '\n')
    return str(path)


def _leaf(tmp_path: Path, task_cfg: str, base: str, body: str = '') -> Config:
    if not task_cfg.count('::'):
        task_cfg = str(REPO_ROOT / task_cfg)
    leaf = tmp_path / 'leaf.py'
    leaf.write_text(f'_base_ = [{task_cfg!r}, {base!r}]\n' + body)
    return Config.fromfile(str(leaf))


@pytest.mark.parametrize('task_cfg', UPSTREAM_CONFIGS + LOCAL_CONFIGS)
def test_simmm_hooks_never_clash_with_task_configs(tmp_path, task_cfg):
    if not task_cfg.count('::') and not osp.isfile(REPO_ROOT / task_cfg):
        pytest.skip(f'{task_cfg} is not in this checkout')
    base = _write_base(
        tmp_path, 'simminmax_hooks = [dict('
        "type='mmsimmm.DarkenVisualizationHook', interval=500)]")
    task = _leaf(tmp_path, task_cfg, base)
    task_hooks = list(task.get('custom_hooks', []))
    cfg = _leaf(
        tmp_path, task_cfg, base, 'custom_hooks = [*_base_.get('
        "'custom_hooks', []), *_base_.simminmax_hooks]\n")
    assert cfg.custom_hooks == task_hooks + [
        dict(type='mmsimmm.DarkenVisualizationHook', interval=500)
    ]
    # a base-level `custom_hooks` would break every config that has its own
    hooks = "custom_hooks = [dict(type='mmsimmm.DarkenVisualizationHook')]"
    if any(name in task_cfg for name in WITH_CUSTOM_HOOKS):
        assert task_hooks
        with pytest.raises(KeyError, match='Duplicate key'):
            _leaf(tmp_path, task_cfg, _write_base(tmp_path, hooks))
