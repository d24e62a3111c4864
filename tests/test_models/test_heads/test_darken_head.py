# Copyright (c) mmsimmm contributors. All rights reserved.
"""DarkenHead against a plain computation of the darkening-stage losses."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mmsimmm  # noqa: F401
from mmsimmm.models.utils import PixelSpace
from mmsimmm.registry import MODELS
from mmsimmm.testing import tiny_classifier_cfg

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
LOSSES = Config.fromfile(
    osp.join(REPO_ROOT, 'configs/_base_/simminmax_default.py')).to_dict(
    )['simminmax_darken_losses']


def parts(**head_kwargs):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    task = MODELS.build(tiny_classifier_cfg()).eval()
    darkener = MODELS.build(
        dict(type='mmsimmm.DarkeningModule', num_features=8))
    head = MODELS.build(
        dict(dict(type='mmsimmm.DarkenHead', losses=LOSSES), **head_kwargs))
    head.bind(task)
    return task, darkener, head, PixelSpace(task.data_preprocessor)


@pytest.mark.parametrize('normalize', [False, True])
def test_losses_equal_a_plain_computation(normalize):
    task, darkener, head, pixels = parts(normalize_features=normalize)
    inputs = torch.randn(3, 3, 32, 32)
    levels = torch.tensor([0.1, 0.3, 0.45])
    rgb = head.prepare(inputs, pixels)
    losses = head.loss(rgb, levels, darkener, task, pixels)

    # by hand: clamp to [0, 1], darken, backbone features of both views
    rgb_ = pixels.to_unit_rgb(inputs).clamp(0, 1)
    torch.testing.assert_close(rgb, rgb_)
    dark, curve, down = darkener(rgb_, levels, return_maps=True)
    feed = pixels.from_unit_rgb if normalize else pixels.flip_channels
    day_feats = list(task.backbone(feed(rgb_)))
    dark_feats = list(task.backbone(feed(dark)))
    expected = {
        'darken.loss_similarity':
        MODELS.build(LOSSES['similarity'])(day_feats, dark_feats),
        'darken.loss_exposure': MODELS.build(LOSSES['exposure'])(dark, levels),
        'darken.loss_color': MODELS.build(LOSSES['color'])(dark),
        'darken.loss_tv': MODELS.build(LOSSES['tv'])(curve),
        'darken.loss_down_scale': MODELS.build(LOSSES['down_scale'])(down),
    }
    assert set(losses) == set(expected)
    for key, value in expected.items():
        torch.testing.assert_close(losses[key], value, rtol=0, atol=1e-6)
    # gradients reach D only through the dark view
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in darkener.parameters())


def test_prepare_clamps_and_resizes_and_none_drops_a_loss():
    task, darkener, head, pixels = parts(
        input_size=(16, 24), max_value=0.8,
        losses=dict(LOSSES, color=None, tv=None))
    rgb = head.prepare(torch.randn(2, 3, 32, 32) * 3, pixels)
    assert rgb.shape == (2, 3, 16, 24) and rgb.max() <= 0.8
    losses = head.loss(rgb, torch.tensor([0.2, 0.4]), darkener, task, pixels)
    assert set(losses) == {'darken.loss_similarity', 'darken.loss_exposure',
                           'darken.loss_down_scale'}


def test_separate_feature_model_stays_frozen_in_eval():
    task, darkener, head, pixels = parts(
        features=dict(modules=['layer4']),
        feature_model=dict(type='mmpretrain.ResNet', depth=18,
                           base_channels=8, stem_channels=8,
                           out_indices=(3, )))
    head.train()
    assert not head.feature_model.training
    assert not any(p.requires_grad for p in head.feature_model.parameters())
    rgb = head.prepare(torch.randn(2, 3, 32, 32), pixels)
    losses = head.loss(rgb, torch.tensor([0.2, 0.4]), darkener, task, pixels)
    assert torch.isfinite(losses['darken.loss_similarity'])


def test_settings_are_validated():
    with pytest.raises(KeyError, match='unknown darken loss'):
        MODELS.build(dict(type='mmsimmm.DarkenHead', losses=dict(blur=None)))
    with pytest.raises(ValueError, match='max_value'):
        MODELS.build(
            dict(type='mmsimmm.DarkenHead', losses=LOSSES, max_value=1.5))
    head = MODELS.build(dict(type='mmsimmm.DarkenHead', losses=LOSSES))
    with pytest.raises(RuntimeError, match='bind'):
        head.loss(torch.rand(1, 3, 8, 8), torch.rand(1), None, None, None)
