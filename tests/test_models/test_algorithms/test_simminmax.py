# Copyright (c) mmsimmm contributors. All rights reserved.
import copy

import pytest
import torch
from mmengine.registry import init_default_scope
from mmengine.structures import PixelData
from torch.utils.data import default_collate  # noqa: F401

import mmsimmm  # noqa: F401  (compat patches before mmaction)
from mmsimmm.registry import MODELS
from mmsimmm.testing import (
    ToyTaskDataset,
    tiny_classifier_cfg,
    tiny_recognizer_cfg,
    tiny_segmentor_cfg,
)

TOOLKITS = {
    'mmpretrain': (tiny_classifier_cfg, ['neck'], 64),
    'mmseg': (tiny_segmentor_cfg, ['backbone'], [8, 16, 32, 64]),
    'mmaction': (tiny_recognizer_cfg, ['backbone'], 64),
}


def simmm_cfg(toolkit: str = 'mmpretrain', **overrides) -> dict:
    task_cfg, byol_modules, channels = TOOLKITS[toolkit]
    multi = isinstance(channels, list)
    cfg = dict(
        type='mmsimmm.SimMinMax',
        task_model=task_cfg(),
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
        byol=dict(
            features=dict(modules=byol_modules),
            projector=dict(
                type='mmsimmm.BYOLMLP',
                in_channels=channels,
                hidden_channels=16,
                out_channels=16,
                conv_channels=8 if multi else None),
            predictor=dict(
                type='mmsimmm.BYOLMLP',
                in_channels=[16] * len(channels) if multi else 16,
                hidden_channels=16,
                out_channels=16)))
    cfg.update(overrides)
    return cfg


def build(toolkit: str = 'mmpretrain', **overrides):
    init_default_scope(toolkit)
    torch.manual_seed(0)
    model = MODELS.build(simmm_cfg(toolkit, **overrides))
    model.init_weights()
    return model


def batch(toolkit: str = 'mmpretrain', size=(32, 32), n: int = 4):
    dataset = ToyTaskDataset(toolkit, length=n, size=size)
    items = [dataset[i] for i in range(n)]
    return dict(
        inputs=[item['inputs'] for item in items],
        data_samples=[item['data_samples'] for item in items])


def preprocess(model, toolkit='mmpretrain', **kwargs):
    return model.data_preprocessor(batch(toolkit, **kwargs), True)


def step_grads(model, data):
    model.zero_grad(set_to_none=True)
    losses = model(**data, mode='loss')
    total, _ = model.parse_losses(losses)
    total.backward()
    return losses


def grad_owners(model):
    owners = set()
    for name, param in model.named_parameters():
        if param.grad is not None and param.grad.abs().sum() > 0:
            owners.add(name.split('.')[0])
    return owners


def test_loss_without_stage_raises():
    model = build()
    data = preprocess(model)
    with pytest.raises(RuntimeError, match='set_stage'):
        model(**data, mode='loss')


def test_unknown_stage_raises():
    model = build()
    with pytest.raises(ValueError, match="unknown stage 'night'"):
        model.set_stage('night')


@pytest.mark.parametrize('bad', [(-0.1, 0.5), (0.6, 0.2), (0.0, 1.5)])
def test_bad_exposure_range(bad):
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match='darken_exposure_range'):
        MODELS.build(simmm_cfg(darken_exposure_range=bad))


def test_missing_feature_layer():
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match='not_a_layer'):
        MODELS.build(
            simmm_cfg(darken_features=dict(modules=['not_a_layer'])))


def test_darken_stage_grads_and_frozen_bn():
    model = build()
    model.set_stage('darken')
    model.train()
    bn = model.task_model.backbone.bn1
    before = bn.running_mean.clone()
    data = preprocess(model)
    losses = step_grads(model, data)
    assert set(losses) == {
        'darken.loss_similarity', 'darken.loss_exposure',
        'darken.loss_color', 'darken.loss_tv', 'darken.loss_down_scale'
    }
    assert grad_owners(model) == {'darkener'}
    assert not model.task_model.training
    assert torch.equal(bn.running_mean, before)
    # the EMA target does not move while D trains
    assert int(model.byol_target.steps) == 0


