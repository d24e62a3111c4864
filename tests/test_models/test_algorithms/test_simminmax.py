# Copyright (c) mmsimmm contributors. All rights reserved.
import copy

import pytest
import torch
from mmengine.config import Config
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


REPO_ROOT = __file__.rsplit('/tests/', 1)[0]
# the official darkening losses: the base config is their one place
DARKEN_LOSSES = Config.fromfile(
    f'{REPO_ROOT}/configs/_base_/simminmax_default.py'
).to_dict()['simminmax_darken_losses']


def simmm_cfg(toolkit: str = 'mmpretrain',
              darken: dict = {},
              exposure: dict = {},
              **overrides) -> dict:
    """A tiny SimMinMax config; ``darken``/``exposure`` update the parts."""
    task_cfg, byol_modules, channels = TOOLKITS[toolkit]
    multi = isinstance(channels, list)
    cfg = dict(
        type='mmsimmm.SimMinMax',
        task_model=task_cfg(),
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
        darken_head=dict(
            dict(type='mmsimmm.DarkenHead', losses=DARKEN_LOSSES), **darken),
        exposure=dict(type='mmsimmm.ExposureSampler', **exposure),
        adapt_head=dict(
            type='mmsimmm.BYOLAdaptHead',
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
    with pytest.raises(ValueError, match='darken_range'):
        MODELS.build(simmm_cfg(exposure=dict(darken_range=bad)))


def test_missing_feature_layer():
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match='not_a_layer'):
        MODELS.build(
            simmm_cfg(darken=dict(features=dict(modules=['not_a_layer']))))


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
    assert int(model.adapt_head.target.steps) == 0


def test_adapt_stage_grads_and_ema():
    model = build()
    model.set_stage('adapt')
    model.train()
    assert not model.darkener.training and model.task_model.training
    data = preprocess(model)
    losses = step_grads(model, data)
    assert 'byol.loss' in losses
    assert {'task.day.loss', 'task.dark.loss'} <= set(losses)
    assert grad_owners(model) == {'task_model', 'adapt_head'}
    # the first update copies the online weights; later ones average them
    target = model.adapt_head.target.module.encoder
    online = model.task_model
    torch.testing.assert_close(target.backbone.conv1.weight,
                               online.backbone.conv1.weight)
    with torch.no_grad():
        online.backbone.conv1.weight.add_(1.0)
    step_grads(model, data)
    expected = online.backbone.conv1.weight - 0.99 * 1.0
    torch.testing.assert_close(
        target.backbone.conv1.weight, expected, rtol=1e-5, atol=1e-5)
    assert int(model.adapt_head.target.steps) == 2


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
        overrides['darken'] = dict(losses=dict(
            similarity=dict(
                type='mmsimmm.FeatureSimilarityLoss', pool=True),
            exposure=dict(type='mmsimmm.ExposureControlLoss'),
            color=dict(type='mmsimmm.ColorConstancyLoss'),
            tv=dict(type='mmsimmm.CurveTVLoss'),
            down_scale=dict(type='mmsimmm.DownScaleLoss')))
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
    assert all(k.startswith(('darkener.', 'adapt_head.'))
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
    # float noise of batch-size-dependent conv kernels: ~1e-5 relative
    torch.testing.assert_close(byol_b, byol_a, rtol=1e-4, atol=1e-6)
    # training mode: one forward over both views, gradients reach the task
    joint.train()
    step_grads(joint, data)
    assert {'task_model', 'adapt_head'} <= grad_owners(joint)
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


# ----------------------------------------------------------------------
# two-view batches (second_inputs), issue #16
def two_view_batch(toolkit='mmpretrain', n=4, size=(32, 32)):
    """A collated two-view batch: the second view is another toy image."""
    data = batch(toolkit, size=size, n=n)
    other = ToyTaskDataset(toolkit, length=n, size=size, seed=1)
    data['second_inputs'] = [other[i]['inputs'] for i in range(n)]
    return data


def record_task_inputs(model):
    """Record the images each task-loss call of the adaptation stage gets."""
    seen = []
    loss = model.task_model.loss

    def recording(images, samples):
        seen.append(images.detach().clone())
        return loss(images, samples)

    model.task_model.loss = recording
    return seen


@pytest.mark.parametrize('toolkit', ['mmpretrain', 'mmseg', 'mmaction'])
def test_second_inputs_preprocessed_like_inputs(toolkit):
    model = build(toolkit)
    data = two_view_batch(toolkit)
    out = model.data_preprocessor(data, True)
    # the same images as a one-view batch give the same tensor
    ref = model.data_preprocessor(
        dict(inputs=data['second_inputs'],
             data_samples=batch(toolkit)['data_samples']), True)
    torch.testing.assert_close(out['second_inputs'], ref['inputs'])
    assert out['second_inputs'].shape == out['inputs'].shape
    # without second_inputs the task preprocessor's output is unchanged
    plain = model.task_model.data_preprocessor(batch(toolkit), True)
    wrapped = model.data_preprocessor(batch(toolkit), True)
    assert set(wrapped) == set(plain)
    torch.testing.assert_close(wrapped['inputs'], plain['inputs'])


def test_seg_second_view_padded_like_day_and_gt_padded_once():
    model = build('mmseg')  # size_divisor=8
    data = two_view_batch('mmseg', size=(30, 27))
    out = model.data_preprocessor(data, True)
    assert out['inputs'].shape[-2:] == (32, 32)
    assert out['second_inputs'].shape == out['inputs'].shape
    for sample in out['data_samples']:
        # padded once by the day view (30x27 -> 32x32), not twice
        assert sample.gt_sem_seg.data.shape[-2:] == (32, 32)
        assert tuple(sample.padding_size) == (0, 5, 0, 2)
    # both views: normalised image, then the same pad_val border
    for view in (out['inputs'], out['second_inputs']):
        assert (view[:, :, 30:, :] == 0).all()
        assert (view[:, :, :, 27:] == 0).all()
        assert (view[:, :, :30, :27] != 0).float().mean() > 0.99


def test_two_view_batch_refuses_batch_augments():
    task = tiny_classifier_cfg()
    task['data_preprocessor']['batch_augments'] = dict(
        augments=dict(type='Mixup', alpha=1.0))
    model = build(task_model=task)
    with pytest.raises(ValueError, match='batch_augments'):
        model.data_preprocessor(two_view_batch(), True)


def test_second_view_darken_darkens_the_second_view():
    """The dark view is D(second view), not D(day view)."""
    model = build()
    model.sampling_seed = 3
    model.set_stage('adapt')
    model.train()
    data = model.data_preprocessor(two_view_batch(), True)
    assert not torch.equal(data['inputs'], data['second_inputs'])
    seen = record_task_inputs(model)
    model(**data, mode='loss')
    day, dark = seen
    torch.testing.assert_close(day, data['inputs'])
    device = data['inputs'].device
    generator = model.exposure.generator(device, 'darken_levels')
    expected = model.darken_batch(data['second_inputs'], generator)
    torch.testing.assert_close(dark, expected)
    generator = model.exposure.generator(device, 'darken_levels')
    assert not torch.allclose(dark,
                              model.darken_batch(data['inputs'], generator))


@pytest.mark.parametrize('toolkit', ['mmpretrain', 'mmseg'])
def test_second_view_as_is_is_not_darkened(toolkit):
    """An offline dark copy reaches the task model unchanged; D is idle."""
    model = build(toolkit, second_view='as_is')
    model.set_stage('adapt')
    model.train()
    data = model.data_preprocessor(two_view_batch(toolkit), True)

    def no_darkening(*args, **kwargs):
        raise AssertionError('D must not run on an offline dark copy')

    model.darkener.forward = no_darkening
    seen = record_task_inputs(model)
    losses = model(**data, mode='loss')
    assert 'byol.loss' in losses
    assert torch.equal(seen[1], data['second_inputs'])
    # a one-view batch is an error with as_is: nothing to use as dark view
    with pytest.raises(ValueError, match="second_view='as_is'"):
        model(**model.data_preprocessor(batch(toolkit), True), mode='loss')


def test_unmarked_second_view_is_accepted_with_one_warning(monkeypatch):
    """A second view no mmsimmm transform marked cannot be checked: it is
    used (here: darkened), with a single warning for the whole run."""
    warnings = []
    monkeypatch.setattr('mmsimmm.models.algorithms.checks.print_log',
                        lambda msg, **kwargs: warnings.append(msg))
    model = build()
    model.set_stage('adapt')
    model.train()
    data = model.data_preprocessor(two_view_batch(), True)
    assert all(s.get('second_view_origin') is None
               for s in data['data_samples'])
    model(**data, mode='loss')
    model(**data, mode='loss')
    assert len(warnings) == 1
    assert 'second_view_origin' in warnings[0]
    assert "second_view='darken'" in warnings[0]


def test_second_view_is_validated():
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match='second_view'):
        MODELS.build(simmm_cfg(second_view='dark'))


def test_darken_stage_ignores_the_second_view():
    model = build()
    model.sampling_seed = 0
    model.set_stage('darken')
    model.train()
    data = model.data_preprocessor(two_view_batch(), True)
    with torch.no_grad():
        two = model(**data, mode='loss')
        data.pop('second_inputs')
        one = model(**data, mode='loss')
    for key in one:
        torch.testing.assert_close(two[key], one[key])


def test_darken_exposure_per_frame():
    levels_seen = []
    for per_frame in (False, True):
        model = build(
            'mmaction',
            darken=dict(
                exposure_per_frame=per_frame,
                losses=dict(
                    similarity=dict(
                        type='mmsimmm.FeatureSimilarityLoss', pool=True),
                    exposure=dict(type='mmsimmm.ExposureControlLoss'))))
        model.set_stage('darken')
        model.train()

        def recording(img, exposure, forward=model.darkener.forward,
                      **kwargs):
            levels_seen.append((tuple(img.shape), exposure.clone()))
            return forward(img, exposure, **kwargs)

        model.darkener.forward = recording
        data = preprocess(model, 'mmaction', n=2)
        model(**data, mode='loss')
    (clip_shape, per_clip), (frame_shape, per_frame) = levels_seen
    assert clip_shape == (2, 1, 3, 4, 32, 32) and per_clip.shape == (2, 1)
    # frames of the two clips, each frame with its own level
    assert frame_shape == (8, 3, 32, 32) and per_frame.shape == (8, )
    assert len(set(per_frame.tolist())) == 8
    assert 0 <= per_frame.min() and per_frame.max() <= 0.5


# ----------------------------------------------------------------------
# BYOL target order and head init, issue #16
@pytest.mark.parametrize('order', ['before_use', 'after_use'])
def test_byol_target_update_order(order):
    """The target used at step t has seen the online weights of t (update
    before use) or only those up to t-1 (after use: a one-step lag)."""
    cfg = simmm_cfg()
    cfg['adapt_head']['target_update'] = order
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.set_stage('adapt')
    model.train()
    used = []
    embeddings = model.adapt_head._target_embeddings

    def recording(images):
        used.append(
            model.adapt_head.target.module.encoder.backbone.conv1.weight.clone())
        return embeddings(images)

    model.adapt_head._target_embeddings = recording
    online = model.task_model.backbone.conv1.weight
    with torch.no_grad():  # e.g. load_from: the target must copy these
        online.add_(0.5)
    data = preprocess(model)
    weights = []
    for _ in range(3):
        weights.append(online.detach().clone())
        model(**data, mode='loss')
        with torch.no_grad():
            online.add_(1.0)  # an optimiser step
    used = used[::2]  # day and dark embeddings use the same target
    torch.testing.assert_close(used[0], weights[0])  # fresh target = online
    if order == 'before_use':
        expected = 0.99 * weights[0] + 0.01 * weights[1]
    else:  # the update with weights[1] comes after its use
        expected = weights[0]
    torch.testing.assert_close(used[1], expected)
    assert int(model.adapt_head.target.steps) == 3


def test_byol_target_update_is_validated():
    cfg = simmm_cfg()
    cfg['adapt_head']['target_update'] = 'never'
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match='target_update'):
        MODELS.build(cfg)


