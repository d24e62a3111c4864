# Copyright (c) mmsimmm contributors. All rights reserved.
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import DefaultScope
from mmpretrain.structures import DataSample

import mmsimmm  # noqa: F401
from mmsimmm.registry import MODELS
from mmsimmm.testing import tiny_classifier_cfg

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
LOSSES = Config.fromfile(
    osp.join(REPO_ROOT, 'configs/_base_/simminmax_default.py')).to_dict(
    )['simminmax_darken_losses']
TINY_RESNET = dict(type='mmpretrain.ResNet', depth=18, stem_channels=8,
                   base_channels=8, out_indices=(3, ), init_cfg=None)


def model_cfg(**kwargs):
    cfg = dict(
        type='mmsimmm.SimMinMaxRetrieval',
        task_model=dict(type='mmsimmm.GeMRetriever', backbone=TINY_RESNET),
        darkener=dict(type='mmsimmm.DarkeningModule', num_features=8),
        darken_head=dict(type='mmsimmm.DarkenHead', losses=LOSSES,
                         feature_model=TINY_RESNET,
                         features=dict(modules=['layer4']),
                         normalize_features=True),
        exposure=dict(type='mmsimmm.ExposureSampler', seed=3),
        darken_short_side=40,
        darken_crop_size=32)
    cfg.update(kwargs)
    return cfg


def build(**kwargs):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmsimmm'):
        return MODELS.build(model_cfg(**kwargs))


def tuples(sizes, labels, seed=0):
    gen = torch.Generator().manual_seed(seed)
    inputs = [[torch.randn(3, *size, generator=gen) for size in row]
              for row in sizes]
    samples = [DataSample(metainfo=dict(tuple_labels=list(labels)))
               for _ in sizes[0]]
    return inputs, samples


def test_adapt_loss_is_the_tuple_loss_with_the_dark_query():
    model = build()
    model.set_stage('adapt')
    model.train()
    MessageHub.get_current_instance().update_info('iter', 4)
    inputs, samples = tuples([[(32, 40), (36, 36)], [(40, 32), (32, 32)],
                              [(32, 32)] * 2], [-1, 1, 0])
    losses = model.loss(inputs, samples)
    assert list(losses) == ['task.loss_contrastive']
    # by hand: (q, D(q), p, n) with the iteration's generator, q0 then q1
    retriever = model.task_model
    generator = model.exposure.generator(torch.device('cpu'),
                                         'darken_levels')
    grown, labels = [], []
    for b in range(2):
        query = inputs[0][b]
        dark = model.darken_batch(query[None], generator)[0]
        grown.append([query, dark, inputs[1][b], inputs[2][b]])
        labels.append([-1, 1, 1, 0])
    expected = retriever.tuple_loss(grown, labels)['loss_contrastive']
    torch.testing.assert_close(losses['task.loss_contrastive'], expected)
    # the caller's tuples are unchanged
    assert len(inputs) == 3 and list(samples[0].tuple_labels) == [-1, 1, 0]


def test_darken_stage_crops_queries_and_positives():
    model = build()
    model.set_stage('darken')
    model.train()
    inputs, samples = tuples([[(32, 40), (48, 36)], [(40, 32), (36, 44)],
                              [(32, 32)] * 2], [-1, 1, 0])
    crops = model.darken_stage_images(inputs, samples)
    assert crops.shape == (4, 3, 32, 32)  # q and p of two tuples
    losses = model.loss(inputs, samples)
    assert len(losses) == 5
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.task_model.parameters())


def test_refuses_what_it_cannot_train():
    with pytest.raises(ValueError, match='adapt_head=None'):
        build(adapt_head=dict(
            type='mmsimmm.BYOLAdaptHead',
            projector=dict(type='mmsimmm.BYOLMLP', in_channels=64),
            predictor=dict(type='mmsimmm.BYOLMLP', in_channels=128)))
    with pytest.raises(ValueError, match='split_tuples'):
        build(task_model=dict(tiny_classifier_cfg(), _scope_='mmpretrain'),
              darken_head=dict(type='mmsimmm.DarkenHead', losses=LOSSES))
    with pytest.raises(ValueError, match='darken_crop_size'):
        build(darken_crop_size=48)
    model = build()
    model.set_stage('adapt')
    inputs, samples = tuples([[(32, 32)]] * 3, [-1, 1, 0])
    with pytest.raises(ValueError, match='second_inputs'):
        model.adapt_loss(inputs, samples, torch.zeros(1, 3, 32, 32))