def test_adapt_stage_grads_and_ema():
    model = build()
    model.set_stage('adapt')
    model.train()
    assert not model.darkener.training and model.task_model.training
    data = preprocess(model)
    losses = step_grads(model, data)
    assert 'byol.loss' in losses
    assert {'task.day.loss', 'task.dark.loss'} <= set(losses)
    assert grad_owners(model) == {
        'task_model', 'byol_projector', 'byol_predictor'
    }
    # the first update copies the online weights; later ones average them
    target = model.byol_target.module.encoder
    online = model.task_model
    torch.testing.assert_close(target.backbone.conv1.weight,
                               online.backbone.conv1.weight)
    with torch.no_grad():
        online.backbone.conv1.weight.add_(1.0)
    step_grads(model, data)
    expected = online.backbone.conv1.weight - 0.99 * 1.0
    torch.testing.assert_close(
        target.backbone.conv1.weight, expected, rtol=1e-5, atol=1e-5)
    assert int(model.byol_target.steps) == 2


def test_user_frozen_params_stay_frozen():
    model = build(task_model=dict(
        tiny_classifier_cfg(),
        backbone=dict(tiny_classifier_cfg()['backbone'], frozen_stages=1)))
    model.set_stage('darken')
    model.set_stage('adapt')
    assert not model.task_model.backbone.conv1.weight.requires_grad
    assert model.task_model.backbone.layer4[0].conv1.weight.requires_grad


def test_predict_delegates_to_task_model():
    model = build()
    model.eval()
    data = model.data_preprocessor(batch(), False)
    out = model(**data, mode='predict')
    ref = model.task_model(**data, mode='predict')
    torch.testing.assert_close(out[0].pred_score, ref[0].pred_score)


def test_adapt_darkens_with_exposure_in_range():
    model = build()
    model.eval()
    data = model.data_preprocessor(batch(), False)
    dark = model.darken_batch(data['inputs'])
    assert dark.shape == data['inputs'].shape
    rgb = model.pixel_space.to_unit_rgb(dark)
    assert rgb.min() >= -1e-5 and rgb.max() <= 1 + 1e-5


@pytest.mark.parametrize('toolkit', ['mmpretrain', 'mmseg', 'mmaction'])
def test_both_stages_run_for_each_toolkit(toolkit):
    overrides = {}
    if toolkit == 'mmaction':
        overrides['darken_losses'] = dict(
            similarity=dict(
                type='mmsimmm.FeatureSimilarityLoss', pool=True),
            exposure=dict(type='mmsimmm.ExposureControlLoss'),
            color=dict(type='mmsimmm.ColorConstancyLoss'),
            tv=dict(type='mmsimmm.CurveTVLoss'),
            down_scale=dict(type='mmsimmm.DownScaleLoss'))
    model = build(toolkit, **overrides)
    data = preprocess(model, toolkit)
    model.set_stage('darken')
    model.train()
    losses = step_grads(model, data)
    assert all(torch.isfinite(v) for v in losses.values())
    assert grad_owners(model) == {'darkener'}
    model.set_stage('adapt')
    model.train()
    losses = step_grads(model, data)
    assert 'byol.loss' in losses
    assert any(k.startswith('task.dark.') for k in losses)
    assert 'darkener' not in grad_owners(model)