def test_byol_head_init_official():
    """Projector: Kaiming-normal fan_in weights (std sqrt(2/fan_in)),
    PyTorch default biases U(+-1/sqrt(fan_in)); predictor: PyTorch
    defaults (weights U(+-1/sqrt(fan_in)) too)."""
    torch.manual_seed(0)
    projector = MODELS.build(
        dict(type='mmsimmm.BYOLMLP', in_channels=[512, 256],
             hidden_channels=256, out_channels=256, conv_channels=64))
    predictor = MODELS.build(
        dict(type='mmsimmm.BYOLMLP', in_channels=256, hidden_channels=256,
             out_channels=256, weight_init='pytorch'))
    projector.init_weights()
    predictor.init_weights()
    for level in projector.levels:
        layers = [level.fc1, level.fc2, level.conv[0]]
        for layer in layers:
            fan_in = layer.weight[0].numel()
            std = (2 / fan_in)**0.5
            assert abs(layer.weight.std().item() / std - 1) < 0.05
            bound = fan_in**-0.5
            assert layer.bias.abs().max() <= bound
            # not zero, spread over the default range
            assert layer.bias.abs().max() > 0.8 * bound
    for layer in (predictor.levels[0].fc1, predictor.levels[0].fc2):
        bound = layer.weight.shape[1]**-0.5
        assert layer.weight.abs().max() <= bound
        assert abs(layer.weight.std().item() / (bound / 3**0.5) - 1) < 0.05
        assert layer.bias.abs().max() > 0.8 * bound
    with pytest.raises(ValueError, match='weight_init'):
        MODELS.build(dict(type='mmsimmm.BYOLMLP', in_channels=8,
                          weight_init='xavier'))
