# Copyright (c) mmsimmm contributors. All rights reserved.
"""BYOLAdaptHead against a plain BYOL with MMEngine's EMA."""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import ExponentialMovingAverage
from mmengine.registry import init_default_scope

import mmsimmm  # noqa: F401
from mmsimmm.registry import MODELS
from mmsimmm.testing import tiny_classifier_cfg


def head_cfg(**kwargs):
    cfg = dict(
        type='mmsimmm.BYOLAdaptHead',
        features=dict(modules=['neck']),
        projector=dict(type='mmsimmm.BYOLMLP', in_channels=64,
                       hidden_channels=16, out_channels=8),
        predictor=dict(type='mmsimmm.BYOLMLP', in_channels=8,
                       hidden_channels=16, out_channels=8),
        loss_weight=0.05,
        momentum=0.1)
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    task = MODELS.build(tiny_classifier_cfg())
    head = MODELS.build(head_cfg(**kwargs))
    head.bind(task)
    return task, head


def byol(p, z):
    """2 - 2 cos, mean over the batch."""
    return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()


@pytest.mark.parametrize('order', ['before_use', 'after_use'])
def test_loss_and_target_equal_a_plain_byol(order):
    task, head = build(target_update=order)
    online = nn.ModuleDict(
        dict(encoder=task, projector=head.projector))
    plain_target = ExponentialMovingAverage(
        copy.deepcopy(online), momentum=0.1)
    task.train()
    head.train()
    for step in range(3):
        torch.manual_seed(step)
        day, dark = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
        preds = {}
        for view, images in (('day', day), ('dark', dark)):
            with head.recording():
                task(images, mode='tensor')
            preds[view] = head.predict()
        loss = head.loss(preds, day, dark)

        # by hand: the same predictions, MMEngine's EMA as the target
        expected_preds = {
            view: head.predictor(head.projector([task.neck(
                task.backbone(images))[0]]))
            for view, images in (('day', day), ('dark', dark))
        }
        with torch.no_grad():
            if order == 'before_use':
                plain_target.update_parameters(online)
            elif step == 0:  # the first use sees the online weights
                plain_target.module.load_state_dict(online.state_dict())
            target = plain_target.module
            z = {
                view: target.projector(
                    [target.encoder.neck(target.encoder.backbone(x))[0]])
                for view, x in (('day', day), ('dark', dark))
            }
            if order == 'after_use':
                plain_target.update_parameters(online)
        expected = 0.05 * (
            byol(expected_preds['day'][0], z['dark'][0]) +
            byol(expected_preds['dark'][0], z['day'][0]))
        torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
        # parameters (the by-hand forward above moved the BN statistics)
        fused = dict(head.target.module.named_parameters())
        for name, a in plain_target.module.named_parameters():
            torch.testing.assert_close(fused[name], a, rtol=0, atol=1e-6,
                                       msg=name)
        with torch.no_grad():  # an optimiser step on the online network
            for param in online.parameters():
                param.add_(0.01 * torch.randn_like(param))
    assert int(head.target.steps) == 3


def test_settings_are_validated():
    with pytest.raises(ValueError, match='target_update'):
        MODELS.build(head_cfg(target_update='never'))
    with pytest.raises(ValueError, match='momentum'):
        MODELS.build(head_cfg(momentum=0.))
    # the target is not a child of the online parameters' owner
    task, head = build()
    assert 'target' in dict(head.named_children())
    assert not any(
        n.startswith('encoder') for n, _ in head.named_parameters())