@pytest.mark.parametrize('toolkit', ['mmpretrain', 'mmseg', 'mmaction'])
def test_checkpoint_round_trip(toolkit):
    model = build(toolkit)
    state = model.state_dict()
    task_cfg = TOOLKITS[toolkit][0]()
    init_default_scope(toolkit)
    plain = MODELS.build(task_cfg)
    plain_keys = set(plain.state_dict())
    # every task key is stored flat, exactly as the plain model names it
    assert plain_keys <= set(state)
    assert not any(k.startswith('task_model.') for k in state)
    result = plain.load_state_dict(state, strict=False)
    assert result.missing_keys == []
    assert all(k.startswith(('darkener.', 'byol_'))
               for k in result.unexpected_keys)
    plain.load_state_dict({k: state[k] for k in plain_keys}, strict=True)
    # and back: a plain upstream checkpoint initialises the task model
    fresh = build(toolkit)
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.5)
    result = fresh.load_state_dict(plain.state_dict(), strict=False)
    assert not [k for k in result.missing_keys if k.startswith('task_model')]
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(fresh.task_model.state_dict()[key], value)
    # a full SimMinMax round trip is strict
    again = build(toolkit)
    again.load_state_dict(copy.deepcopy(fresh.state_dict()), strict=True)


def test_seg_label_ignore_region_kept():
    model = build('mmseg')
    data = preprocess(model, 'mmseg')
    sample = data['data_samples'][0]
    assert isinstance(sample.gt_sem_seg, PixelData)
    assert (sample.gt_sem_seg.data == 255).any()


def test_video_exposure_is_constant_within_a_clip():
    model = build('mmaction')
    model.eval()
    clip = torch.rand(2, 1, 3, 1, 16, 16).expand(-1, -1, -1, 4, -1, -1)
    inputs = model.pixel_space.from_unit_rgb(clip.contiguous())
    dark = model.darken_batch(inputs)
    # identical frames stay identical: one level and one noise map per clip
    torch.testing.assert_close(dark, dark[..., :1, :, :].expand_as(dark))
    assert not torch.allclose(dark[0], dark[1])


@pytest.mark.parametrize('toolkit', ['mmpretrain', 'mmseg', 'mmaction'])
def test_joint_views_equal_separate_views_without_batch_statistics(toolkit):
    """One day+dark batch gives the losses of two views when BN is frozen.

    In eval mode no layer depends on batch statistics, so the joint batch
    must reproduce the separate views' task-loss sum and BYOL loss; in
    train mode BN normalises the joint batch over both domains.
    """
    separate, joint = build(toolkit), build(toolkit, joint_views=True)
    data = preprocess(separate, toolkit)
    results = []
    for model in (separate, joint):
        model.set_stage('adapt')
        model.eval()  # no batch statistics anywhere (BN, BN1d)
        with torch.no_grad():
            losses = model(**data, mode='loss')
        task = sum(v for k, v in losses.items()
                   if k.startswith('task.') and 'loss' in k)
        results.append((task, losses['byol.loss'], losses))
    (task_a, byol_a, losses_a), (task_b, byol_b, losses_b) = results
    assert any(k.startswith('task.day.') for k in losses_a)
    assert any(k.startswith('task.joint.') for k in losses_b)
    assert not any(k.startswith('task.day.') for k in losses_b)
    torch.testing.assert_close(task_b, task_a, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(byol_b, byol_a, rtol=1e-5, atol=1e-6)
    # training mode: one forward over both views, gradients reach the task
    joint.train()
    step_grads(joint, data)
    assert {'task_model', 'byol_projector',
            'byol_predictor'} <= grad_owners(joint)
    with pytest.raises(ValueError, match='equal task_loss_weights'):
        build(toolkit, joint_views=True,
              task_loss_weights=dict(day=1.0, dark=0.5))


@pytest.mark.parametrize('format_shape', ['NCHW', 'MIX2d3d'])
def test_2d_action_recognizers_are_refused_at_build(format_shape):
    """TSN/TSM inputs (N, S, C, H, W) would be misread as (N, C, T, H, W)."""
    task = tiny_recognizer_cfg()
    task['data_preprocessor']['format_shape'] = format_shape
    with pytest.raises(ValueError) as error:
        build('mmaction', task_model=task)
    assert f"format_shape={format_shape!r}" in str(error.value)
    assert 'supports 3D action recognizers' in str(error.value)
